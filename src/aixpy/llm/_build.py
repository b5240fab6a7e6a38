"""Chat models from config: an :class:`~aixpy.config.AgentConfig`, a :class:`~aixpy.config.ProviderEntry`,
a :class:`~aixpy.config.ModelServiceConfig`, or a dict shaped like the first two.

The one place where the LLM layer reads config: it imports :mod:`aixpy.config` (never the reverse).
:func:`aixpy.llm.new` sends config specs here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aixpy.config._base import validate_block
from aixpy.config.llm import AgentConfig, LLMCacheConfig, LLMRateLimitConfig, ModelServiceConfig, ProviderEntry
from aixpy.errors import ConfigError, InvalidInputError
from aixpy.http import secret
from aixpy.llm._observe import observe
from aixpy.llm.model import ChatModel
from aixpy.llm.policies.cache import CachedModel, MemoryResponseCache, RedisResponseCache, ResponseCache
from aixpy.llm.policies.fallback import FallbackModel
from aixpy.llm.policies.ratelimit import RateLimitedModel
from aixpy.llm.policies.retry import RetryModel
from aixpy.llm.registry import ProviderSettings, check_settings, create, detect_provider, split_spec
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock
from aixpy.policy.ratelimit import Limiter, RateLimiter
from aixpy.policy.ratelimit_redis import RedisRateLimiter

__all__ = ["build"]


def build(spec: Any, services: Mapping[str, ModelServiceConfig], base: dict[str, Any],
          settings: Mapping[str, Any], observability: Any = None) -> ChatModel:
    """The model ``spec`` describes: a config object, a dict, or the name of one of ``services``.

    ``base`` holds the ``environ``/``clock``/``options`` given to :func:`~aixpy.llm.new`; ``settings``
    its other keywords (for a service name only). ``observability`` (an ``ObservabilityConfig``, from
    the config given as ``services``) wraps an agent's model: ledger, budgets, metrics.
    """
    if isinstance(spec, Mapping):
        data = dict(spec)
        # validate_block: a ConfigError naming the key, never pydantic's error quoting the input (keys, headers)
        spec = validate_block(AgentConfig, data, "agent") if "name" in data or "providers" in data \
            else validate_block(ProviderEntry, data, "provider")
    check_settings(settings)
    if isinstance(spec, str):
        return _from_service(services[spec], {**base, **settings})
    if settings:
        raise InvalidInputError(f"settings {sorted(settings)} apply to string specs only; a config carries its own")
    if isinstance(spec, AgentConfig):
        return observe(_from_agent(spec, services, base), spec.name, observability)
    if isinstance(spec, ProviderEntry):
        return _from_entry(spec, services, base)
    if isinstance(spec, ModelServiceConfig):
        return _from_service(spec, base)
    raise InvalidInputError(f"cannot build a chat model from a {type(spec).__name__}; pass 'provider:model', an "
                            "AgentConfig, a ProviderEntry, a ModelServiceConfig or a ChatModel")


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _v1(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"

def _from_service(svc: ModelServiceConfig, base: dict[str, Any]) -> ChatModel:
    address = svc.config.address
    settings = {**base, "model": svc.model, "runtime": svc.runtime}
    settings.setdefault("timeout", svc.config.timeout.total_seconds())
    if svc.runtime == "ollama":
        return create("ollama", ProviderSettings(**{**settings, "endpoint": address}))
    if svc.runtime == "vllm":
        if address is None:
            raise ConfigError(f"model service {svc.name!r} (runtime vllm) needs config.address", path="config.address")
        return create("openai_compatible", ProviderSettings(**{**settings, "endpoint": _v1(address)}))
    return create(svc.provider, ProviderSettings(**{**settings, "endpoint": address}))


def _from_entry(entry: ProviderEntry, services: Mapping[str, ModelServiceConfig], base: dict[str, Any]) -> ChatModel:
    common = {**base, **{k: v for k, v in (("timeout", _seconds(entry.timeout)), ("temperature", entry.temperature),
                                            ("max_tokens", entry.max_tokens)) if v is not None}}
    if entry.model in services:  # the service says which runtime serves which model
        return _from_service(services[entry.model], common)
    environ = base.get("environ")
    model: str | None = entry.model
    provider: str
    if entry.provider is not None:
        provider = entry.provider
    elif entry.project_id or entry.location:
        provider = detect_provider(entry.model, vertex=True, environ=environ)
    else:
        provider, model = split_spec(entry.model, environ=environ)
    if entry.runtime == "ollama":
        provider = "ollama"
    elif entry.runtime == "vllm":
        provider = "openai_compatible"
    if entry.options:  # the entry's own ``options:`` block, on top of new(options=...)
        common["options"] = {**common.get("options", {}), **entry.options}
    settings = ProviderSettings(model=model, api_key=secret(entry.api_key), endpoint=entry.endpoint,
                                location=entry.location, project_id=entry.project_id, runtime=entry.runtime,
                                headers=entry.headers, allow_auth_override=entry.allow_auth_override, **common)
    return create(provider, settings)


def _limiter(cfg: LLMRateLimitConfig, model: ChatModel, clock: Clock) -> Limiter:
    if cfg.backend == "redis":
        assert cfg.url is not None
        return RedisRateLimiter(cfg.url, name=f"{model.provider}:{model.model}", prefix=cfg.prefix, clock=clock,
                                requests_per_minute=cfg.requests_per_minute, tokens_per_minute=cfg.tokens_per_minute)
    return RateLimiter(requests_per_minute=cfg.requests_per_minute, tokens_per_minute=cfg.tokens_per_minute,
                       clock=clock)


def _cache(cfg: LLMCacheConfig, clock: Clock) -> ResponseCache:
    ttl = cfg.ttl.total_seconds()
    if cfg.backend == "redis":
        assert cfg.url is not None
        return RedisResponseCache(cfg.url, ttl=ttl, prefix=cfg.prefix)
    return MemoryResponseCache(cfg.max_entries, ttl, clock=clock)


def _from_agent(agent: AgentConfig, services: Mapping[str, ModelServiceConfig], base: dict[str, Any]) -> ChatModel:
    """The agent's stack, outermost first: cache -> retry -> fallback -> rate limit -> provider.

    The cache is outside the retry loop, so a hit sends nothing, waits for no rate limit and costs
    nothing. Rate limits are per provider/model, so each provider gets its own limiter *inside* the
    fallback and the retry loop: every request actually sent (each retry, each fallback) is counted
    against the quota of the provider it goes to, and a limited primary whose wait would pass the
    deadline raises at once, so the fallback moves on instead of waiting.
    """
    clock = base.get("clock")
    models = [_from_entry(e, services, base) for e in agent.provider_entries]
    if agent.rate_limit is not None:
        limits = agent.rate_limit
        models = [RateLimitedModel(m, _limiter(limits, m, clock or m.clock)) for m in models]
    model: ChatModel = models[0] if len(models) == 1 else FallbackModel(models, clock=clock)
    if agent.retry is not None:
        model = RetryModel(model, agent.retry, clock=clock)
    if agent.cache is not None and agent.cache.enabled:
        model = CachedModel(model, _cache(agent.cache, clock or SYSTEM_CLOCK), when=agent.cache.when)
    model.timeout = _seconds(agent.timeout)
    return model
