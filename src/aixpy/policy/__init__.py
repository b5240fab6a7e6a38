"""Policies below every provider layer: clocks and deadlines, and the one retry/fallback engine.

``aixpy.policy`` imports only :mod:`aixpy.errors`; ``llm`` and ``embeddings`` build their wrappers
(``RetryModel``, ``FallbackModel``, ``RetryingEmbeddings``, ``FallbackEmbeddings``) on it:

- :mod:`~aixpy.policy.deadline` — :class:`Clock`, :class:`ManualClock`, the per-call :class:`Deadline`;
- :mod:`~aixpy.policy.plans` — a generator of I/O steps run by a sync and an async driver;
- :mod:`~aixpy.policy.retry` — :class:`RetryPolicy` and :func:`retry_plan`;
- :mod:`~aixpy.policy.fallback` — the default rule :func:`provider_failed` and :func:`fallback_plan`;
- :mod:`~aixpy.policy.engine` — the steps, :class:`Work` (what a call sends over its attempts) and the
  call and stream drivers;
- :mod:`~aixpy.policy.flights` — single flight (concurrent identical misses send one request), and
  :mod:`~aixpy.policy.lru` — the TTL LRU, shared by the embedding and LLM caches;
- :mod:`~aixpy.policy.ratelimit` — token buckets and the rate limiter, and
  :mod:`~aixpy.policy.ratelimit_redis` — the same buckets shared through Redis (a Lua script), used by the
  embedding and LLM rate-limit wrappers.
"""

from __future__ import annotations

from aixpy.policy.deadline import SYSTEM_CLOCK, Clock, Deadline, DeadlineExceededError, ManualClock, SystemClock
from aixpy.policy.engine import Attempt, Sleep, Step, StepPlan, Whole, Work, acall, astream, call, stream
from aixpy.policy.fallback import fallback_plan, provider_failed
from aixpy.policy.plans import Plan, arun, run
from aixpy.policy.retry import RETRY_ON, RetryPolicy, retry_plan

__all__ = [
    "RETRY_ON",
    "SYSTEM_CLOCK",
    "Attempt",
    "Clock",
    "Deadline",
    "DeadlineExceededError",
    "ManualClock",
    "Plan",
    "RetryPolicy",
    "Sleep",
    "Step",
    "StepPlan",
    "SystemClock",
    "Whole",
    "Work",
    "acall",
    "arun",
    "astream",
    "call",
    "fallback_plan",
    "provider_failed",
    "retry_plan",
    "run",
    "stream",
]
