"""Sessions: history across runs, on file, in memory and in a real Redis; trimming invariants."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aixpy.agents import Agent
from aixpy.agents.sessions import (
    FileSessionStore,
    MemorySessionStore,
    RedisSessionStore,
    SessionStore,
    approx_tokens,
    default_store,
    trim,
)
from aixpy.errors import InvalidInputError
from aixpy.llm.testing import TestModel
from aixpy.llm.types import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage
from tests.agents._scripts import calls

ROOT = Path(__file__).resolve().parents[2]


def _stores(tmp_path: Path, redis_url: str | None = None, prefix: str = "") -> list[SessionStore]:
    out: list[SessionStore] = [MemorySessionStore(), FileSessionStore(tmp_path / "sessions")]
    if redis_url:
        out.append(RedisSessionStore(redis_url, prefix=prefix))
    return out


def _agent_runs(store: SessionStore) -> None:
    def today() -> str:
        """Today's date."""
        return "2025-01-02"

    model = TestModel(calls(("c1", "today", {})), "It is Jan 2.", "You asked the date.")
    agent = Agent("a", "Be brief.", model, tools=[today], sessions=store)
    agent.run("What day is it?", session="s1")
    second = agent.run("What did I ask?", session="s1")
    sent = model.requests[-1].messages
    assert isinstance(sent[0], SystemMessage)
    assert sent[0].content == "Be brief."
    assert [type(m).__name__ for m in sent[1:]] == ["UserMessage", "AssistantMessage", "ToolMessage",
                                                    "AssistantMessage", "UserMessage"]
    kept = store.load("s1")
    assert kept == second.messages
    assert not any(isinstance(m, SystemMessage) for m in kept)
    assert store.load("other") == []
    store.clear("s1")
    assert store.load("s1") == []


def test_agent_history_across_runs(tmp_path: Path) -> None:
    for store in _stores(tmp_path):
        _agent_runs(store)


def test_agent_history_in_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    store = RedisSessionStore(redis_url, prefix=redis_prefix, ttl=60)
    _agent_runs(store)
    store.append("t", [UserMessage("hi")])
    assert 0 < store.client.pttl(redis_prefix + "t") <= 60_000
    store.close()


def test_a_failed_run_keeps_nothing_and_async_runs_keep_theirs(tmp_path: Path) -> None:
    store = MemorySessionStore()
    agent = Agent("a", "", TestModel(RuntimeError("down"), "fine"), sessions=store)
    with pytest.raises(RuntimeError):
        agent.run("one", session="s")
    assert store.load("s") == []
    result = anyio.run(lambda: agent.arun("two", session="s"))
    assert store.load("s") == result.messages == [UserMessage("two"), AssistantMessage("fine")]
    assert anyio.run(store.aload, "s") == result.messages


def test_file_store_defaults_to_the_project_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIXPY_SESSIONS_REDIS_URL", raising=False)
    store = default_store()
    assert isinstance(store, FileSessionStore)
    store.append("x", [UserMessage("hi")])
    assert (tmp_path / ".aixpy" / "sessions" / "x.json").is_file()
    assert FileSessionStore().load("x") == [UserMessage("hi")]  # another instance, same file


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".", "..", "x" * 129, "é"])
def test_session_ids_cannot_escape_the_directory(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInputError):
        FileSessionStore(tmp_path).append(bad, [UserMessage("x")])


_APPEND = """
import sys
from aixpy.agents.sessions import FileSessionStore, RedisSessionStore
from aixpy.llm.types import UserMessage
kind, where, tag = sys.argv[1:4]
store = FileSessionStore(where, max_tokens=None) if kind == "file" else RedisSessionStore(where, prefix=sys.argv[4],
                                                                                           max_tokens=None)
for i in range(40):
    store.append("shared", [UserMessage(f"{tag}{i}")])
"""


def _two_writers(args: list[str], load: Any) -> None:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", _APPEND, *args[:2], tag, *args[2:]], env=env)
             for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    texts = [m.content for m in load()]
    assert len(texts) == 80
    for tag in ("a", "b"):  # nothing lost, each writer's order kept
        assert [t for t in texts if isinstance(t, str) and t.startswith(tag)] == [f"{tag}{i}" for i in range(40)]


def test_two_processes_appending_to_one_file(tmp_path: Path) -> None:
    _two_writers(["file", str(tmp_path)], lambda: FileSessionStore(tmp_path, max_tokens=None).load("shared"))


def test_two_processes_appending_in_redis(redis_url: str, redis_prefix: str) -> None:
    _two_writers(["redis", redis_url, redis_prefix],
                 lambda: RedisSessionStore(redis_url, prefix=redis_prefix, max_tokens=None).load("shared"))


# --------------------------------------------------------------------------- trimming


@st.composite
def conversations(draw: st.DrawFn) -> list[Message]:
    """System prompt(s), then turns: a user message, tool rounds (calls + all their results), an answer."""
    out: list[Message] = [SystemMessage(draw(st.text(max_size=40)))] if draw(st.booleans()) else []
    n = 0
    for _ in range(draw(st.integers(0, 6))):
        out.append(UserMessage(draw(st.text(max_size=60))))
        for _ in range(draw(st.integers(0, 2))):
            ids = [f"c{n + i}" for i in range(draw(st.integers(1, 3)))]
            n += len(ids)
            out.append(AssistantMessage(None, [ToolCall(i, "f", {"x": draw(st.text(max_size=20))}) for i in ids]))
            out.extend(ToolMessage(draw(st.text(max_size=80)), i, "f") for i in ids)
        if draw(st.booleans()):
            out.append(AssistantMessage(draw(st.text(max_size=60))))
    return out


def _tokens(ms: list[Message]) -> int:
    return sum(approx_tokens(m) for m in ms)


@settings(max_examples=300, deadline=None)
@given(conversations(), st.integers(0, 400))
def test_trim_invariants(history: list[Message], budget: int) -> None:
    kept = trim(history, budget)
    system = [m for m in history if isinstance(m, SystemMessage)]
    rest = [m for m in history if not isinstance(m, SystemMessage)]
    assert kept[: len(system)] == system  # the system prompt is always kept, first
    body = kept[len(system):]
    assert body == rest[len(rest) - len(body):]  # the most recent messages, in order
    if body:
        assert isinstance(body[0], UserMessage)  # whole turns only
    called = set()
    for m in body:  # never an orphan tool result; every call keeps its results
        if isinstance(m, AssistantMessage):
            called.update(c.id for c in m.tool_calls)
        if isinstance(m, ToolMessage):
            assert m.tool_call_id in called
    results = {m.tool_call_id for m in body if isinstance(m, ToolMessage)}
    assert called <= results
    turns = sum(isinstance(m, UserMessage) for m in body)
    if rest:
        assert turns >= 1  # the latest turn always stays
    if turns > 1:
        assert _tokens(kept) <= budget
    dropped = rest[: len(rest) - len(body)]
    if dropped:  # maximal: the next older turn would not have fitted
        start = max(i for i, m in enumerate(dropped) if isinstance(m, UserMessage))
        assert _tokens(kept) + _tokens(dropped[start:]) > budget
    assert trim(history, None) == [*system, *rest]


def test_stored_history_is_trimmed_to_the_budget(tmp_path: Path) -> None:
    store = FileSessionStore(tmp_path, max_tokens=30)
    for i in range(10):
        store.append("s", [UserMessage(f"question number {i} " * 3), AssistantMessage(f"answer {i}")])
    kept = store.load("s")
    assert kept[-1] == AssistantMessage("answer 9")
    assert len(kept) < 20
    assert _tokens(kept) <= 30


def test_default_store_from_a_sessions_block(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    from aixpy.config import SessionsConfig

    files = default_store(SessionsConfig(path=str(tmp_path / "convos"), max_tokens=None),
                          environ={"AIXPY_SESSIONS_REDIS_URL": redis_url})  # the block wins over the env var
    assert isinstance(files, FileSessionStore)
    assert (files.directory, files.max_tokens) == (tmp_path / "convos", None)
    redis_store = default_store(SessionsConfig(backend="redis", url=redis_url, prefix=redis_prefix, ttl=90,
                                               max_tokens=100))
    assert isinstance(redis_store, RedisSessionStore)
    assert (redis_store.prefix, redis_store.ttl, redis_store.max_tokens) == (redis_prefix, 90.0, 100)
    redis_store.append("t", [UserMessage("hi")])
    assert 0 < redis_store.client.pttl(redis_prefix + "t") <= 90_000
    redis_store.close()
    fallback = default_store(None, environ={"AIXPY_SESSIONS_REDIS_URL": f" {redis_url} "})
    assert isinstance(fallback, RedisSessionStore)
    fallback.close()
    assert isinstance(default_store(None, environ={}), FileSessionStore)


def test_an_agent_from_config_keeps_its_sessions_where_the_block_says(redis_url: str, redis_prefix: str) -> None:
    from aixpy.config import load_config_str

    cfg = load_config_str(f"agents:\n  - name: chat\n    model: test:scripted\n"
                          f"sessions:\n  backend: redis\n  url: {redis_url}\n  prefix: '{redis_prefix}'\n")
    with Agent.from_config(cfg.agent("chat"), config=cfg) as agent:
        assert isinstance(agent.sessions, RedisSessionStore)
        agent.run("one", session="c")
        second = agent.run("two", session="c")
        assert second.messages[0] == UserMessage("one")  # the history came from Redis
    assert len(RedisSessionStore(redis_url, prefix=redis_prefix).load("c")) == 4
    assert agent.owns_sessions


def test_an_agent_closes_the_session_store_only_when_it_built_it() -> None:
    closed: list[str] = []

    class Spy(MemorySessionStore):
        def close(self) -> None:
            closed.append("closed")

    Agent("a", "", TestModel("x"), sessions=Spy()).close()
    assert closed == []  # a store passed in is the caller's
    agent = Agent("a", "", TestModel("x"), sessions=Spy())
    agent.owns_sessions = True
    agent.close()
    assert closed == ["closed"]
