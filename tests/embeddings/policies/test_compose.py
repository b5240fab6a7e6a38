"""Wrappers compose in any order; ``compose()`` builds the documented stack from config; sync/async parity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from pydantic import ValidationError

from aixpy.config.embeddings import EmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.embeddings.policies import (
    CachedEmbeddings,
    CostTracker,
    CostTrackingEmbeddings,
    EmbeddingWrapper,
    FallbackEmbeddings,
    RateLimitedEmbeddings,
    RedisCache,
    RetryingEmbeddings,
    RetryPolicy,
    compose,
    find_wrapper,
)
from aixpy.errors import RateLimitError, ServerError
from aixpy.llm.deadline import ManualClock

from ._fakes import Scripted, reference

TEXTS = ["the cat sat", "on the mat", "the cat sat", "a dog barked", "on the mat", "rain in spain"]
POLICY = RetryPolicy(max_attempts=3, initial_backoff=0.5, jitter=False)


def stacks(clock: ManualClock) -> dict[str, Callable[[], tuple[EmbeddingService, Scripted, Scripted]]]:
    def parts() -> tuple[Scripted, Scripted]:
        return (Scripted(batch_size=2, provider="openai", fail_text={"a dog barked": [ServerError("x")] * 2}),
                Scripted(provider="tei"))

    def cached_outer() -> tuple[EmbeddingService, Scripted, Scripted]:
        a, b = parts()
        retry = RetryingEmbeddings(FallbackEmbeddings([a, b]), POLICY, clock=clock)
        svc = CachedEmbeddings(RateLimitedEmbeddings(retry, requests_per_second=1.0))
        return svc, a, b

    def retry_outer() -> tuple[EmbeddingService, Scripted, Scripted]:
        a, b = parts()
        limited = RateLimitedEmbeddings(b, max_concurrency=2, clock=clock)
        chain = FallbackEmbeddings([CostTrackingEmbeddings(a), limited])
        return RetryingEmbeddings(CachedEmbeddings(chain), POLICY, clock=clock), a, b

    def fallback_outer() -> tuple[EmbeddingService, Scripted, Scripted]:
        a, b = parts()
        svc = FallbackEmbeddings([RetryingEmbeddings(CachedEmbeddings(a), POLICY, clock=clock), CachedEmbeddings(b)])
        return svc, a, b

    return {"cache>rate>retry>fallback": cached_outer, "retry>cache>fallback": retry_outer,
            "fallback>retry>cache": fallback_outer}


@pytest.mark.parametrize("name", ["cache>rate>retry>fallback", "retry>cache>fallback", "fallback>retry>cache"])
def test_any_order_gives_the_bare_providers_vectors(name: str) -> None:
    svc, a, _ = stacks(ManualClock())[name]()
    assert (svc.provider, svc.model(), svc.dimensions()) == ("openai", "scripted", 32)
    np.testing.assert_array_equal(svc.embed_array(TEXTS), reference(TEXTS))
    np.testing.assert_array_equal(svc.embed_array(TEXTS[::-1]), reference(TEXTS[::-1]))
    assert "a dog barked" in a.texts_sent


@pytest.mark.parametrize("name", ["cache>rate>retry>fallback", "retry>cache>fallback", "fallback>retry>cache"])
async def test_sync_async_parity(name: str) -> None:
    sync_clock, async_clock = ManualClock(), ManualClock()
    s_svc, s_a, s_b = stacks(sync_clock)[name]()
    a_svc, a_a, a_b = stacks(async_clock)[name]()
    for batch in (TEXTS, TEXTS[2:], ["new text", "the cat sat"]):
        assert s_svc.embed_batch(batch) == await a_svc.aembed_batch(batch)
    assert sorted(s_a.texts_sent) == sorted(a_a.texts_sent)
    assert sorted(s_b.texts_sent) == sorted(a_b.texts_sent)
    assert sync_clock.sleeps == async_clock.sleeps
    if name == "cache>rate>retry>fallback":
        assert sync_clock.sleeps                                  # retries and rate-limit waits happened
    s_cache, a_cache = find_wrapper(s_svc, CachedEmbeddings), find_wrapper(a_svc, CachedEmbeddings)
    assert s_cache is not None
    assert a_cache is not None
    assert s_cache.stats() == a_cache.stats()


def test_compose_builds_the_documented_stack() -> None:
    cfg = EmbeddingsConfig.model_validate({
        "provider": "hash",
        "track_cost": True,
        "cache": {"backend": "memory", "max_entries": 100, "ttl": 3600},
        "retry": {"max_attempts": 4, "initial_backoff": 0.1, "jitter": False},
        "rate_limit": {"requests_per_second": 50, "max_concurrency": 4},
        "fallback": [{"provider": "hash", "track_cost": True, "rate_limit": {"tokens_per_minute": 100000}}],
        "timeout": 30,
    })
    clock = ManualClock()
    svc = compose(cfg, HashEmbeddings(), clock=clock)
    assert isinstance(svc, CachedEmbeddings)
    assert svc.timeout == 30
    retry = svc.inner
    assert isinstance(retry, RetryingEmbeddings)
    assert retry.policy.max_attempts == 4
    chain = retry.inner
    assert isinstance(chain, FallbackEmbeddings)
    assert len(chain.services) == 2
    for entry in chain.services:
        assert isinstance(entry, CostTrackingEmbeddings)
        assert isinstance(entry.inner, RateLimitedEmbeddings)
        assert isinstance(entry.inner.inner, HashEmbeddings)
    costs = [e.tracker for e in chain.services if isinstance(e, CostTrackingEmbeddings)]
    assert costs[0] is costs[1]                                   # one tracker for the whole stack
    vectors = svc.embed_batch(["hello world", "hello world", "bye"])
    assert vectors == HashEmbeddings().embed_batch(["hello world", "hello world", "bye"])
    tracker = find_wrapper(svc, CostTrackingEmbeddings)
    assert tracker is not None
    (line,) = tracker.tracker.totals()
    assert (line.provider, line.texts, line.usd) == ("hash", 2, 0.0)


def test_compose_defaults_track_cost_only_for_paid_providers() -> None:
    svc = compose(EmbeddingsConfig(provider="hash", track_cost=True), HashEmbeddings())
    assert isinstance(svc, CostTrackingEmbeddings)
    assert isinstance(svc.inner, HashEmbeddings)
    free = HashEmbeddings()
    assert compose(EmbeddingsConfig(provider="hash"), free) is free          # free provider: nothing to price
    paid = compose(EmbeddingsConfig(provider="openai", openai={"api_key": "k"}), free)
    assert isinstance(paid, CostTrackingEmbeddings)                           # paid provider: tracked by default
    bare = HashEmbeddings()
    assert compose(EmbeddingsConfig(provider="hash", track_cost=False), bare) is bare
    timed = compose(EmbeddingsConfig(provider="hash", track_cost=False, timeout=5), bare)
    assert type(timed) is EmbeddingWrapper
    assert timed.timeout == 5


def test_compose_shares_a_given_tracker_and_uses_the_builder() -> None:
    tracker = CostTracker()
    built: list[str] = []

    def build(cfg: EmbeddingsConfig) -> EmbeddingService:
        built.append(cfg.provider)
        return Scripted(dims=256, provider=cfg.provider)

    cfg = EmbeddingsConfig.model_validate({"provider": "hash",
                                           "fallback": [{"provider": "ollama", "track_cost": True}]})
    primary = Scripted(dims=256, provider="hash", script=[RateLimitError("429")])
    svc = compose(cfg, primary, build=build, tracker=tracker)
    svc.embed("x")
    assert built == ["ollama"]
    assert [line.provider for line in tracker.totals()] == ["ollama"]


def test_fallback_entries_cannot_nest_cache_or_retry() -> None:
    with pytest.raises(ValidationError, match="fallback\\[0\\] cannot set retry"):
        EmbeddingsConfig.model_validate({"provider": "hash", "fallback": [{"provider": "hash", "retry": {}}]})
    with pytest.raises(ValidationError, match="max_backoff"):
        EmbeddingsConfig.model_validate({"retry": {"initial_backoff": 10, "max_backoff": 1}})


def test_compose_redis_backend(redis_url: str, redis_prefix: str) -> None:
    cfg = EmbeddingsConfig.model_validate({"provider": "hash", "track_cost": False,
                                           "cache": {"backend": "redis", "redis_url": redis_url,
                                                     "prefix": redis_prefix, "ttl": 60}})
    inner = Scripted(dims=256, provider="hash")
    svc = compose(cfg, inner)
    assert isinstance(svc, CachedEmbeddings)
    assert isinstance(svc.backend, RedisCache)
    try:
        svc.embed_batch(["a", "b"])
        svc.embed_batch(["b", "a"])
        assert inner.requests == [["a", "b"]]
    finally:
        svc.close()
