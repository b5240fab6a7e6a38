"""Agents built from config: every ``agents:`` example of the provider-integration guide (the copies in
``tests/config/fixtures/guide/``) loads and builds as written, plus ``tools:``, ``max_iterations``,
``output_schema``, ``retrieval:``; the OpenAI- and Anthropic-shaped ones run one tool step against a
loopback server speaking their wire format."""

from __future__ import annotations

import json
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from aixpy import agents
from aixpy.agents import Agent, Limits
from aixpy.config import AixpyConfig, load_config, load_config_str
from aixpy.errors import ConfigError
from aixpy.llm.policies.fallback import FallbackModel
from aixpy.llm.policies.retry import RetryModel
from tests._services.loopback_http import LoopbackHTTPServer, Recorded, Reply
from tests.config.test_guide_examples import ENV

GUIDE = Path(__file__).parents[1] / "config" / "fixtures" / "guide"
TOKENS = {"token_provider": lambda: "ya29.test"}  # Vertex AI without Google credentials


def guide_configs() -> list[tuple[str, AixpyConfig]]:
    """Every guide snippet with an ``agents:`` block; the bare agent lists go under ``agents:``."""
    out = []
    for path in sorted(GUIDE.glob("*.yaml")):
        text = path.read_text()
        if path.name.startswith("fragment_"):
            out.append((path.name, load_config_str("agents:\n" + textwrap.indent(text, "  "), path.name, env=ENV)))
        elif "agents:" in text:
            out.append((path.name, load_config(path, env=ENV)))
    return out


GUIDE_CONFIGS = guide_configs()


def test_the_guide_has_these_agent_examples() -> None:
    names = [n for n, _ in GUIDE_CONFIGS]
    assert names == ["agent_anthropic.yaml", "agent_huggingface.yaml", "agent_openai.yaml", "agent_vertexai.yaml",
                     "agent_xai.yaml", "fallback_configuration.yaml", "fragment_cost_optimization.yaml",
                     "fragment_region_routing.yaml", "hybrid_fallback.yaml", "ollama_quickstart.yaml", "retry.yaml",
                     "timeout.yaml"]


@pytest.mark.parametrize(("name", "cfg"), GUIDE_CONFIGS, ids=[n for n, _ in GUIDE_CONFIGS])
def test_every_guide_agent_builds_as_written(name: str, cfg: AixpyConfig) -> None:
    services = cfg
    if name == "hybrid_fallback.yaml":  # its providers name the quick start's model service
        services = load_config(GUIDE / "ollama_quickstart.yaml", env=ENV)
        cfg.model_services.extend(services.model_services)
    for ac in cfg.agents:
        with Agent.from_config(ac, config=cfg, environ=ENV, options=TOKENS) as agent:
            pass
        assert agent.name == ac.name
        assert agent.instructions == (ac.prompt or "")
        assert agent.limits.max_requests == 10
        assert agent.limits.timeout == (ac.timeout.total_seconds() if ac.timeout else None)
        assert (agent.temperature, agent.max_tokens) == (ac.temperature, ac.max_tokens)
        model = agent.model
        if ac.retry is not None:
            assert isinstance(model, RetryModel)
            assert model.policy.max_attempts == ac.retry.max_attempts
            model = model.inner
        if ac.providers is not None and len(ac.providers) > 1:
            assert isinstance(model, FallbackModel)
            assert len(model.models) == len(ac.providers)  # cascade order kept
        assert "0123456789" not in repr(agent)


def test_new_by_name_and_unknown_name() -> None:
    cfg = load_config(GUIDE / "retry.yaml", env=ENV)
    assert agents.new("resilient-agent", cfg, environ=ENV).name == "resilient-agent"
    with pytest.raises(ConfigError, match=r"no agent named 'nope'.*resilient-agent"):
        agents.new("nope", cfg)


def test_unknown_role_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - name: a\n    model: gpt-4o\n    role: planner\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.file, info.value.line, info.value.path) == (str(path), 4, "agents[0].role")
    assert "'react'" in str(info.value)


# --------------------------------------------------------------------------- tools:, limits, output


def write(tmp_path: Path, body: str) -> AixpyConfig:
    path = tmp_path / "aixpy.yaml"
    path.write_text(textwrap.dedent(body))
    return load_config(path, env=ENV)


def test_function_tools_max_iterations_and_output_schema(tmp_path: Path) -> None:
    cfg = write(tmp_path, """\
        agents:
          - name: a
            model: gpt-4o
            provider: openai
            api_key: ${OPENAI_API_KEY}
            max_iterations: 3
            timeout: 20s
            tools:
              - tests.agents._tools:lookup
              - function: tests.agents._tools:broken
                name: check
                description: Check something.
                timeout: 2s
                max_errors: 0
            output_schema:
              type: object
              properties: {city: {type: string}}
              required: [city]
        """)
    agent = Agent.from_config(cfg.agents[0], config=cfg, environ=ENV)
    assert [t.name for t in agent.tools] == ["lookup", "check"]
    assert agent.tools[0].spec.parameters["properties"]["city"]["description"] == "City name."
    assert (agent.tools[1].spec.description, agent.tools[1].timeout, agent.tools[1].max_errors) == \
        ("Check something.", 2.0, 0)
    assert agent.limits == Limits(max_requests=3, timeout=20.0)
    assert agent.output_type == {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.mark.parametrize(("entry", "line", "message"), [
    ("tests.agents._nowhere:fn", 7, "cannot import module 'tests.agents._nowhere'"),
    ("tests.agents._tools:missing", 7, "has no attribute 'missing'"),
    ("tests.agents._tools:NOT_A_FUNCTION", 7, "is a int, not a function"),
    ("search", 7, "tool 'search' has no 'function"),
    ("retrieve", 7, "needs the agent's 'retrieval:' block"),
])
def test_tool_errors_name_file_and_line(tmp_path: Path, entry: str, line: int, message: str) -> None:
    cfg = write(tmp_path, f"""\
        agents:
          - name: a
            model: gpt-4o
            provider: openai
            tools:
              - tests.agents._tools:lookup
              - {entry}
        """)
    with pytest.raises(ConfigError, match=message) as info:
        Agent.from_config(cfg.agents[0], config=cfg, environ=ENV)
    assert (info.value.file, info.value.line) == (str(tmp_path / "aixpy.yaml"), line)


def test_import_is_lazy(tmp_path: Path) -> None:
    cfg = write(tmp_path, """\
        agents:
          - name: a
            model: gpt-4o
            tools: [some_package_that_is_not_installed.mod:fn]
        """)
    assert "some_package_that_is_not_installed" not in sys.modules
    assert cfg.agents[0].tools[0].tool_name == "fn"


def test_retrieval_block_wires_the_retrieve_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``retrieval:`` -> ``aixpy.agents.retrieval.retrieve_tool(embeddings, collection, limit=, min_score=)``
    over the config's embeddings and vector store."""
    seen: dict[str, Any] = {}

    def retrieve_tool(embeddings: Any, collection: Any, *, limit: int, min_score: float | None) -> Any:
        seen.update(embeddings=embeddings, collection=collection, limit=limit, min_score=min_score)

        def retrieve(query: str) -> str:
            """Search the collection."""
            return query

        return retrieve

    module = types.ModuleType("aixpy.agents.retrieval")
    module.retrieve_tool = retrieve_tool  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aixpy.agents.retrieval", module)
    cfg = write(tmp_path, """\
        embeddings: {provider: hash, hash: {dimensions: 16}}
        vectorstore: {provider: memory}
        agents:
          - name: a
            model: gpt-4o
            retrieval: {collection: notes, limit: 3, min_score: 0.2}
        """)
    agent = Agent.from_config(cfg.agents[0], config=cfg, environ=ENV)
    assert [t.name for t in agent.tools] == ["retrieve"]
    assert (seen["collection"].name, seen["limit"], seen["min_score"]) == ("notes", 3, 0.2)
    assert seen["embeddings"].dimensions() == 16


# --------------------------------------------------------------------------- one step on the wire


def openai_shaped(rec: Recorded) -> Reply:
    body = rec.json
    assert rec.path.endswith("/chat/completions")
    if body["messages"][-1]["role"] == "tool":
        message: dict[str, Any] = {"role": "assistant", "content": "It is " + body["messages"][-1]["content"]}
        finish = "stop"
    else:
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"city": "Paris"}'}}]}
        finish = "tool_calls"
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    if body.get("stream"):  # the same answer as chat.completion.chunk events
        delta = dict(message)
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": 0, **c} for c in delta["tool_calls"]]
        events = [{"id": "x", "object": "chat.completion.chunk", "model": body["model"],
                   "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                  {"id": "x", "object": "chat.completion.chunk", "model": body["model"],
                   "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
                  {"id": "x", "object": "chat.completion.chunk", "model": body["model"], "choices": [], "usage": usage}]
        chunks = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        return Reply(content_type="text/event-stream", chunks=chunks)
    return Reply(json.dumps({"id": "x", "object": "chat.completion", "model": body["model"], "choices": [
        {"index": 0, "message": message, "finish_reason": finish}], "usage": usage}).encode())


def anthropic_shaped(rec: Recorded) -> Reply:
    body = rec.json
    assert rec.path.endswith("/v1/messages")
    last = body["messages"][-1]["content"]
    if isinstance(last, list) and last[0]["type"] == "tool_result":
        content: list[dict[str, Any]] = [{"type": "text", "text": "It is " + last[0]["content"]}]
        stop = "end_turn"
    else:
        content = [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"city": "Paris"}}]
        stop = "tool_use"
    return Reply(json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                             "content": content, "stop_reason": stop,
                             "usage": {"input_tokens": 10, "output_tokens": 5}}).encode())


@pytest.mark.parametrize(("name", "handler", "suffix", "key"), [
    ("agent_openai.yaml", openai_shaped, "/v1", "sk-test-openai"),
    ("agent_xai.yaml", openai_shaped, "/v1", "xai-test"),
    ("agent_anthropic.yaml", anthropic_shaped, "", "sk-ant-test"),
    ("retry.yaml", openai_shaped, "/v1", "sk-test-openai"),
])
def test_guide_agent_runs_a_tool_step_on_loopback(name: str, handler: Any, suffix: str, key: str) -> None:
    cfg = load_config(GUIDE / name, env=ENV)
    tools = load_config_str("agents: [{name: x, model: gpt-4o, tools: [tests.agents._tools:lookup]}]").agents[0].tools
    with LoopbackHTTPServer() as srv:
        srv.handler = handler
        ac = cfg.agents[0].model_copy(update={"tools": tools, "endpoint": srv.url + suffix})
        with Agent.from_config(ac, config=cfg, environ=ENV) as agent:
            result = agent.run("Weather in Paris?")
        sent = [r.headers.get("authorization", "") + r.headers.get("x-api-key", "") for r in srv.requests]
    assert result.text == "It is sunny in Paris"
    assert [s.tool_results[0].content for s in result.steps[:1]] == ["sunny in Paris"]
    assert result.requests == 2
    assert result.usage.input_tokens == 20
    assert all(key in s for s in sent)
