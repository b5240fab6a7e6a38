"""``aixpy ask``: answers from the indexed bundled corpus with the test provider, and the exit-2 paths."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aixpy.llm.testing import FunctionModel
from aixpy.llm.types import ChatRequest
from tests.test_cli import CORPUS, run

WATER = "How often should I water tomatoes?"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("ask")
    shutil.copytree(CORPUS, wd / "corpus")
    done = run(["index", "corpus", "--store", "memory", "--json"], wd)
    assert done.returncode == 0, done.stderr
    return wd


def test_ask_with_the_test_provider_end_to_end(indexed: Path) -> None:
    done = run(["ask", WATER, "--store", "memory", "--model", "test", "--json", "--limit", "3"], indexed)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["answer"] == "ok"
    assert data["grounded"]
    assert data["model"] == "test:test"
    assert data["passages"][0]["id"] == "gardening.md#0"
    assert 1 <= len(data["passages"]) <= 3
    assert all(p["score"] >= 0.3 for p in data["passages"])  # below the threshold is not relevant
    streamed = run(["ask", WATER, "--store", "memory", "--model", "test"], indexed)
    assert streamed.returncode == 0
    assert streamed.stdout.strip() == "ok"
    assert "cites none of the passages" in streamed.stderr


def test_nothing_relevant_says_so(indexed: Path) -> None:
    done = run(["ask", "Who won the 1998 football world cup?", "--store", "memory", "--model", "test"], indexed)
    assert done.returncode == 0, done.stderr
    assert "found nothing relevant" in done.stdout
    assert "test:test" not in done.stderr


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--store", "memory"], {}, "--model"),
    (["--store", "memory", "--model", "openai:gpt-4o-mini"], {"OPENAI_API_KEY": ""}, "OPENAI_API_KEY"),
    (["--store", "memory", "--model", "test", "--collection", "nothing_here"], {}, "aixpy index"),
    (["--store", "memory", "--model", "test", "--agent", "x"], {}, "pass one"),
])
def test_exit_2_with_one_line_saying_what_to_set(indexed: Path, args: list[str], env: dict[str, str],
                                                 needle: str) -> None:
    done = run(["ask", WATER, *args], indexed, env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert needle in done.stderr


def _citing(req: ChatRequest) -> str:
    prompt = req.messages[-1].content
    assert isinstance(prompt, str)
    m = re.search(r"^\[(\d+)\] \(gardening\.md#0\)$", prompt, re.M)
    assert m
    return f"Twice a week [{m.group(1)}], [bold]never[/bold] more [9]."


def test_streams_then_prints_the_cited_sources(indexed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aixpy.cli import app
    from aixpy.llm import register

    def scripted(settings: Any) -> FunctionModel:
        return FunctionModel(_citing, model="scripted")

    monkeypatch.chdir(indexed)
    monkeypatch.setenv("COLUMNS", "200")
    register("test", scripted, replace=True)
    try:
        result = CliRunner().invoke(app, ["ask", WATER, "--store", "memory", "--model", "test", "--session", "s1"])
    finally:
        register("test", "aixpy.llm.testing:create", replace=True)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Twice a week [")
    assert "[bold]never[/bold]" in lines[0]
    assert lines[1] == "sources:"
    assert re.fullmatch(r"  \[\d+\] gardening\.md#0  score 0\.\d{3}", lines[2])
    assert "cites [9]" in result.stderr
    assert (indexed / ".aixpy" / "sessions" / "s1.json").is_file()


def test_session_in_redis_from_the_config(indexed: Path, tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """A ``sessions:`` block sends ``--session`` to Redis (not ./.aixpy/sessions); env var fallback unused."""
    from aixpy.agents.sessions import RedisSessionStore
    from aixpy.llm.types import AssistantMessage, UserMessage

    config = tmp_path / "sessions.yaml"
    config.write_text(f"sessions:\n  backend: redis\n  url: {redis_url}\n  prefix: '{redis_prefix}'\n  ttl: 1h\n")
    args = ["ask", WATER, "--store", "memory", "--model", "test", "--config", str(config), "--session", "r1"]
    done = run([*args, "--json"], indexed, {"AIXPY_SESSIONS_REDIS_URL": ""})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["answer"] == "ok"
    store = RedisSessionStore(redis_url, prefix=redis_prefix)
    kept = store.load("r1")
    assert [type(m) for m in kept] == [UserMessage, AssistantMessage]
    assert 0 < store.client.pttl(redis_prefix + "r1") <= 3_600_000
    assert not (indexed / ".aixpy" / "sessions" / "r1.json").exists()
    again = run(args, indexed)
    assert again.returncode == 0, again.stderr
    assert len(store.load("r1")) == 4
    store.close()
