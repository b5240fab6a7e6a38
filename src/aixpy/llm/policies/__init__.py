"""Policies are wrappers around a :class:`~aixpy.llm.model.ChatModel`, never inside providers:

- :class:`~aixpy.llm.policies.retry.RetryModel` — the one retry loop of a call (``retry:`` block);
- :class:`~aixpy.llm.policies.fallback.FallbackModel` — cascade over ``providers:``;
- :class:`~aixpy.llm.policies.instrumented.InstrumentedModel` — one telemetry event per call
  (:mod:`aixpy.telemetry`);
- :class:`~aixpy.llm.policies.budget.BudgetedModel` — usage ledger, daily token/cost budgets checked
  before a call is sent, and the daily cost alert (``observability:`` block);
- :class:`~aixpy.llm.policies.cache.CachedModel` — a response cache (memory or Redis, TTL, single
  flight; ``cache:`` block);
- :class:`~aixpy.llm.policies.ratelimit.RateLimitedModel` — requests and tokens per minute of one
  provider/model, waiting within the deadline (local or shared through Redis; ``rate_limit:`` block).

The per-call deadline (:class:`~aixpy.policy.deadline.Deadline`) is opened by the public call and
covers every retry and every fallback below it. ``aixpy.llm.new`` composes them from an agent's
config as ``RetryModel(FallbackModel([...]))``: each attempt walks the cascade at once (a rate-limited
primary never delays the fallback), and the retry backs off only when every provider failed.
"""

from __future__ import annotations

from aixpy.llm.policies.budget import Budget, BudgetedModel, CostAlert
from aixpy.llm.policies.cache import CachedModel, MemoryResponseCache, RedisResponseCache, ResponseCache
from aixpy.llm.policies.fallback import FallbackModel, falls_back
from aixpy.llm.policies.instrumented import InstrumentedModel
from aixpy.llm.policies.ratelimit import RateLimitedModel, RateLimits
from aixpy.llm.policies.retry import RETRY_ON, RetryModel, RetryPolicy

__all__ = [
    "RETRY_ON",
    "Budget",
    "BudgetedModel",
    "CachedModel",
    "CostAlert",
    "FallbackModel",
    "InstrumentedModel",
    "MemoryResponseCache",
    "RateLimitedModel",
    "RateLimits",
    "RedisResponseCache",
    "ResponseCache",
    "RetryModel",
    "RetryPolicy",
    "falls_back",
]
