"""Every snippet of docs/agents.md runs: the Python blocks are executed, the YAML blocks load and build."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from aixpy.agents import Agent
from aixpy.config import load_config_str

DOC = Path(__file__).parents[2] / "docs" / "agents.md"
BLOCKS = re.findall(r"```(python|yaml)\n(.*?)```", DOC.read_text(), re.S)


def test_the_doc_has_snippets() -> None:
    assert [kind for kind, _ in BLOCKS] == ["python", "python", "yaml", "python"]


@pytest.mark.parametrize("code", [c for k, c in BLOCKS if k == "python"])
def test_python_snippet_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(Path(__file__).with_name("mcp_server.py"), tmp_path / "my_server.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2]))
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_agents"})


def test_yaml_snippet_loads_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    (text,) = [c for k, c in BLOCKS if k == "yaml"]
    cfg = load_config_str(text, "agents.md", env={"OPENAI_API_KEY": "sk-x", "MCP_TOKEN": "t"})
    ac = cfg.agents[0]
    assert [t.tool_name for t in ac.tools] == ["lookup", "check"]
    assert [s.label for s in ac.mcp_servers] == ["python my_server.py stdio", "127.0.0.1"]
    # built without its MCP servers and retrieval (no server runs on those addresses here)
    bare = ac.model_copy(update={"mcp_servers": [], "retrieval": None})
    with Agent.from_config(bare, config=cfg, environ={"OPENAI_API_KEY": "sk-x"}) as agent:
        assert [t.name for t in agent.tools] == ["lookup", "check"]
        assert agent.limits.max_requests == 5
        assert agent.limits.timeout == 60.0
        assert agent.output_type["required"] == ["summary"]
