"""``compose(config, service)``: the policy stack an ``embeddings:`` block asks for."""

from __future__ import annotations

from collections.abc import Callable

from aixpy.config.embeddings import EmbeddingsCacheConfig, EmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.models import FREE_PROVIDERS
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper
from aixpy.embeddings.policies.cache import CacheBackend, CachedEmbeddings, MemoryCache
from aixpy.embeddings.policies.cost import CostTracker, CostTrackingEmbeddings
from aixpy.embeddings.policies.fallback import FallbackEmbeddings
from aixpy.embeddings.policies.ratelimit import RateLimitedEmbeddings
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock

__all__ = ["compose"]

Builder = Callable[[EmbeddingsConfig], EmbeddingService]


def _provider_only(config: EmbeddingsConfig) -> EmbeddingService:
    """The bare provider of a config block (no policies): what ``aixpy.embeddings.new`` builds first."""
    from aixpy import embeddings

    return embeddings._REGISTRY.resolve(config.provider)(config)


def _backend(cfg: EmbeddingsCacheConfig, clock: Clock) -> CacheBackend:
    if cfg.backend == "redis":
        from aixpy.embeddings.policies.redis_cache import RedisCache

        url = cfg.redis_url.get_secret_value() if cfg.redis_url else "redis://127.0.0.1:6379/0"
        return RedisCache(url, ttl=cfg.ttl, prefix=cfg.prefix, strict=cfg.strict)
    return MemoryCache(cfg.max_entries, cfg.ttl, clock=clock)


def compose(config: EmbeddingsConfig, base_service: EmbeddingService, *, build: Builder | None = None,
            tracker: CostTracker | None = None, clock: Clock | None = None) -> EmbeddingService:
    """Wrap ``base_service`` (the provider ``config`` names) in the policies ``config`` asks for.

    The stack, outermost first::

        CachedEmbeddings            cache:       hits cost no request, no rate budget, no retry
        └ RetryingEmbeddings        retry:       the one retry loop; backs off only when every provider failed
          └ FallbackEmbeddings      fallback:    this block's provider, then each fallback entry, in order
            └ CostTrackingEmbeddings   track_cost (default: on for paid providers): tokens/$ per provider
              └ RateLimitedEmbeddings  rate_limit: that provider's own limits, every attempt counted
                └ provider

    Layers whose block is absent are left out; ``timeout`` bounds each call of the whole stack.
    Fallback entries are built with ``build`` (default: the registered provider factory) and get
    their own ``rate_limit`` and ``track_cost``; one :class:`CostTracker` (``tracker``, or a new one)
    is shared by the whole stack — find it with ``find_wrapper(svc, CostTrackingEmbeddings).tracker``.
    """
    clock = clock or getattr(base_service, "clock", None) or SYSTEM_CLOCK
    shared = tracker if tracker is not None else CostTracker()

    def per_provider(cfg: EmbeddingsConfig, svc: EmbeddingService) -> EmbeddingService:
        if cfg.rate_limit is not None:
            rl = cfg.rate_limit
            svc = RateLimitedEmbeddings(svc, requests_per_second=rl.requests_per_second,
                                        tokens_per_minute=rl.tokens_per_minute, max_concurrency=rl.max_concurrency,
                                        clock=clock)
        if cfg.track_cost if cfg.track_cost is not None else cfg.provider not in FREE_PROVIDERS:
            svc = CostTrackingEmbeddings(svc, shared, clock=clock)
        return svc

    svc = per_provider(config, base_service)
    if config.fallback:
        make = build or _provider_only
        svc = FallbackEmbeddings([svc, *(per_provider(entry, make(entry)) for entry in config.fallback)], clock=clock)
    if config.retry is not None:
        from aixpy.embeddings.policies.retry import RetryingEmbeddings, RetryPolicy

        r = config.retry
        policy = RetryPolicy(max_attempts=r.max_attempts, initial_backoff=r.initial_backoff,
                             max_backoff=r.max_backoff, multiplier=r.multiplier, jitter=r.jitter,
                             retry_on=frozenset(r.retry_on), max_retry_after=r.max_retry_after)
        svc = RetryingEmbeddings(svc, policy, clock=clock)
    if config.cache is not None:
        svc = CachedEmbeddings(svc, _backend(config.cache, clock), clock=clock)
    if config.timeout is not None:
        if isinstance(svc, EmbeddingWrapper):
            svc.timeout = config.timeout
        else:
            svc = EmbeddingWrapper(svc, clock=clock, timeout=config.timeout)
    return svc
