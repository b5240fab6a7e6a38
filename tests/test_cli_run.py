"""``aixpy run AGENT "task"``: a configured agent against a loopback OpenAI-shaped server, live steps on
stderr, the answer on stdout, ``--json`` with the whole run; user mistakes are one line and exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aixpy.cli import app
from tests._services.loopback_http import LoopbackHTTPServer
from tests.agents.test_config import openai_shaped

KEY = "sk-test-run-0123456789"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackHTTPServer() as srv:
        srv.handler = openai_shaped
        path = tmp_path / "aixpy.yaml"
        path.write_text(f"""\
agents:
  - name: weather
    role: react
    model: gpt-4-turbo
    provider: openai
    api_key: ${{OPENAI_API_KEY}}
    endpoint: {srv.url}/v1
    prompt: Answer briefly.
    tools: [tests.agents._tools:lookup]
""")
        yield path


def test_run_shows_steps_and_answer(config: Path) -> None:
    r = cli("run", "weather", "Weather in Paris?", "--config", str(config))
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "It is sunny in Paris"
    assert '→ lookup {"city": "Paris"}' in r.stderr
    assert "← lookup sunny in Paris (" in r.stderr
    assert " ms)" in r.stderr
    assert "step 1: openai:gpt-4-turbo, 10 in / 5 out tokens" in r.stderr
    assert "2 model call(s), 1 tool call(s), 30 tokens" in r.stderr
    assert KEY not in r.output


def test_run_json_is_the_whole_result(config: Path) -> None:
    r = cli("run", "weather", "Weather in Paris?", "--config", str(config), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["text"] == "It is sunny in Paris"
    assert (data["requests"], data["tool_calls"], data["usage"]["total_tokens"]) == (2, 1, 30)
    first = data["steps"][0]
    assert first["tool_calls"] == [{"id": "call_1", "name": "lookup", "arguments": {"city": "Paris"}}]
    assert first["tool_results"][0]["content"] == "sunny in Paris"
    assert data["steps"][1]["finish_reason"] == "stop"


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nobody", "hi"], "AGENT: no agent named 'nobody'"),
    (["run", "weather", "  "], "the task is empty"),
])
def test_user_mistakes_are_one_line_exit_2(config: Path, args: list[str], message: str) -> None:
    r = cli(*args, "--config", str(config))
    assert r.exit_code == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_tool_that_does_not_import_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "aixpy.yaml"
    path.write_text("agents:\n  - name: a\n    model: gpt-4o\n    provider: openai\n    api_key: k\n"
                    "    tools:\n      - tests.agents._tools:gone\n")
    r = cli("run", "a", "hi", "--config", str(path))
    assert r.exit_code == 2
    assert f"{path}:7" in r.stderr
    assert "has no attribute 'gone'" in r.stderr


def test_doctor_lists_each_agent_without_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = tmp_path / "aixpy.yaml"
    path.write_text("""\
embeddings: {provider: hash, hash: {dimensions: 8}}
vectorstore: {provider: memory}
agents:
  - name: resilient
    providers:
      - {model: gpt-4-turbo, provider: openai}
      - {model: claude-3-haiku, provider: anthropic}
    retry: {max_attempts: 4, retry_on: [rate_limit]}
    timeout: 30s
    tools: [tests.agents._tools:lookup]
    mcp_servers: [python -m some_server]
""")
    monkeypatch.setenv("COLUMNS", "400")
    r = cli("doctor", "--config", str(path))
    line = next(ln for ln in r.stdout.splitlines() if "agent resilient" in ln)
    assert "openai:gpt-4-turbo (key from $OPENAI_API_KEY) -> anthropic:claude-3-haiku (key missing: set " \
           "$ANTHROPIC_API_KEY)" in line
    assert "retry 4 attempts on rate_limit; timeout 30 s; tools: tests.agents._tools:lookup, mcp python -m " \
           "some_server" in line
    assert KEY not in r.output


TEST_AGENT = """\
agents:
  - name: chat
    model: test:scripted
"""


def test_session_continues_the_conversation_across_two_invocations(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from aixpy.agents.sessions import FileSessionStore
    from aixpy.llm import AssistantMessage, UserMessage

    monkeypatch.chdir(tmp_path)
    (tmp_path / "aixpy.yaml").write_text(TEST_AGENT)
    first = cli("run", "chat", "my name is Ada", "--session", "s1", "--json")
    assert first.exit_code == 0, first.output
    second = cli("run", "chat", "who am I", "--session", "s1", "--json")
    assert second.exit_code == 0, second.output
    alone = cli("run", "chat", "who am I", "--json")                     # the same task without the session
    assert alone.exit_code == 0, alone.output
    # the test model counts the words of what it was sent: the second run sent the first exchange too
    seen = [json.loads(r.stdout)["usage"]["input_tokens"] for r in (first, second, alone)]
    assert seen == [4, 4 + 1 + 3, 3]
    kept = FileSessionStore(tmp_path / ".aixpy" / "sessions").load("s1")
    assert kept == [UserMessage("my name is Ada"), AssistantMessage("ok"), UserMessage("who am I"),
                    AssistantMessage("ok")]
    assert not (tmp_path / ".aixpy" / "sessions" / "None.json").exists()
    streamed = cli("run", "chat", "and now", "--session", "s1")            # the streaming path keeps it too
    assert streamed.exit_code == 0, streamed.output
    assert len(FileSessionStore(tmp_path / ".aixpy" / "sessions").load("s1")) == 6


def test_a_bad_session_id_is_one_line_naming_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "aixpy.yaml").write_text(TEST_AGENT)
    r = cli("run", "chat", "hi", "--session", "../etc")
    assert r.exit_code == 2
    assert "--session '../etc' must be 1-128 letters" in r.stderr
    assert not (tmp_path / ".aixpy").exists()


def test_session_store_from_the_config_redis_then_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        redis_url: str, redis_prefix: str) -> None:
    """``sessions:`` picks the store of ``--session``, over $AIXPY_SESSIONS_REDIS_URL (the fallback)."""
    from aixpy.agents.sessions import FileSessionStore, RedisSessionStore
    from aixpy.llm import AssistantMessage, UserMessage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIXPY_SESSIONS_REDIS_URL", "redis://127.0.0.1:1/0")  # would fail if it were used
    monkeypatch.setenv("SESSIONS_URL", redis_url)
    (tmp_path / "aixpy.yaml").write_text(TEST_AGENT + f"sessions:\n  backend: redis\n  url: ${{SESSIONS_URL}}\n"
                                                      f"  prefix: '{redis_prefix}'\n")
    first = cli("run", "chat", "my name is Ada", "--session", "s1", "--json")
    assert first.exit_code == 0, first.output
    second = cli("run", "chat", "who am I", "--session", "s1")
    assert second.exit_code == 0, second.output
    store = RedisSessionStore(redis_url, prefix=redis_prefix)
    assert store.load("s1") == [UserMessage("my name is Ada"), AssistantMessage("ok"), UserMessage("who am I"),
                                AssistantMessage("ok")]
    assert store.client.pttl(redis_prefix + "s1") == -1  # no ttl configured: kept until cleared
    store.close()
    assert not (tmp_path / ".aixpy").exists()

    # backend: file with its own path and a small budget: only the latest turn fits
    (tmp_path / "aixpy.yaml").write_text(TEST_AGENT + "sessions:\n  path: convos\n  max_tokens: 12\n")
    for task in ("my name is Ada", "who am I"):
        r = cli("run", "chat", task, "--session", "s2", "--json")
        assert r.exit_code == 0, r.output
    assert FileSessionStore(tmp_path / "convos", max_tokens=None).load("s2") == [UserMessage("who am I"),
                                                                               AssistantMessage("ok")]
    assert not (tmp_path / ".aixpy" / "sessions").exists()


def test_without_a_sessions_block_the_env_var_still_selects_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  redis_url: str) -> None:
    from aixpy.agents.sessions import RedisSessionStore

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIXPY_SESSIONS_REDIS_URL", redis_url)
    (tmp_path / "aixpy.yaml").write_text(TEST_AGENT)
    sid = f"env-{tmp_path.name}"[-100:]
    r = cli("run", "chat", "hello", "--session", sid, "--json")
    assert r.exit_code == 0, r.output
    store = RedisSessionStore(redis_url)  # the default prefix, aixpy:session:
    try:
        assert len(store.load(sid)) == 2
    finally:
        store.clear(sid)
        store.close()
    assert not (tmp_path / ".aixpy").exists()
