"""FallbackModel (cascade) with in-memory models: which errors fall back, streams only before their
first delivered event, the deadline, and composition with RetryModel from an agent's config."""

from __future__ import annotations

import pytest

from aixpy.config import AgentConfig
from aixpy.errors import (
    AllProvidersFailedError,
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    ProviderConnectionError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm import (
    ChatResponse,
    FallbackModel,
    FunctionModel,
    ManualClock,
    RetryModel,
    RetryPolicy,
    StreamEvent,
    StreamInterruptedError,
    TestModel,
    ToolCall,
    new,
)
from aixpy.llm.deadline import DeadlineExceededError
from aixpy.llm.policies import falls_back

from .test_provider_server import acollect


def chain(*scripts: tuple[object, ...], clock: ManualClock | None = None) -> tuple[FallbackModel, list[TestModel]]:
    models = [TestModel(*s, provider=f"p{i}", model=f"m{i}") for i, s in enumerate(scripts)]  # type: ignore[arg-type]
    return FallbackModel(models, clock=clock), models


@pytest.mark.parametrize(("err", "expected"), [
    (RateLimitError("429"), True),
    (RateLimitError("quota", retryable=False), True),
    (ServerError("503"), True),
    (ProviderConnectionError("reset"), True),
    (AuthenticationError("401"), True),
    (ResponseFormatError("garbage"), True),
    (InvalidRequestError("not found", status_code=404), True),
    (InvalidRequestError("too large", status_code=413), True),
    (InvalidRequestError("bad", status_code=400), False),
    (InvalidRequestError("unprocessable", status_code=422), False),
    (InvalidInputError("cannot express tools"), True),
    (StreamInterruptedError(ServerError("x"), delivered=1, provider="p", model="m"), False),
    (ValueError("a bug"), False),
])
def test_which_errors_fall_back(err: Exception, expected: bool) -> None:
    assert falls_back(err) is expected


def test_cascade_answers_from_the_first_healthy_provider() -> None:
    model, (a, b, c) = chain((RateLimitError("429"),), (ServerError("503"),), ("third time lucky",))
    reply = model.chat("hi")
    assert (reply.text, reply.provider, reply.model) == ("third time lucky", "p2", "m2")
    assert [len(m.requests) for m in (a, b, c)] == [1, 1, 1]
    assert model.provider == "fallback"
    assert model.model == "p0:m0 > p1:m1 > p2:m2"


def test_a_bad_request_does_not_cascade() -> None:
    model, (_a, b) = chain((InvalidRequestError("bad field", status_code=400),), ("unused",))
    with pytest.raises(InvalidRequestError):
        model.chat("hi")
    assert len(b.requests) == 0


async def test_all_failed_lists_every_error_in_order() -> None:
    errors = (AuthenticationError("bad key"), ServerError("down"))
    model, _ = chain((errors[0],), (errors[1],))
    with pytest.raises(AllProvidersFailedError) as info:
        await model.achat("hi")
    assert info.value.errors == list(errors)
    assert info.value.retryable is True  # one of them (the 5xx) may succeed later


def test_stream_falls_back_before_its_first_event() -> None:
    model, (_a, _b) = chain(([RateLimitError("429")],), (["from", " p1"],))
    with model.stream("hi") as s:
        events = list(s)
    assert [e.text for e in events if e.kind == "text"] == ["from", " p1"]
    assert s.response.provider == "p1"
    assert s.response.text == "from p1"


async def test_stream_never_falls_back_after_an_event_was_delivered() -> None:
    model, (_a, b) = chain((["partial", ServerError("died")],), (["should", "not", "run"],))
    seen: list[StreamEvent] = []
    with pytest.raises(StreamInterruptedError) as info:
        await acollect(model.astream("hi"), seen)
    assert [e.text for e in seen] == ["partial"]
    assert info.value.provider == "p0"
    assert info.value.events_delivered == 1
    assert "mid-way" in str(info.value)
    assert len(b.requests) == 0


def test_a_tool_call_is_delivered_exactly_once_across_a_fallback() -> None:
    call = ToolCall("call_1", "book_flight", {"to": "Oslo"})
    answer = ChatResponse(tool_calls=[call], finish_reason="tool_calls")
    model, (_a, _b) = chain(([ServerError("before any event")],), (answer,))
    with model.stream("book it") as s:
        events = list(s)
    assert len(s.response.tool_calls) == 1
    assert s.response.tool_calls[0] == call
    assert {e.tool_call_id for e in events if e.kind == "tool_call"} == {"call_1", None}
    assert sum(1 for e in events if e.kind == "tool_call" and e.tool_name) == 1
    reply = FallbackModel([TestModel(ServerError("x")), TestModel(answer)]).chat("book it")
    assert reply.tool_calls == [call]


def test_the_deadline_stops_the_chain() -> None:
    clock = ManualClock()

    def slow(_req: object) -> str:
        clock.advance(11.0)  # the first provider takes 11 s... then fails
        raise ServerError("timeout-ish")

    second = TestModel("too late", provider="p1")
    model = FallbackModel([FunctionModel(slow, provider="p0"), second], clock=clock, timeout=10.0)
    with pytest.raises(AllProvidersFailedError) as info:
        model.chat("hi")
    assert isinstance(info.value.errors[-1], DeadlineExceededError)
    assert "p1" in str(info.value.errors[-1])
    assert len(second.requests) == 0


def test_deadline_exceeded_before_the_first_provider() -> None:
    clock = ManualClock()
    model, (a, b) = chain(("x",), ("y",), clock=clock)
    with pytest.raises(AllProvidersFailedError):
        model.chat("hi", timeout=0.0)
    assert len(a.requests) == len(b.requests) == 0


def test_custom_fallback_rule() -> None:
    models = [TestModel(InvalidRequestError("context too long", status_code=400)), TestModel("bigger model")]
    assert FallbackModel(models, fallback_on=lambda e: True).chat("hi").text == "bigger model"


def test_retry_around_the_cascade_walks_it_at_once_then_backs_off() -> None:
    clock = ManualClock()
    p0 = TestModel(RateLimitError("429", retry_after=20.0), RateLimitError("429", retry_after=20.0), provider="p0")
    p1 = TestModel(ServerError("503"), "p1 is back", provider="p1")
    model = RetryModel(FallbackModel([p0, p1]), RetryPolicy(max_attempts=3, initial_backoff=1.0, jitter=False),
                       clock=clock)
    reply = model.chat("hi")
    assert reply.provider == "p1"
    assert reply.text == "p1 is back"
    # attempt 1: p0 429 -> p1 503 at once (no wait for p0's Retry-After); one backoff; attempt 2: p0 429 -> p1 ok
    assert clock.sleeps == [1.0]
    assert len(p0.requests) == 2
    assert len(p1.requests) == 2


def test_agent_config_builds_retry_around_fallback() -> None:
    agent = AgentConfig.model_validate({
        "name": "a", "providers": [{"model": "test:one", "provider": None}, {"model": "gpt-4o", "provider": "openai",
                                                                             "api_key": "sk-0123456789abcdef"}],
        "retry": {"max_attempts": 2, "initial_backoff": "10ms", "max_backoff": "1s"}, "timeout": "30s"})
    model = new(agent, environ={})
    assert isinstance(model, RetryModel)
    assert isinstance(model.inner, FallbackModel)
    assert [m.provider for m in model.inner.models] == ["test", "openai"]
    assert model.timeout == 30.0
    assert model.policy.max_attempts == 2
    model.close()


def test_events_are_never_duplicated_by_retry_plus_fallback() -> None:
    clock = ManualClock()
    p0 = TestModel([ServerError("x")], [ServerError("y")], provider="p0")
    p1 = TestModel([ProviderConnectionError("z")], ["a", "b", "c"], provider="p1")
    model = RetryModel(FallbackModel([p0, p1]), RetryPolicy(max_attempts=3, jitter=False), clock=clock)
    with model.stream("hi") as s:
        texts = [e.text for e in s if e.kind == "text"]
    assert texts == ["a", "b", "c"]
    assert s.events_delivered == 5
    assert [e.kind for e in [StreamEvent.text_delta("a")]] == ["text"]
