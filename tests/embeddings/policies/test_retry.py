"""RetryingEmbeddings: only retryable errors, Retry-After, max attempts, the deadline, partial batches.
Sleeps go to a ManualClock: no test waits."""

from __future__ import annotations

import numpy as np
import pytest

from aixpy.embeddings.policies import RetryingEmbeddings, RetryPolicy, deadline
from aixpy.errors import (
    AuthenticationError,
    InvalidRequestError,
    ModelLoadingError,
    PartialBatchError,
    ProviderConnectionError,
    RateLimitError,
    ServerError,
)
from aixpy.llm.deadline import DeadlineExceededError, ManualClock

from ._fakes import Scripted, reference

NO_JITTER = RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=5.0, multiplier=2.0, jitter=False)


def retrying(inner: Scripted, policy: RetryPolicy = NO_JITTER) -> tuple[RetryingEmbeddings, ManualClock]:
    clock = ManualClock()
    return RetryingEmbeddings(inner, policy, clock=clock), clock


def test_retries_retryable_errors_with_exponential_backoff() -> None:
    inner = Scripted(script=[ServerError("5xx"), ProviderConnectionError("reset")])
    svc, clock = retrying(inner)
    out = svc.embed_array(["a", "b"])
    np.testing.assert_array_equal(out, reference(["a", "b"]))
    assert clock.sleeps == [1.0, 2.0]
    assert len(inner.requests) == 3
    assert svc.retries == 2


def test_retry_after_replaces_the_backoff() -> None:
    inner = Scripted(script=[RateLimitError("slow down", retry_after=7.0)])
    svc, clock = retrying(inner)
    svc.embed("a")
    assert clock.sleeps == [7.0]


def test_a_loading_models_estimate_replaces_the_backoff() -> None:
    inner = Scripted(script=[ModelLoadingError("loading", retry_after=12.5),
                             ModelLoadingError("still", retry_after=90)])
    svc, clock = retrying(inner)
    with pytest.raises(ModelLoadingError, match="still"):
        svc.embed("a")                        # 90 s is longer than max_retry_after (60 s): give up at once
    assert clock.sleeps == [12.5]


@pytest.mark.parametrize("error", [InvalidRequestError("bad", status_code=400), AuthenticationError("key"),
                                   RateLimitError("quota exhausted", retryable=False)])
def test_non_retryable_errors_are_raised_at_once(error: Exception) -> None:
    inner = Scripted(script=[error])
    svc, clock = retrying(inner)
    with pytest.raises(type(error)) as info:
        svc.embed("a")
    assert info.value is error
    assert clock.sleeps == []
    assert len(inner.requests) == 1


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    errors = [ServerError(f"fail {i}") for i in range(5)]
    inner = Scripted(script=errors)
    svc, clock = retrying(inner)
    with pytest.raises(ServerError) as info:
        svc.embed("a")
    assert info.value is errors[3]
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(inner.requests) == 4


def test_never_sleeps_past_the_callers_deadline() -> None:
    inner = Scripted(script=[ServerError("1"), ServerError("2"), ServerError("3")])
    svc, clock = retrying(inner)
    with deadline(2.5, clock=clock), pytest.raises(ServerError, match="2"):
        svc.embed("a")
    assert clock.sleeps == [1.0]           # the next backoff (2 s) would end after the deadline
    assert clock.slept < 2.5


def test_retry_after_longer_than_the_deadline_is_not_waited_for() -> None:
    inner = Scripted(script=[RateLimitError("wait", retry_after=30.0)])
    svc, clock = retrying(inner)
    svc.timeout = 10.0
    with pytest.raises(RateLimitError):
        svc.embed("a")
    assert clock.sleeps == []


def test_partial_batch_resends_only_the_failed_texts() -> None:
    inner = Scripted(batch_size=2, fail_text={"c": [ServerError("once")]})
    svc, clock = retrying(inner)
    texts = ["a", "b", "c", "d", "e"]
    out, usage = svc.embed_with_usage(texts)
    np.testing.assert_array_equal(out, reference(texts))
    assert inner.requests == [["a", "b"], ["c", "d"], ["e"], ["c", "d"]]
    assert clock.sleeps == [1.0]
    assert (usage.texts, usage.requests) == (5, 4)


def test_partial_batch_exhausted_keeps_every_vector_obtained() -> None:
    inner = Scripted(batch_size=1, fail_text={"b": [ServerError("x")] * 9, "c": [ServerError("once")]})
    svc, _ = retrying(inner, RetryPolicy(max_attempts=2, initial_backoff=1.0, jitter=False))
    with pytest.raises(PartialBatchError) as info:
        svc.embed_batch(["a", "b", "c"])
    err = info.value
    assert err.failed == [1]
    np.testing.assert_array_equal(np.array([err.vectors[0], err.vectors[2]]), reference(["a", "c"]))
    assert err.vectors[1] is None
    assert inner.texts_sent == ["a", "b", "c", "b", "c"]
    assert err.usage.texts == 2  # type: ignore[attr-defined]


def test_partial_batch_with_only_non_retryable_errors_is_not_retried() -> None:
    inner = Scripted(batch_size=1, fail_text={"b": [InvalidRequestError("too long", status_code=400)]})
    svc, clock = retrying(inner)
    with pytest.raises(PartialBatchError):
        svc.embed_batch(["a", "b"])
    assert clock.sleeps == []
    assert len(inner.requests) == 2


async def test_async_twin_behaves_the_same() -> None:
    inner = Scripted(batch_size=2, fail_text={"c": [RateLimitError("429", retry_after=3.0)]})
    svc, clock = retrying(inner)
    texts = ["a", "b", "c", "d", "e"]
    out = await svc.aembed_array(texts)
    np.testing.assert_array_equal(out, reference(texts))
    assert clock.sleeps == [3.0]
    assert sorted(map(tuple, inner.requests)) == sorted([("a", "b"), ("c", "d"), ("e",), ("c", "d")])


async def test_async_deadline() -> None:
    inner = Scripted(script=[ServerError("1")] * 3)
    svc, clock = retrying(inner)
    with deadline(0.5, clock=clock), pytest.raises(ServerError):
        await svc.aembed("a")
    assert clock.sleeps == []


def test_a_rate_limiters_deadline_error_is_not_retried() -> None:
    inner = Scripted(script=[DeadlineExceededError("rate limit wait would pass the deadline")])
    svc, clock = retrying(inner)
    with pytest.raises(DeadlineExceededError):
        svc.embed("a")
    assert (clock.sleeps, len(inner.requests)) == ([], 1)
