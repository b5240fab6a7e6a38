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
Names are imported on first use (the retry policy pulls in the LLM layer, ~0.2 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

_LAZY: dict[str, str] = {
    "KEY_VERSION": "cache",
    "CacheBackend": "cache",
    "CachedEmbeddings": "cache",
    "CostLine": "cost",
    "CostTracker": "cost",
    "CostTrackingEmbeddings": "cost",
    "EmbeddingWrapper": "_wrapper",
    "FallbackEmbeddings": "fallback",
    "InstrumentedEmbeddings": "instrumented",
    "MemoryCache": "cache",
    "RateLimitedEmbeddings": "ratelimit",
    "RateLimiter": "ratelimit",
    "RedisCache": "redis_cache",
    "RetryPolicy": "retry",
    "RetryingEmbeddings": "retry",
    "TokenBucket": "ratelimit",
    "TokenCount": "cost",
    "cache_key": "cache",
    "compose": "_compose",
    "count_tokens": "cost",
    "current_deadline": "_wrapper",
    "deadline": "_wrapper",
    "falls_back": "fallback",
    "find_wrapper": "_wrapper",
    "normalize_flag": "_wrapper",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
