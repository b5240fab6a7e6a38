"""Batching shared by every provider (``aixpy.embeddings.base``): splitting, bounded concurrency, order,
partial failures, usage, and sync/async parity — through the real OpenAI provider and a loopback server."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aixpy.config.embeddings import OpenAIEmbeddingsConfig
from aixpy.embeddings.base import Embedded, EmbeddingService, EmbeddingUsage, Matrix, estimate_tokens, split_by_budget
from aixpy.embeddings.openai import OpenAIEmbeddings
from aixpy.errors import (
    AuthenticationError,
    InvalidRequestError,
    PartialBatchError,
    ResponseFormatError,
    ServerError,
)

from . import _servers
from ._servers import LoopbackServer, Recorded, Reply, fake_openai, vector_for

loopback = _servers.loopback  # the fixture: a fresh loopback server per test

TEXTS = [f"text number {i} about topic {i % 7}" for i in range(23)]


def expected(texts: list[str], dims: int = 8) -> Matrix:
    return np.array([vector_for(t, dims) for t in texts], dtype=np.float32)


def service(srv: LoopbackServer, *, batch_size: int = 5, max_concurrency: int = 4, **kw: Any) -> OpenAIEmbeddings:
    cfg = OpenAIEmbeddingsConfig(model="compat-embedder", base_url=srv.url + "/v1", batch_size=batch_size)
    return OpenAIEmbeddings(cfg, max_concurrency=max_concurrency, **kw)


class InFlight:
    """A handler wrapper that sleeps a random time per request and counts requests in flight."""

    def __init__(self, inner: Callable[[Recorded], Reply], seed: int = 1, max_delay: float = 0.05) -> None:
        self.inner, self.rng, self.max_delay = inner, random.Random(seed), max_delay
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, rec: Recorded) -> Reply:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            delay = self.rng.uniform(0, self.max_delay)
        time.sleep(delay)  # sub-batches finish out of order
        try:
            return self.inner(rec)
        finally:
            with self.lock:
                self.now -= 1


def fail_batches_with(word: str, reply: Reply, inner: Callable[[Recorded], Reply]) -> Callable[[Recorded], Reply]:
    def handle(rec: Recorded) -> Reply:
        return reply if any(word in t for t in rec.json["input"]) else inner(rec)

    return handle


# --------------------------------------------------------------------------- splitting (pure)


def test_split_by_count_and_by_budget() -> None:
    assert split_by_budget(["a"] * 7, 3) == [(0, 3), (3, 6), (6, 7)]
    texts = ["aaaa", "bb", "cccccc", "d", "eeeeeeeeeeee", "f"]
    plan = split_by_budget(texts, 10, max_tokens=8, cost=len)
    assert plan == [(0, 2), (2, 4), (4, 5), (5, 6)]  # "eeeeeeeeeeee" (12 > 8) goes alone
    for start, stop in plan:
        assert stop - start == 1 or sum(len(t) for t in texts[start:stop]) <= 8
    assert split_by_budget(texts, 2, max_tokens=100, cost=len) == [(0, 2), (2, 4), (4, 6)]


def test_a_bad_split_hook_is_a_bug_not_a_silent_loss() -> None:
    class Gappy(EmbeddingService):
        def _split(self, texts: list[str]) -> list[tuple[int, int]]:
            return [(0, 1), (2, len(texts))]

        def _embed_texts(self, texts: list[str]) -> Matrix:
            return np.zeros((len(texts), 2), dtype=np.float32)

    with pytest.raises(RuntimeError, match="non-contiguous"):
        Gappy(model="m", dimensions=2).embed_batch(["a", "b", "c"])


# --------------------------------------------------------------------------- order and concurrency


def test_order_preserved_under_concurrency_sync(loopback: LoopbackServer) -> None:
    flight = InFlight(fake_openai(dims=8, shuffle=True))
    loopback.handler = flight
    with service(loopback, batch_size=3, max_concurrency=3) as svc:
        got, usage = svc.embed_with_usage(TEXTS)
    np.testing.assert_array_equal(got, expected(TEXTS))
    assert len(loopback.take()) == usage.requests == 8
    assert 1 < flight.peak <= 3, f"peak concurrency {flight.peak}"
    assert usage == EmbeddingUsage(len(TEXTS), sum(len(t.split()) for t in TEXTS), False, 8)


async def test_order_preserved_under_concurrency_async(loopback: LoopbackServer) -> None:
    flight = InFlight(fake_openai(dims=8, shuffle=True), seed=2)
    loopback.handler = flight
    async with service(loopback, batch_size=2, max_concurrency=4) as svc:
        got = await svc.aembed_array(TEXTS)
    np.testing.assert_array_equal(got, expected(TEXTS))
    assert 1 < flight.peak <= 4, f"peak concurrency {flight.peak}"
    firsts = [r.json["input"][0] for r in loopback.take()]
    assert sorted(firsts, key=TEXTS.index) == TEXTS[::2]  # every sub-batch sent exactly once


def test_max_concurrency_one_is_serial(loopback: LoopbackServer) -> None:
    flight = InFlight(fake_openai(dims=8), max_delay=0.01)
    loopback.handler = flight
    with service(loopback, batch_size=4, max_concurrency=1) as svc:
        np.testing.assert_array_equal(svc.embed_array(TEXTS), expected(TEXTS))
    assert flight.peak == 1


async def test_sync_and_async_give_the_same_vectors_usage_and_requests(loopback: LoopbackServer) -> None:
    loopback.handler = InFlight(fake_openai(dims=8, shuffle=True), max_delay=0.02)
    with service(loopback, batch_size=4) as svc:
        sync_out, sync_usage = await asyncio.to_thread(svc.embed_with_usage, TEXTS)
        sync_bodies = sorted(str(r.json) for r in loopback.take())
        async_out, async_usage = await svc.aembed_with_usage(TEXTS)
        async_bodies = sorted(str(r.json) for r in loopback.take())
        await svc.aclose()
    np.testing.assert_array_equal(sync_out, async_out)
    assert sync_usage == async_usage
    assert sync_bodies == async_bodies


# --------------------------------------------------------------------------- failures


def _partial(svc: OpenAIEmbeddings, texts: list[str]) -> PartialBatchError:
    with pytest.raises(PartialBatchError) as info:
        svc.embed_batch(texts)
    return info.value


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_partial_failure_reports_indexes_errors_and_kept_vectors(loopback: LoopbackServer, mode: str) -> None:
    texts = list(TEXTS)
    texts[7] = "this one is POISON"
    texts[16] = "POISON again"
    loopback.handler = InFlight(fail_batches_with("POISON", Reply.error(500), fake_openai(dims=8)), max_delay=0.02)

    async def run_async(svc: OpenAIEmbeddings) -> None:
        async with svc:
            await svc.aembed_batch(texts)

    svc = service(loopback, batch_size=5)
    if mode == "sync":
        with svc:
            err = _partial(svc, texts)
    else:
        with pytest.raises(PartialBatchError) as info:
            asyncio.run(run_async(svc))
        err = info.value
    assert err.failed == [5, 6, 7, 8, 9, 15, 16, 17, 18, 19]
    assert len(err.errors) == 2
    assert all(isinstance(e, ServerError) and e.status_code == 500 for e in err.errors)
    assert err.retryable
    assert len(err.vectors) == len(texts)
    want = expected(texts)
    for i, vec in enumerate(err.vectors):
        if i in err.failed:
            assert vec is None
        else:
            assert vec == want[i].tolist()
    usage = err.usage  # type: ignore[attr-defined]
    assert (usage.texts, usage.requests) == (len(texts) - 10, 5)
    assert "10 of 23 texts failed (indexes 5-9, 15-19)" in str(err)


def test_when_every_sub_batch_fails_alike_that_error_is_raised(loopback: LoopbackServer) -> None:
    loopback.reply = Reply.error(503, {"error": {"message": "overloaded"}})
    with service(loopback, batch_size=5) as svc, pytest.raises(ServerError, match="overloaded") as info:
        svc.embed_batch(TEXTS)
    assert not isinstance(info.value, PartialBatchError)
    assert info.value.status_code == 503
    assert info.value.retryable


def test_different_errors_everywhere_are_a_partial_with_nothing_kept(loopback: LoopbackServer) -> None:
    loopback.script(Reply.error(500), Reply.error(400, {"error": {"message": "input too long"}}))
    with service(loopback, batch_size=12, max_concurrency=1) as svc:
        err = _partial(svc, TEXTS)
    assert err.failed == list(range(len(TEXTS)))
    assert [type(e) for e in err.errors] == [ServerError, InvalidRequestError]
    assert err.vectors == [None] * len(TEXTS)


def test_authentication_failure_stops_sending(loopback: LoopbackServer) -> None:
    loopback.reply = Reply.error(401, {"error": {"message": "Incorrect API key provided"}})
    with service(loopback, batch_size=2, max_concurrency=1) as svc, pytest.raises(AuthenticationError):
        svc.embed_batch(TEXTS)
    assert len(loopback.take()) == 1  # not 12 doomed requests


def test_authentication_failure_after_successes_is_partial(loopback: LoopbackServer) -> None:
    ok = fake_openai(dims=8)
    loopback.script(ok(Recorded("POST", "/", {}, b'{"model": "m", "input": ["text number 0 about topic 0", '
                                                 b'"text number 1 about topic 1"]}')),
                    Reply.error(403))
    with service(loopback, batch_size=2, max_concurrency=1) as svc:
        err = _partial(svc, TEXTS[:6])
    assert err.failed == [2, 3, 4, 5]
    assert all(isinstance(e, AuthenticationError) for e in err.errors)
    assert err.vectors[:2] == expected(TEXTS[:2]).tolist()
    assert len(loopback.take()) == 2


def test_a_bug_in_a_provider_is_raised_as_is() -> None:
    class Buggy(EmbeddingService):
        batch_size = 2

        def _embed_texts(self, texts: list[str]) -> Matrix:
            if "b" in texts:
                raise KeyError("oops")
            return np.ones((len(texts), 2), dtype=np.float32)

    with pytest.raises(KeyError):
        Buggy(model="m", dimensions=2).embed_batch(["a", "x", "b", "c"])


# --------------------------------------------------------------------------- shapes, dims, usage


def test_dimensions_are_learned_once_and_then_enforced(loopback: LoopbackServer) -> None:
    loopback.handler = fake_openai(dims=6)
    with service(loopback) as svc:
        assert svc.known_dimensions() is None
        assert svc.dimensions() == 6  # a probe request
        assert svc.known_dimensions() == 6
        assert loopback.take_one().json["input"] == ["dimension probe"]
        loopback.handler = fake_openai(dims=7)
        with pytest.raises(ResponseFormatError, match=r"shape \(2, 7\), expected \(2, 6\)"):
            svc.embed_batch(["a", "b"])


def test_wrong_shape_from_a_sub_batch_is_a_failure_of_that_sub_batch() -> None:
    class Short(EmbeddingService):
        batch_size = 2

        def _embed_part(self, texts: list[str]) -> Embedded:
            rows = len(texts) - (1 if "short" in texts else 0)
            return Embedded(np.ones((rows, 3), dtype=np.float32), tokens=len(texts))

    with pytest.raises(PartialBatchError) as info:
        Short(model="m", dimensions=3).embed_batch(["a", "b", "short", "c"])
    assert info.value.failed == [2, 3]
    assert isinstance(info.value.errors[0], ResponseFormatError)


def test_usage_is_estimated_when_the_server_reports_none(loopback: LoopbackServer) -> None:
    loopback.handler = fake_openai(dims=8, usage=False)
    with service(loopback) as svc:
        _, usage = svc.embed_with_usage(TEXTS[:3])
        assert usage == EmbeddingUsage(3, estimate_tokens(TEXTS[:3]), True, 1)
        assert svc.last_usage == usage


def test_empty_batch_makes_no_request(loopback: LoopbackServer) -> None:
    with service(loopback) as svc:
        out, usage = svc.embed_with_usage([])
    assert out.shape == (0, 0)
    assert usage == EmbeddingUsage(0, 0)
    assert loopback.take() == []


def test_legacy_providers_keep_working_and_get_the_same_batching() -> None:
    """A provider with only ``_embed_texts`` (like ``hash``) gets concurrency and estimated usage."""
    seen: list[int] = []

    class Legacy(EmbeddingService):
        batch_size = 3
        max_concurrency = 2

        def _embed_texts(self, texts: list[str]) -> Matrix:
            seen.append(len(texts))
            return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)

    svc = Legacy(model="m", dimensions=2)
    texts = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff", "g"]
    out, usage = svc.embed_with_usage(texts)
    assert out[:, 0].tolist() == [1, 2, 3, 4, 5, 6, 1]
    assert sorted(seen) == [1, 3, 3]
    assert usage.estimated
    assert usage.requests == 3
    assert asyncio.run(svc.aembed_array(texts)).tolist() == out.tolist()
