"""Policies for embedding services — each a wrapper that *is* an ``EmbeddingService``, so they nest
in any order and never live inside a provider:

- :class:`CachedEmbeddings` (``cache.py``): LRU+TTL in memory or :class:`RedisCache` (``redis_cache.py``);
  only the misses of a batch are sent, each distinct text once;
- :class:`RateLimitedEmbeddings` (``ratelimit.py``): requests/s and tokens/min buckets, max concurrency;
- :class:`RetryingEmbeddings` (``retry.py``): backoff with jitter, ``Retry-After``, partial batches;
- :class:`FallbackEmbeddings` (``fallback.py``): providers in order, same dimensions;
- :class:`CostTrackingEmbeddings` + :class:`CostTracker` (``cost.py``): tokens and $ per provider/model;
- :class:`InstrumentedEmbeddings` (``instrumented.py``): one :mod:`aixpy.telemetry` event per call.

::

    from aixpy.embeddings.policies import *
    svc = CachedEmbeddings(RetryingEmbeddings(FallbackEmbeddings([primary, backup])))
    with deadline(5.0):                     # every wait and retry inside ends within 5 s
        vectors = svc.embed_batch(texts)

:func:`compose` builds the stack an ``embeddings:`` config block describes, in a documented order.
Names are imported on first use. Retry and fallback are built on :mod:`aixpy.policy`, shared with the
LLM layer but never importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aixpy._lazy import attach

if TYPE_CHECKING:
    from aixpy.embeddings.policies._compose import compose
    from aixpy.embeddings.policies._wrapper import (
        EmbeddingWrapper,
        current_deadline,
        deadline,
        find_wrapper,
        normalize_flag,
    )
    from aixpy.embeddings.policies.cache import KEY_VERSION, CacheBackend, CachedEmbeddings, MemoryCache, cache_key
    from aixpy.embeddings.policies.cost import CostLine, CostTracker, CostTrackingEmbeddings, TokenCount, count_tokens
    from aixpy.embeddings.policies.fallback import FallbackEmbeddings, falls_back
    from aixpy.embeddings.policies.instrumented import InstrumentedEmbeddings
    from aixpy.embeddings.policies.ratelimit import RateLimitedEmbeddings, RateLimiter, TokenBucket
    from aixpy.embeddings.policies.redis_cache import RedisCache
    from aixpy.embeddings.policies.retry import RetryingEmbeddings, RetryPolicy

__all__ = [
    "KEY_VERSION",
    "CacheBackend",
    "CachedEmbeddings",
    "CostLine",
    "CostTracker",
    "CostTrackingEmbeddings",
    "EmbeddingWrapper",
    "FallbackEmbeddings",
    "InstrumentedEmbeddings",
    "MemoryCache",
    "RateLimitedEmbeddings",
    "RateLimiter",
    "RedisCache",
    "RetryPolicy",
    "RetryingEmbeddings",
    "TokenBucket",
    "TokenCount",
    "cache_key",
    "compose",
    "count_tokens",
    "current_deadline",
    "deadline",
    "falls_back",
    "find_wrapper",
    "normalize_flag",
]


__getattr__, __dir__ = attach(__name__, attributes={
    "._compose": ("compose",),
    "._wrapper": ("EmbeddingWrapper", "current_deadline", "deadline", "find_wrapper", "normalize_flag"),
    ".cache": ("KEY_VERSION", "CacheBackend", "CachedEmbeddings", "MemoryCache", "cache_key"),
    ".cost": ("CostLine", "CostTracker", "CostTrackingEmbeddings", "TokenCount", "count_tokens"),
    ".fallback": ("FallbackEmbeddings", "falls_back"),
    ".instrumented": ("InstrumentedEmbeddings",),
    ".ratelimit": ("RateLimitedEmbeddings", "RateLimiter", "TokenBucket"),
    ".redis_cache": ("RedisCache",),
    ".retry": ("RetryPolicy", "RetryingEmbeddings"),
})
