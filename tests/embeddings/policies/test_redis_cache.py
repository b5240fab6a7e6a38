"""RedisCache against a real redis-server: float32 bytes, EX TTL, MGET batches, sharing, outages."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import redis

from aixpy.embeddings.policies import CachedEmbeddings, RedisCache
from aixpy.errors import StoreError
from tests._services._proc import free_port

from ._fakes import Scripted, reference


def test_two_services_share_vectors_through_redis(redis_url: str, redis_prefix: str) -> None:
    a_inner, b_inner = Scripted(dims=24), Scripted(dims=24)
    a = CachedEmbeddings(a_inner, RedisCache(redis_url, prefix=redis_prefix))
    b = CachedEmbeddings(b_inner, RedisCache(redis_url, prefix=redis_prefix))
    try:
        a.embed_batch(["alpha", "beta"])
        out = b.embed_array(["beta", "gamma", "alpha", "gamma"])
        assert b_inner.requests == [["gamma"]]
        np.testing.assert_array_equal(out, reference(["beta", "gamma", "alpha", "gamma"], 24))
        assert (b.stats()["hits"], b.stats()["misses"], b.stats()["duplicates"]) == (2, 1, 1)

        raw = redis.Redis.from_url(redis_url)
        stored = raw.get(redis_prefix + a.key("alpha"))
        raw.close()
        assert isinstance(stored, bytes)
        assert len(stored) == 24 * 4
        np.testing.assert_array_equal(np.frombuffer(stored, dtype="<f4"), reference(["alpha"], 24)[0])
    finally:
        a.close()
        b.close()


def test_ttl_is_set_with_ex(redis_url: str, redis_prefix: str) -> None:
    svc = CachedEmbeddings(Scripted(), RedisCache(redis_url, ttl=90.5, prefix=redis_prefix))
    raw = redis.Redis.from_url(redis_url)
    try:
        svc.embed("x")
        ttl = raw.ttl(redis_prefix + svc.key("x"))
        assert 85 <= ttl <= 91   # EX takes whole seconds: 90.5 rounds up to 91
    finally:
        raw.close()
        svc.close()


def test_corrupt_or_wrong_size_values_are_misses(redis_url: str, redis_prefix: str) -> None:
    inner = Scripted(dims=16)
    svc = CachedEmbeddings(inner, RedisCache(redis_url, prefix=redis_prefix))
    raw = redis.Redis.from_url(redis_url)
    try:
        raw.set(redis_prefix + svc.key("odd"), b"\x00\x01\x02")                     # not float32
        raw.set(redis_prefix + svc.key("short"), np.ones(8, "<f4").tobytes())       # wrong dimensions
        out = svc.embed_array(["odd", "short"])
        np.testing.assert_array_equal(out, reference(["odd", "short"], 16))
        assert inner.requests == [["odd", "short"]]
        assert svc.stats()["corrupt"] == 1
        # the good vectors replaced the bad ones
        assert len(raw.get(redis_prefix + svc.key("short")) or b"") == 16 * 4
    finally:
        raw.close()
        svc.close()


async def test_async_client_reads_what_sync_wrote(redis_url: str, redis_prefix: str) -> None:
    inner = Scripted()
    svc = CachedEmbeddings(inner, RedisCache(redis_url, prefix=redis_prefix))
    try:
        svc.embed_batch(["one", "two"])
        out = await svc.aembed_array(["two", "three", "one"])
        assert inner.requests == [["one", "two"], ["three"]]
        np.testing.assert_array_equal(out, reference(["two", "three", "one"]))
        assert svc.embed_array(["three"]).tolist() == reference(["three"]).tolist()
        assert len(inner.requests) == 2
    finally:
        await svc.aclose()


def test_redis_down_embeds_uncached_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:s3cretpassw0rd@127.0.0.1:{free_port()}/0"       # nothing listens there
    inner = Scripted()
    backend = RedisCache(url, socket_timeout=0.5)
    svc = CachedEmbeddings(inner, backend)
    with caplog.at_level(logging.WARNING, logger="aixpy.embeddings"):
        out = svc.embed_array(["a", "b"])
        svc.embed_array(["a"])
    np.testing.assert_array_equal(out, reference(["a", "b"]))
    assert inner.requests == [["a", "b"], ["a"]]                 # uncached, but working
    assert svc.stats()["errors"] == 4                              # 2 lookups + 2 writes
    assert len(caplog.records) == 1                                # logged once, not per call
    assert "s3cretpassw0rd" not in caplog.text
    assert "s3cretpassw0rd" not in repr(svc)
    assert "***" in repr(backend)


async def test_redis_down_strict_raises_store_error() -> None:
    svc = CachedEmbeddings(Scripted(), RedisCache(f"redis://127.0.0.1:{free_port()}/0", strict=True,
                                                  socket_timeout=0.5))
    with pytest.raises(StoreError, match="lookup failed"):
        svc.embed("a")
    with pytest.raises(StoreError):
        await svc.aembed("a")
    await svc.aclose()
