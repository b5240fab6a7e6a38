"""``InstrumentedModel`` on the in-memory models the project ships (TestModel, FunctionModel), alone and
around retry/fallback stacks: exact event fields, errors by type, no content, nothing built when
nobody listens, a broken handler never breaks the call."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from aixpy import telemetry
from aixpy.errors import AllProvidersFailedError, AuthenticationError, RateLimitError, ServerError
from aixpy.llm import ChatRequest, FunctionModel, ManualClock, StreamEvent, StreamInterruptedError, TestModel
from aixpy.llm.policies import FallbackModel, InstrumentedModel, RetryModel, RetryPolicy
from aixpy.llm.policies import instrumented as instrumented_module
from aixpy.telemetry import LLMEvent

from .conftest import Events, assert_no_content

PROMPT = "what is the secret plan of zebra-otter"
ANSWER = "the plan of quokka-lynx is hidden"
# gpt-4o-mini: $0.15 in / $0.60 out per 1M tokens; TestModel counts words
PRICE_IN, PRICE_OUT = 0.15 / 1e6, 0.60 / 1e6


def only(events: Events) -> LLMEvent:
    got = events.of(LLMEvent)
    assert len(got) == 1, got
    e = got[0]
    assert isinstance(e, LLMEvent)
    return e


def test_chat_emits_one_event_with_usage_cost_and_who_served(events: Events) -> None:
    model = InstrumentedModel(TestModel(ANSWER, provider="openai", model="gpt-4o-mini"))
    before = time.time()
    reply = model.chat(PROMPT)
    e = only(events)
    assert e.kind == "llm.call"
    assert e.ok
    assert (e.provider, e.model, e.operation, e.finish_reason) == ("openai", "gpt-4o-mini", "chat", "stop")
    assert (e.input_tokens, e.output_tokens, e.cached_input_tokens, e.reasoning_tokens) == (7, 6, 0, 0)
    assert e.cost_usd == pytest.approx(7 * PRICE_IN + 6 * PRICE_OUT)
    assert e.cost_usd == pytest.approx(reply.cost_usd)  # priced as the answer is
    assert (e.attempts, e.fallbacks, e.events, e.completed, e.time_to_first_token) == (1, 0, 0, True, None)
    assert before <= e.timestamp <= time.time()
    assert 0 < e.duration < 1
    assert reply.text == ANSWER
    assert reply.provider == "openai"
    assert_no_content(events, "zebra-otter", "quokka-lynx")


def test_unknown_price_or_missing_usage_is_none_not_zero(events: Events) -> None:
    from aixpy.llm import ChatResponse

    model = InstrumentedModel(TestModel("hi", ChatResponse(text="no usage"), provider="test", model="unpriced"))
    model.chat("x")
    model.chat("y")
    first, second = events.of(LLMEvent)
    assert isinstance(first, LLMEvent)
    assert isinstance(second, LLMEvent)
    assert first.input_tokens == 1
    assert first.cost_usd is None
    assert second.input_tokens is None
    assert second.output_tokens is None
    assert second.cost_usd is None
    assert "input_tokens" not in second.measures()
    assert "cost_usd" not in first.measures()


def test_stream_measures_time_to_first_token_and_counts_events(events: Events) -> None:
    def slow(req: ChatRequest) -> Iterator[str | StreamEvent]:
        time.sleep(0.05)
        yield "the "
        time.sleep(0.05)
        yield "answer"

    model = InstrumentedModel(FunctionModel(stream_fn=slow, provider="openai", model="gpt-4o-mini"))
    with model.stream(PROMPT) as s:
        text = "".join(s.text_deltas())
    assert text == "the answer"
    e = only(events)
    assert (e.operation, e.finish_reason, e.events, e.completed, e.error) == ("stream", "stop", 4, True, None)
    assert e.time_to_first_token is not None
    assert 0.05 <= e.time_to_first_token < e.duration
    assert e.duration >= 0.1
    assert e.output_tokens is None
    assert e.cost_usd is None


async def test_async_chat_stream_and_list_models(events: Events) -> None:
    model = InstrumentedModel(TestModel(ANSWER, "a b", provider="openai", model="gpt-4o-mini"))
    await model.achat(PROMPT)
    async with model.astream(PROMPT) as s:
        async for _ in s:
            pass
    assert await model.alist_models() == ["gpt-4o-mini"]
    assert model.list_models() == ["gpt-4o-mini"]
    chat, stream, alist, slist = events.of(LLMEvent)
    assert isinstance(chat, LLMEvent)
    assert isinstance(stream, LLMEvent)
    assert (chat.operation, chat.output_tokens) == ("chat", 6)
    assert (stream.operation, stream.input_tokens, stream.output_tokens, stream.events, stream.completed) == (
        "stream", 7, 2, 4, True)  # two text deltas, usage, finish
    assert stream.cost_usd == pytest.approx(7 * PRICE_IN + 2 * PRICE_OUT)
    assert stream.time_to_first_token is not None
    for e in (alist, slist):
        assert isinstance(e, LLMEvent)
        assert (e.operation, e.provider, e.model, e.input_tokens, e.attempts, e.error) == (
            "list_models", "openai", "gpt-4o-mini", None, 0, None)


def test_a_stream_closed_early_is_not_completed_and_not_an_error(events: Events) -> None:
    model = InstrumentedModel(TestModel(["one ", "two ", "three"], provider="openai", model="gpt-4o-mini"))
    with model.stream(PROMPT) as s:
        next(iter(s))
    e = only(events)
    assert (e.completed, e.error, e.events, e.finish_reason, e.input_tokens) == (False, None, 1, None, None)


def test_errors_are_recorded_by_type_and_reraised_unchanged(events: Events) -> None:
    boom = AuthenticationError("bad key sk-abc for zebra-otter", provider="openai", model="gpt-4o-mini")
    model = InstrumentedModel(TestModel(boom, provider="openai", model="gpt-4o-mini"))
    with pytest.raises(AuthenticationError) as info:
        model.chat(PROMPT)
    assert info.value is boom
    e = only(events)
    assert (e.error, e.ok, e.provider, e.attempts, e.input_tokens, e.cost_usd) == (
        "AuthenticationError", False, "openai", 1, None, None)
    assert e.labels()["error"] == "AuthenticationError"
    assert_no_content(events, "zebra-otter", "sk-abc")  # the message is never copied


def test_a_stream_failing_mid_way_records_the_interruption(events: Events) -> None:
    model = InstrumentedModel(TestModel(["one ", ServerError("down", provider="openai")],
                                        provider="openai", model="gpt-4o-mini"))
    with pytest.raises(StreamInterruptedError), model.stream(PROMPT) as s:
        for _ in s:
            pass
    e = only(events)
    assert (e.error, e.events, e.completed) == ("ServerError", 1, True)
    assert e.time_to_first_token is not None


def test_around_retry_and_fallback_one_event_counts_attempts_and_fallbacks(events: Events) -> None:
    primary = TestModel(RateLimitError("slow down", provider="openai"), RateLimitError("again", provider="openai"),
                        provider="openai", model="gpt-4o-mini")
    backup = TestModel(ServerError("down", provider="anthropic"), ANSWER, provider="anthropic",
                       model="claude-3-5-haiku-latest")
    clock = ManualClock()
    stack = RetryModel(FallbackModel([primary, backup]), RetryPolicy(max_attempts=3, jitter=False), clock=clock)
    model = InstrumentedModel(stack)
    assert model.provider == "fallback"
    reply = model.chat(PROMPT)
    assert reply.provider == "anthropic"
    e = only(events)
    assert (e.provider, e.model, e.attempts, e.fallbacks, e.error) == (
        "anthropic", "claude-3-5-haiku-latest", 4, 1, None)


def test_inside_a_retry_one_event_per_attempt(events: Events) -> None:
    inner = InstrumentedModel(TestModel(ServerError("down", provider="openai"), ANSWER, provider="openai",
                                        model="gpt-4o-mini"))
    RetryModel(inner, RetryPolicy(max_attempts=2, jitter=False), clock=ManualClock()).chat(PROMPT)
    failed, ok = events.of(LLMEvent)
    assert isinstance(failed, LLMEvent)
    assert isinstance(ok, LLMEvent)
    assert (failed.error, failed.attempts, ok.error, ok.attempts) == ("ServerError", 1, None, 1)


def test_every_provider_failing_names_the_chain_error(events: Events) -> None:
    model = InstrumentedModel(FallbackModel([TestModel(ServerError("x"), provider="a", model="m"),
                                             TestModel(ServerError("y"), provider="b", model="n")]))
    with pytest.raises(AllProvidersFailedError):
        model.chat(PROMPT)
    e = only(events)
    assert (e.error, e.attempts, e.provider, e.fallbacks) == ("AllProvidersFailedError", 2, "b", 1)


def test_the_wrappers_own_handler_gets_the_events_without_any_subscriber() -> None:
    mine: list[telemetry.Event] = []
    model = InstrumentedModel(TestModel(ANSWER), on_event=mine.append)
    model.chat(PROMPT)
    assert len(mine) == 1
    assert isinstance(mine[0], LLMEvent)


def test_nothing_is_measured_nor_built_when_nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("built while nobody listens")

    monkeypatch.setattr(instrumented_module, "Timer", forbidden)
    monkeypatch.setattr(instrumented_module, "LLMEvent", forbidden)
    model = InstrumentedModel(TestModel(ANSWER, ["a ", "b"]))
    assert model.chat(PROMPT).text == ANSWER
    with model.stream(PROMPT) as s:
        assert "".join(s.text_deltas()) == "a b"
    assert model.list_models() == ["test"]


def test_a_broken_handler_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(e: telemetry.Event) -> None:
        raise ValueError("exporter down")

    model = InstrumentedModel(TestModel(ANSWER, [ANSWER]), on_event=broken)
    assert model.chat(PROMPT).text == ANSWER
    with model.stream(PROMPT) as s:
        assert s.get_response().text == ANSWER
    assert "telemetry handler" in caplog.text
