"""Fault injection on real loopback HTTP servers: providers + RetryModel + FallbackModel end to end.

429 + Retry-After, 500/503, connection resets, read timeouts, malformed JSON, streams cut after N
events (reset, close mid-body, clean early end). Waits go to a ManualClock (measured exactly, never
slept) except where a real deadline is the point of the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aixpy.errors import (
    AllProvidersFailedError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm import (
    ChatModel,
    FallbackModel,
    ManualClock,
    RetryModel,
    RetryPolicy,
    StreamEvent,
    StreamInterruptedError,
    ToolSpec,
)
from aixpy.llm.deadline import DeadlineExceededError
from aixpy.llm.providers.openai_compatible import OpenAICompatibleModel

from .test_provider_server import (
    WEATHER_CALL,
    Reply,
    ScriptedServer,
    acollect,
    collect,
    oa_completion,
    oa_text_stream,
    servers,
)

POLICY = RetryPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=8.0, jitter=False)
TOOLS = [ToolSpec(n, "", {"type": "object", "properties": {}}) for n in ("get_weather", "get_time")]
ERROR_500 = Reply.json({"error": {"message": "internal"}}, status=500)
ERROR_503 = Reply.json({"error": {"message": "overloaded"}}, status=503)


@pytest.fixture
def trio() -> Iterator[list[ScriptedServer]]:
    yield from servers(3)


def provider(server: ScriptedServer, i: int = 0, timeout: float | None = None) -> OpenAICompatibleModel:
    return OpenAICompatibleModel("m", endpoint=server.url + "/v1", provider=f"p{i}", timeout=timeout)


def chain(trio: list[ScriptedServer], timeout: float | None = None) -> list[ChatModel]:
    return [provider(s, i, timeout) for i, s in enumerate(trio)]


def rate_limited(seconds: int) -> Reply:
    return Reply.json({"error": {"message": "rate limited"}}, status=429, headers={"Retry-After": str(seconds)})


# --------------------------------------------------------------------------- retry on one provider


def test_429_retry_after_is_honoured(trio: list[ScriptedServer]) -> None:
    trio[0].push(rate_limited(7), Reply.json(oa_completion("after the wait")))
    clock = ManualClock()
    with RetryModel(provider(trio[0]), POLICY, clock=clock) as model:
        reply = model.chat("hi")
    assert reply.text == "after the wait"
    assert clock.sleeps == [7.0]
    assert len(trio[0].requests) == 2


async def test_429_retry_after_async_and_in_ms(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.json({}, status=429, headers={"retry-after-ms": "1500"}), oa_text_stream(["ok"]))
    clock = ManualClock()
    async with RetryModel(provider(trio[0]), POLICY, clock=clock) as model, model.astream("hi") as s:
        reply = await s.get_response()
    assert reply.text == "ok"
    assert clock.sleeps == [1.5]


def test_500_and_503_are_retried_with_backoff(trio: list[ScriptedServer]) -> None:
    trio[0].push(ERROR_500, ERROR_503, Reply.json(oa_completion("third")))
    clock = ManualClock()
    with RetryModel(provider(trio[0]), POLICY, clock=clock) as model:
        assert model.chat("hi").text == "third"
    assert clock.sleeps == [1.0, 2.0]


def test_connection_reset_is_retried(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.connection_reset(), Reply.json(oa_completion("reconnected")))
    clock = ManualClock()
    with RetryModel(provider(trio[0]), POLICY, clock=clock) as model:
        assert model.chat("hi").text == "reconnected"
    assert len(clock.sleeps) == 1


def test_connection_reset_surfaces_as_a_connection_error(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.connection_reset())
    with provider(trio[0]) as model, pytest.raises(ProviderConnectionError) as info:
        model.chat("hi")
    assert info.value.retryable
    assert info.value.provider == "p0"


def test_read_timeout_is_retried(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.hang(4.0), Reply.json(oa_completion("fast now")))
    clock = ManualClock()
    started = time.monotonic()
    with RetryModel(provider(trio[0], timeout=1.0), POLICY, clock=clock) as model:
        assert model.chat("hi").text == "fast now"
    assert time.monotonic() - started < 3.5  # the hung request was abandoned after 1 s
    assert len(clock.sleeps) == 1


def test_malformed_json_is_not_retried_but_falls_back(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.raw("{this is not json"))
    clock = ManualClock()
    with RetryModel(provider(trio[0]), POLICY, clock=clock) as model, pytest.raises(ResponseFormatError):
        model.chat("hi")
    assert len(trio[0].requests) == 1
    assert clock.sleeps == []
    trio[0].push(Reply.raw("{this is not json"))
    trio[1].push(Reply.json(oa_completion("valid")))
    with FallbackModel(chain(trio[:2])) as fb:
        assert fb.chat("hi").provider == "p1"


def test_malformed_sse_payload_before_any_event_falls_back(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.sse(["data: {garbage\n\n"]))
    trio[1].push(oa_text_stream(["fine"]))
    with FallbackModel(chain(trio[:2])) as model, model.stream("hi") as s:
        assert s.get_response().provider == "p1"


# --------------------------------------------------------------------------- streams cut after N events


@pytest.mark.parametrize("how", ["reset", "close", "eof"])
def test_stream_cut_before_the_first_event_is_retried(trio: list[ScriptedServer], how: str) -> None:
    # chunk 0 is the role-only chunk: it carries no event, so nothing reached the caller yet
    trio[0].push(oa_text_stream(["never", "seen"], cut_after=1, cut=how),  # type: ignore[arg-type]
                 oa_text_stream(["Hello", " world"]))
    clock = ManualClock()
    with RetryModel(provider(trio[0]), POLICY, clock=clock) as model, model.stream("hi") as s:
        events = list(s)
    assert [e.text for e in events if e.kind == "text"] == ["Hello", " world"]
    assert [e.kind for e in events].count("finish") == 1
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("how", ["reset", "close", "eof"])
def test_stream_cut_after_delivered_events_raises_and_never_duplicates(trio: list[ScriptedServer], how: str) -> None:
    trio[0].push(oa_text_stream(["one", " two", " three"], cut_after=3, cut=how))  # type: ignore[arg-type]
    trio[1].push(oa_text_stream(["must", "not", "run"]))
    clock = ManualClock()
    model = RetryModel(FallbackModel(chain(trio[:2])), POLICY, clock=clock)
    seen: list[StreamEvent] = []
    with model, pytest.raises(StreamInterruptedError) as info:
        collect(model.stream("hi"), seen)
    assert [e.text for e in seen] == ["one", " two"]
    err = info.value
    assert err.provider == "p0"
    assert err.events_delivered == 2
    assert not err.retryable
    assert isinstance(err.__cause__, ProviderConnectionError)
    assert len(trio[0].requests) == 1
    assert len(trio[1].requests) == 0
    assert clock.sleeps == []


async def test_async_stream_cut_after_events(trio: list[ScriptedServer]) -> None:
    trio[0].push(oa_text_stream(["a", "b", "c"], cut_after=2, cut="reset"))
    seen: list[StreamEvent] = []
    async with RetryModel(provider(trio[0]), POLICY, clock=ManualClock()) as model:
        with pytest.raises(StreamInterruptedError):
            await acollect(model.astream("hi"), seen)
    assert [e.text for e in seen] == ["a"]
    assert len(trio[0].requests) == 1


def test_rate_limit_on_a_stream_request_is_retried(trio: list[ScriptedServer]) -> None:
    trio[0].push(rate_limited(2), oa_text_stream(["ok"]))
    clock = ManualClock()
    with RetryModel(provider(trio[0]), POLICY, clock=clock) as model, model.stream("hi") as s:
        assert s.get_response().text == "ok"
    assert clock.sleeps == [2.0]


# --------------------------------------------------------------------------- cascades


def test_cascade_delivers_when_any_provider_is_healthy(trio: list[ScriptedServer]) -> None:
    trio[0].push(rate_limited(120))
    trio[1].push(Reply.connection_reset())
    trio[2].push(Reply.json(oa_completion("healthy")))
    clock = ManualClock()
    with RetryModel(FallbackModel(chain(trio)), POLICY, clock=clock) as model:
        reply = model.chat("hi", timeout=30.0)
    assert (reply.text, reply.provider) == ("healthy", "p2")
    assert clock.sleeps == []  # p0's Retry-After never delayed the fallback
    assert [len(s.requests) for s in trio] == [1, 1, 1]


async def test_async_cascade_stream(trio: list[ScriptedServer]) -> None:
    trio[0].push(ERROR_503)
    trio[1].push(oa_text_stream(["x"], cut_after=1, cut="eof"))
    trio[2].push(oa_text_stream(["from", " p2"]))
    async with FallbackModel(chain(trio)) as model, model.astream("hi") as s:
        reply = await s.get_response()
    assert (reply.text, reply.provider) == ("from p2", "p2")


def test_fallback_does_not_wait_for_a_retry_after_beyond_the_deadline(trio: list[ScriptedServer]) -> None:
    trio[0].push(rate_limited(120))
    trio[1].push(Reply.json(oa_completion("second")))
    clock = ManualClock()
    models: list[ChatModel] = [RetryModel(m, POLICY, clock=clock) for m in chain(trio[:2])]
    with FallbackModel(models, clock=clock) as model:
        reply = model.chat("hi", timeout=20.0)
    assert reply.provider == "p1"
    assert clock.sleeps == []
    assert len(trio[0].requests) == 1


def test_every_provider_down(trio: list[ScriptedServer]) -> None:
    trio[0].push(rate_limited(1))
    trio[1].push(ERROR_500)
    trio[2].push(Reply.connection_reset())
    with FallbackModel(chain(trio)) as model, pytest.raises(AllProvidersFailedError) as info:
        model.chat("hi")
    kinds = [type(e) for e in info.value.errors]
    assert kinds == [RateLimitError, ServerError, ProviderConnectionError]
    assert [getattr(e, "provider", None) for e in info.value.errors] == ["p0", "p1", "p2"]


def test_the_deadline_bounds_the_whole_cascade_in_real_time(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.hang(5.0))
    trio[1].push(Reply.hang(5.0))
    started = time.monotonic()
    with FallbackModel(chain(trio[:2]), timeout=1.0) as model, pytest.raises(AllProvidersFailedError) as info:
        model.chat("hi")
    elapsed = time.monotonic() - started
    assert elapsed < 3.5  # one deadline for the whole cascade, not 1 s per provider plus 5 s hangs
    assert isinstance(info.value.errors[0], ProviderTimeoutError)
    assert isinstance(info.value.errors[-1], DeadlineExceededError)


def test_a_tool_call_is_delivered_exactly_once(trio: list[ScriptedServer]) -> None:
    trio[0].push(ERROR_503)
    trio[1].push(Reply.json(oa_completion(None, tool_calls=[WEATHER_CALL], finish="tool_calls")))
    with FallbackModel(chain(trio[:2])) as model:
        reply = model.chat("weather?", tools=TOOLS)
    assert len(reply.tool_calls) == 1
    assert reply.tool_calls[0].name == "get_weather"
    assert len(trio[1].requests) == 1


def test_a_streamed_tool_call_is_delivered_exactly_once(trio: list[ScriptedServer]) -> None:
    trio[0].push(Reply.sse_file("openai_tools.sse", cut_after=0, cut="reset"))
    trio[1].push(Reply.sse_file("openai_tools.sse"))
    clock = ManualClock()
    with RetryModel(FallbackModel(chain(trio[:2])), POLICY, clock=clock) as model, \
            model.stream("weather?", tools=TOOLS) as s:
        events = list(s)
    starts = [e for e in events if e.kind == "tool_call" and e.tool_name]
    assert [e.tool_name for e in starts] == ["get_weather", "get_time"]
    assert [c.name for c in s.response.tool_calls] == ["get_weather", "get_time"]
    assert s.response.provider == "p1"
    assert clock.sleeps == []
