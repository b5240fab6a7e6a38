"""CachedModel: the key, the deterministic rule, TTL on a ManualClock, stream replay, hits costing
nothing (answer, telemetry), single flight across threads and tasks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aixpy import telemetry
from aixpy.llm import ManualClock, StreamEvent, TestModel
from aixpy.llm.model import CallContext
from aixpy.llm.policies import CachedModel, InstrumentedModel, MemoryResponseCache
from aixpy.llm.testing import FunctionModel
from aixpy.llm.types import ChatRequest, ChatResponse, ToolCall, ToolSpec, Usage, UserMessage
from aixpy.policy.deadline import Deadline, DeadlineExceededError

STREAM = [StreamEvent.text_delta("Hel", model="gpt-4o-2024-08-06", response_id="r1"), StreamEvent.text_delta("lo"),
          StreamEvent.tool_call_delta(0, id="c1", name="f", arguments='{"a":'),
          StreamEvent.tool_call_delta(0, arguments="1}"),
          StreamEvent.usage_update(Usage(10, 5)), StreamEvent.finish("tool_calls")]


def cached(*script: object, clock: ManualClock | None = None, **kw: object) -> tuple[CachedModel, TestModel]:
    inner = TestModel(*script, provider="openai", model="gpt-4o", clock=clock)  # type: ignore[arg-type]
    return CachedModel(inner, **kw), inner  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what is cached


def test_a_repeated_deterministic_request_is_answered_from_the_cache() -> None:
    model, inner = cached(ChatResponse(text="four", usage=Usage(1000, 1000)), "second answer")
    first = model.chat("2+2?", temperature=0)
    again = model.chat("2+2?", temperature=0)
    assert len(inner.requests) == 1
    assert (first.text, first.cached, again.text, again.cached) == ("four", False, "four", True)
    assert first.cost_usd is not None
    assert first.cost_usd > 0
    assert again.cost_usd == 0.0
    assert again.usage == Usage(1000, 1000)
    assert again.provider == "openai"
    assert model.stats()["hits"] == 1
    assert model.stats()["misses"] == 1


def test_by_default_only_temperature_zero_is_cached() -> None:
    model, inner = cached("a", "b", "c", "d")
    assert model.chat("q").text == "a"
    assert model.chat("q").text == "b"
    assert model.chat("q", temperature=0.7, seed=1).text == "c"                  # a seed alone is not enough
    assert model.stats()["skipped"] == 3
    assert len(inner.requests) == 3


def test_the_providers_default_temperature_counts() -> None:
    inner = TestModel("a", "b")
    inner.temperature = 0.0  # type: ignore[attr-defined]  # what an HTTP provider configured with temperature: 0 has
    model = CachedModel(inner)
    assert model.chat("q").text == "a"
    assert model.chat("q").text == "a"


def test_when_always_and_when_function() -> None:
    model, _ = cached("a", "b", when="always")
    assert model.chat("q").text == model.chat("q").text == "a"
    model, _ = cached("a", "b", when=lambda req: req.seed is not None)
    assert model.chat("q", seed=3).text == model.chat("q", seed=3).text == "a"
    assert model.chat("q").text == "b"


@pytest.mark.parametrize("change", [
    {"temperature": 0, "max_tokens": 5}, {"temperature": 0, "top_p": 0.5}, {"temperature": 0, "stop": ["x"]},
    {"temperature": 0, "seed": 1}, {"temperature": 0, "system": "be brief"},
    {"temperature": 0, "tools": [ToolSpec("f")]}, {"temperature": 0, "response_format": "json_object"},
    {"temperature": 0, "extra": {"logprobs": True}}, {"temperature": 0, "tool_choice": "none"},
])
def test_everything_that_changes_the_answer_changes_the_key(change: dict[str, object]) -> None:
    model, _ = cached()
    base = model.key(model.request("hi", temperature=0))
    assert base is not None
    assert model.key(model.request("hi", **change)) != base  # type: ignore[arg-type]
    assert model.key(model.request("hi", temperature=0)) == base


def test_the_key_depends_on_roles_provider_and_model() -> None:
    a, _ = cached()
    user = ChatRequest("gpt-4o", [UserMessage("hi")], temperature=0)
    assert a.key(user) != a.key(ChatRequest("gpt-4o", [UserMessage("hi ")], temperature=0))
    other_model = CachedModel(TestModel(provider="openai", model="gpt-4o-mini"))
    other_provider = CachedModel(TestModel(provider="azure", model="gpt-4o"))
    assert len({a.key(user), other_model.key(user), other_provider.key(user)}) == 3


# --------------------------------------------------------------------------- TTL


def test_entries_expire_after_the_ttl_on_the_models_clock() -> None:
    clock = ManualClock()
    model, inner = cached("old", "new", clock=clock)
    assert model.backend.stats()["ttl"] == 3600.0                  # the guide's 1 h
    assert model.chat("q", temperature=0).text == "old"
    clock.advance(3599)
    assert model.chat("q", temperature=0).text == "old"
    clock.advance(2)
    assert model.chat("q", temperature=0).text == "new"
    assert len(inner.requests) == 2
    assert model.backend.stats()["expired"] == 1


def test_memory_backend_is_an_lru() -> None:
    model, _inner = cached("a", "b", "c", backend=MemoryResponseCache(max_entries=1))
    model.chat("1", temperature=0)
    model.chat("2", temperature=0)
    assert model.chat("1", temperature=0).text == "c"
    assert model.backend.stats()["evictions"] == 2


# --------------------------------------------------------------------------- streams


def test_a_cached_stream_is_replayed_as_the_same_events() -> None:
    model, inner = cached(STREAM)
    with model.stream("q", temperature=0) as s:
        first = list(s)
    with model.stream("q", temperature=0) as s2:
        replay = list(s2)
    assert replay == first
    assert len(inner.requests) == 1
    assert s2.response.cached
    assert s2.response.cost_usd == 0.0
    assert not s.response.cached
    assert s2.response.tool_calls == [ToolCall("c1", "f", {"a": 1})]
    assert s2.response == ChatResponse(text="Hello", tool_calls=[ToolCall("c1", "f", {"a": 1})],
                                       finish_reason="tool_calls", usage=Usage(10, 5), model="gpt-4o-2024-08-06",
                                       provider="openai", id="r1", raw_finish_reason="tool_calls", cost_usd=0.0,
                                       cached=True)


async def test_async_stream_replay_and_chat_served_from_a_stream_entry() -> None:
    model, inner = cached(STREAM)
    async with model.astream("q", temperature=0) as s:
        first = [e async for e in s]
    async with model.astream("q", temperature=0) as s2:
        assert [e async for e in s2] == first
    answer = await model.achat("q", temperature=0)
    assert len(inner.requests) == 1
    assert (answer.text, answer.cached, answer.tool_calls) == ("Hello", True, s.response.tool_calls)


def test_a_stream_served_from_a_chat_entry_folds_to_the_same_answer() -> None:
    model, _ = cached(ChatResponse(text="hi", tool_calls=[ToolCall("c", "f", {"x": [1]})], finish_reason="tool_calls",
                                   usage=Usage(3, 4)))
    answer = model.chat("q", temperature=0)
    with model.stream("q", temperature=0) as s:
        events = list(s)
    assert [e.kind for e in events] == ["text", "tool_call", "usage", "finish"]
    assert (s.response.text, s.response.tool_calls, s.response.usage, s.response.finish_reason) == \
        (answer.text, answer.tool_calls, answer.usage, answer.finish_reason)


def test_a_stream_stopped_early_or_failed_is_not_stored() -> None:
    model, inner = cached(STREAM, ["a", ConnectionError("cut")], "whole")
    with model.stream("q", temperature=0) as s:
        next(iter(s))
    with pytest.raises(ConnectionError), model.stream("q", temperature=0) as s:
        list(s)
    assert model.chat("q", temperature=0).text == "whole"
    assert len(inner.requests) == 3


# --------------------------------------------------------------------------- telemetry


def test_hits_are_visible_in_telemetry_and_cost_nothing() -> None:
    seen: list[telemetry.LLMEvent] = []
    model = InstrumentedModel(cached(ChatResponse(text="x", usage=Usage(100, 100)))[0],
                              on_event=lambda e: seen.append(e))  # type: ignore[arg-type]
    model.chat("q", temperature=0)
    with model.stream("q", temperature=0) as s:
        list(s)
    assert [(e.operation, e.cached, e.attempts) for e in seen] == [("chat", False, 1), ("stream", True, 0)]
    assert seen[0].cost_usd is not None
    assert seen[0].cost_usd > 0
    assert seen[1].cost_usd == 0.0
    assert seen[1].provider == "openai"


# --------------------------------------------------------------------------- single flight


def test_concurrent_identical_misses_send_one_request_threads() -> None:
    calls: list[str] = []
    release = threading.Event()

    def answer(req: ChatRequest) -> str:
        calls.append("sent")
        release.wait(5)
        return "one"

    model = CachedModel(FunctionModel(answer, provider="openai", model="gpt-4o"))
    results: list[ChatResponse] = []
    threads = [threading.Thread(target=lambda: results.append(model.chat("q", temperature=0))) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(model._flights) == 0 or model.stats()["misses"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    time.sleep(0.05)  # let every thread reach the cache
    release.set()
    for t in threads:
        t.join(5)
    assert calls == ["sent"]
    assert [r.text for r in results] == ["one"] * 8
    assert sum(r.cached for r in results) == 7
    assert len(model._flights) == 0


async def test_concurrent_identical_misses_send_one_request_tasks() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def answer(req: ChatRequest) -> str:
        calls.append("sent")
        await release.wait()
        return "one"

    model = CachedModel(FunctionModel(answer, provider="openai", model="gpt-4o"))
    tasks = [asyncio.create_task(model.achat("q", temperature=0)) for _ in range(8)]
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == ["sent"]
    assert {r.text for r in results} == {"one"}
    assert sum(r.cached for r in results) == 7
    assert model.stats()["coalesced"] == 7


def test_waiters_send_their_own_request_when_the_owner_fails() -> None:
    calls: list[str] = []
    release = threading.Event()

    def answer(req: ChatRequest) -> str:
        calls.append("sent")
        if len(calls) == 1:
            release.wait(5)
            raise RuntimeError("owner failed")
        return "second"

    model = CachedModel(FunctionModel(answer, provider="openai", model="gpt-4o"))
    errors: list[BaseException] = []

    def owner() -> None:
        try:
            model.chat("q", temperature=0)
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=owner)
    t.start()
    while not calls:
        time.sleep(0.001)
    waiter_result: list[str] = []
    w = threading.Thread(target=lambda: waiter_result.append(model.chat("q", temperature=0).text))
    w.start()
    time.sleep(0.05)
    release.set()
    t.join(5)
    w.join(5)
    assert len(errors) == 1
    assert waiter_result == ["second"]
    assert len(calls) == 2


def test_a_waiter_never_outlives_its_deadline() -> None:
    model, _ = cached()
    key = model.key(model.request("q", temperature=0))
    assert key is not None
    own, _ = model._flights.claim([key])          # someone else is fetching it and never finishes
    ctx = CallContext(Deadline.after(0.05))
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):      # waited until the deadline, then had no time left to send
        model._chat(model.request("q", temperature=0), ctx)
    assert time.monotonic() - started < 2
    model._flights.settle(own, {})
