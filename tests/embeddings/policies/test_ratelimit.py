"""RateLimitedEmbeddings: request and token buckets on a manual clock, concurrency, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from aixpy.embeddings.base import Embedded
from aixpy.embeddings.policies import RateLimitedEmbeddings, RateLimiter, TokenBucket, count_tokens, deadline
from aixpy.llm.deadline import Deadline, DeadlineExceededError, ManualClock

from ._fakes import Scripted, reference


def test_token_bucket_reservations() -> None:
    bucket = TokenBucket(rate=2.0, capacity=2.0, now=0.0)
    assert bucket.wait_for(1, 0.0) == 0.0
    bucket.take(1)
    bucket.take(1)
    assert bucket.wait_for(1, 0.0) == pytest.approx(0.5)
    assert bucket.wait_for(1, 0.25) == pytest.approx(0.25)
    assert bucket.wait_for(5, 100.0) == pytest.approx(1.5)  # never more than capacity banked


def test_requests_per_second_spaces_calls() -> None:
    clock = ManualClock()
    inner = Scripted()
    svc = RateLimitedEmbeddings(inner, requests_per_second=2.0, clock=clock)
    for i in range(5):
        svc.embed(f"t{i}")
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])   # a burst of 2, then one every 0.5 s
    assert len(inner.requests) == 5


def test_a_call_costs_one_request_per_sub_batch() -> None:
    clock = ManualClock()
    svc = RateLimitedEmbeddings(Scripted(batch_size=2), requests_per_second=1.0, clock=clock)
    svc.embed_batch(["a", "b", "c", "d", "e"])              # 3 requests, 1 banked
    assert clock.sleeps == pytest.approx([2.0])


def test_tokens_per_minute_uses_the_cost_trackers_count() -> None:
    clock = ManualClock()
    text = "x" * 400                                         # 100 tokens by the 4-characters estimate
    assert count_tokens([text], "scripted").tokens == 100
    svc = RateLimitedEmbeddings(Scripted(), tokens_per_minute=150, clock=clock)
    svc.embed(text)                                          # 150 banked -> 50 left
    svc.embed(text)                                          # needs 50 more: 20 s at 2.5 tokens/s
    assert clock.sleeps == pytest.approx([20.0])


def test_wait_past_the_deadline_raises_at_once_and_reserves_nothing() -> None:
    clock = ManualClock()
    inner = Scripted()
    svc = RateLimitedEmbeddings(inner, requests_per_second=0.1, clock=clock)
    svc.embed("a")                                           # uses the only request banked
    with deadline(5.0, clock=clock), pytest.raises(DeadlineExceededError, match=r"would wait 10\.000 s"):
        svc.embed("b")
    assert clock.sleeps == []
    assert len(inner.requests) == 1
    svc.embed("c")                                           # the refused call took nothing: 10 s from the first
    assert clock.sleeps == pytest.approx([10.0])


def test_expired_deadline_sends_nothing() -> None:
    clock = ManualClock()
    inner = Scripted()
    svc = RateLimitedEmbeddings(inner, requests_per_second=100.0, clock=clock, timeout=0.0)
    with pytest.raises(DeadlineExceededError):
        svc.embed("a")
    assert inner.requests == []


def test_max_concurrency_across_threads() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def busy(_: list[str]) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1

    svc = RateLimitedEmbeddings(Scripted(on_request=busy), max_concurrency=2)
    threads = [threading.Thread(target=svc.embed, args=(f"t{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["peak"] == 2
    assert svc.limiter.stats()["in_flight"] == 0


class Gated(Scripted):
    """Async requests that wait for ``gate`` (so a test can hold a concurrency slot)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def _aembed_part(self, texts: list[str]) -> Embedded:
        self.requests.append(list(texts))
        self.started.set()
        await self.gate.wait()
        return Embedded(reference(texts))


async def test_cancelled_waiter_leaks_no_slot() -> None:
    inner = Gated()
    svc = RateLimitedEmbeddings(inner, max_concurrency=1)
    holder = asyncio.create_task(svc.aembed("first"))
    await inner.started.wait()
    waiter = asyncio.create_task(svc.aembed("second"))
    await asyncio.sleep(0.01)
    assert svc.limiter.stats()["waiting"] == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert svc.limiter.stats()["waiting"] == 0
    inner.gate.set()
    await holder
    assert svc.limiter.stats()["in_flight"] == 0
    np.testing.assert_array_equal(await svc.aembed_array(["third"]), reference(["third"]))
    assert inner.requests == [["first"], ["third"]]


async def test_slot_wait_is_bounded_by_the_deadline() -> None:
    inner = Gated()
    svc = RateLimitedEmbeddings(inner, max_concurrency=1)
    holder = asyncio.create_task(svc.aembed("first"))
    await inner.started.wait()
    start = time.monotonic()
    with deadline(0.05), pytest.raises(DeadlineExceededError, match="no request slot"):
        await svc.aembed("second")
    assert time.monotonic() - start < 1.0
    assert svc.limiter.stats()["waiting"] == 0
    inner.gate.set()
    await holder
    assert svc.limiter.stats()["in_flight"] == 0


async def test_cancelled_bucket_wait_gives_its_tokens_back() -> None:
    limiter = RateLimiter(requests_per_second=1.0)
    limiter.reserve(0, Deadline(None))                       # empty the bucket: the next call waits ~1 s
    svc = RateLimitedEmbeddings(Scripted(), limiter)
    task = asyncio.create_task(svc.aembed("a"))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.reserve(0, Deadline(None)) == pytest.approx(1.0, abs=0.1)   # not 2 s: the refund happened
    assert limiter.stats()["in_flight"] == 0


async def test_async_matches_sync_on_the_manual_clock() -> None:
    sync_clock, async_clock = ManualClock(), ManualClock()
    sync = RateLimitedEmbeddings(Scripted(), requests_per_second=4.0, tokens_per_minute=600, clock=sync_clock)
    asvc = RateLimitedEmbeddings(Scripted(), requests_per_second=4.0, tokens_per_minute=600, clock=async_clock)
    texts = [["alpha " * 30], ["beta"], ["gamma " * 50, "delta"], ["e"], ["f"], ["g"]]
    for batch in texts:
        assert sync.embed_batch(batch) == await asvc.aembed_batch(batch)
    assert sync_clock.sleeps == pytest.approx(async_clock.sleeps)
    assert sync_clock.sleeps
