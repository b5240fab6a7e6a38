"""RetryModel / RetryPolicy: backoff maths, what is retried, Retry-After against the deadline, streams
retried only before their first delivered event. Sleeps go to a ManualClock: no test waits."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from aixpy.config import RetryConfig
from aixpy.errors import (
    AllProvidersFailedError,
    AuthenticationError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm import Deadline, ManualClock, RetryModel, RetryPolicy, StreamEvent, StreamInterruptedError, TestModel
from aixpy.llm.deadline import DeadlineExceededError

from .test_provider_server import acollect

NO_JITTER = RetryPolicy(max_attempts=5, initial_backoff=1.0, max_backoff=5.0, multiplier=2.0, jitter=False)


def retry(inner: TestModel, policy: RetryPolicy = NO_JITTER, **kw: object) -> tuple[RetryModel, ManualClock]:
    clock = ManualClock()
    return RetryModel(inner, policy, clock=clock, **kw), clock  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the policy


def test_exponential_backoff_capped() -> None:
    rng = random.Random(0)
    assert [NO_JITTER.backoff(n, rng) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_under_the_cap() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=8.0, multiplier=2.0, jitter=True)
    rng = random.Random(42)
    for attempt in range(1, 8):
        cap = min(8.0, 2.0 ** (attempt - 1))
        draws = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in draws)
        assert max(draws) > cap * 0.8
        assert min(draws) < cap * 0.2


def test_from_retry_config() -> None:
    cfg = RetryConfig(max_attempts=4, initial_backoff="500ms", max_backoff="10s", multiplier=3, jitter=False,
                      retry_on=["rate_limit", "timeout"])
    policy = RetryPolicy.from_config(cfg)
    assert (policy.max_attempts, policy.initial_backoff, policy.max_backoff, policy.multiplier) == (4, 0.5, 10.0, 3.0)
    assert set(policy.retry_on) == {"rate_limit", "timeout"}
    assert not policy.retries(ServerError("x"))
    assert policy.retries(RateLimitError("x"))
    assert policy.retries(ProviderTimeoutError("x"))


@pytest.mark.parametrize(("err", "retried"), [
    (RateLimitError("429"), True),
    (RateLimitError("quota", retryable=False), False),  # an exhausted quota: waiting does not help
    (ProviderTimeoutError("t"), True),
    (ServerError("500"), True),
    (ProviderConnectionError("reset"), True),
    (AuthenticationError("401"), False),
    (InvalidRequestError("400"), False),
    (ResponseFormatError("garbage"), False),
    (DeadlineExceededError("late"), False),
    (StreamInterruptedError(ServerError("x"), delivered=2, provider="p", model="m"), False),
    (AllProvidersFailedError([AuthenticationError("a"), ServerError("b")]), True),
    (AllProvidersFailedError([AuthenticationError("a"), InvalidRequestError("b")]), False),
])
def test_what_is_retried(err: Exception, retried: bool) -> None:
    assert RetryPolicy().retries(err) is retried


def test_retry_after_is_honoured_and_bounded() -> None:
    clock = ManualClock()
    rng = random.Random(0)
    never = Deadline.after(None, clock)
    assert NO_JITTER.next_delay(1, RateLimitError("x", retry_after=7.0), never, rng) == 7.0
    assert NO_JITTER.next_delay(1, RateLimitError("x", retry_after=61.0), never, rng) is None  # > max_retry_after
    soon = Deadline.after(5.0, clock)
    assert NO_JITTER.next_delay(1, RateLimitError("x", retry_after=7.0), soon, rng) is None  # beyond the deadline
    assert NO_JITTER.next_delay(1, ServerError("x"), soon, rng) == 1.0
    assert NO_JITTER.next_delay(5, ServerError("x"), never, rng) is None  # max_attempts reached


def test_a_failed_chain_waits_for_its_soonest_provider() -> None:
    chain = AllProvidersFailedError([RateLimitError("a", retry_after=30.0), RateLimitError("b", retry_after=4.0)])
    assert NO_JITTER.server_wait(chain) == 4.0
    mixed = AllProvidersFailedError([RateLimitError("a", retry_after=30.0), ServerError("b")])
    assert NO_JITTER.server_wait(mixed) is None  # the 5xx provider may be back at once: normal backoff


# --------------------------------------------------------------------------- the model


def test_retries_then_answers_with_backoff_sleeps() -> None:
    inner = TestModel(ServerError("500"), ProviderConnectionError("reset"), "finally")
    model, clock = retry(inner)
    reply = model.chat("hi")
    assert reply.text == "finally"
    assert clock.sleeps == [1.0, 2.0]
    assert len(inner.requests) == 3


async def test_async_retries_identically() -> None:
    inner = TestModel(RateLimitError("429", retry_after=3.0), "ok")
    model, clock = retry(inner)
    assert (await model.achat("hi")).text == "ok"
    assert clock.sleeps == [3.0]


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    inner = TestModel(*[ServerError(f"boom {i}") for i in range(5)])
    model, clock = retry(inner, RetryPolicy(max_attempts=3, initial_backoff=0.5, jitter=False))
    with pytest.raises(ServerError, match="boom 2"):
        model.chat("hi")
    assert len(inner.requests) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_non_retryable_errors_raise_at_once() -> None:
    inner = TestModel(InvalidRequestError("bad"), "unused")
    model, clock = retry(inner)
    with pytest.raises(InvalidRequestError):
        model.chat("hi")
    assert len(inner.requests) == 1
    assert clock.sleeps == []


def test_long_retry_after_beyond_the_deadline_fails_fast() -> None:
    inner = TestModel(RateLimitError("429", retry_after=30.0), "late")
    model, clock = retry(inner)
    with pytest.raises(RateLimitError):
        model.chat("hi", timeout=10.0)
    assert clock.sleeps == []
    assert len(inner.requests) == 1


def test_the_deadline_covers_every_attempt() -> None:
    clock = ManualClock()
    inner = TestModel(ServerError("a"), ServerError("b"), ServerError("c"), "never")
    model = RetryModel(inner, RetryPolicy(max_attempts=10, initial_backoff=2.0, multiplier=1.0, jitter=False),
                       clock=clock, timeout=5.0)
    with pytest.raises(ServerError, match="c"):
        model.chat("hi")  # fails at t=0, 2, 4; a third 2 s wait would end after the 5 s deadline
    assert clock.sleeps == [2.0, 2.0]
    assert len(inner.requests) == 3


def test_stream_retried_before_its_first_event() -> None:
    inner = TestModel([ServerError("before anything")], ["Hel", "lo"])
    model, clock = retry(inner)
    with model.stream("hi") as s:
        events = list(s)
    assert [e.text for e in events if e.kind == "text"] == ["Hel", "lo"]
    assert s.response.text == "Hello"
    assert clock.sleeps == [1.0]


async def test_async_stream_not_retried_after_an_event_was_delivered() -> None:
    cut = ProviderConnectionError("connection reset", provider="test")
    inner = TestModel(["Hel", cut], ["never", "sent"])
    model, clock = retry(inner)
    seen: list[StreamEvent] = []
    with pytest.raises(StreamInterruptedError) as info:
        await acollect(model.astream("hi"), seen)
    assert [e.text for e in seen] == ["Hel"]
    assert info.value.events_delivered == 1
    assert info.value.__cause__ is cut
    assert info.value.retryable is False
    assert "test" in str(info.value)
    assert len(inner.requests) == 1
    assert clock.sleeps == []


def test_retry_config_object_accepted_directly() -> None:
    cfg = RetryConfig(max_attempts=2, initial_backoff=timedelta(seconds=0.25), jitter=False)
    inner = TestModel(ServerError("x"), "ok")
    model = RetryModel(inner, cfg, clock=(clock := ManualClock()))
    assert model.chat("hi").text == "ok"
    assert clock.sleeps == [0.25]
    assert model.provider == "test"
    assert model.model == "test"
