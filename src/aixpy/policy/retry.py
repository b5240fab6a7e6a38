"""The retry decisions (:class:`RetryPolicy`, the guide's ``retry:`` semantics) and the one retry plan.

* ``max_attempts`` counts every attempt, the first included.
* Backoff before attempt *n + 1*: ``min(max_backoff, initial_backoff * multiplier ** (n - 1))``,
  with full jitter (a uniform draw between 0 and that) unless ``jitter: false``.
* ``retry_on`` picks the errors retried: ``rate_limit`` -> :class:`~aixpy.errors.RateLimitError`,
  ``timeout`` -> :class:`~aixpy.errors.ProviderTimeoutError`, ``server_error`` ->
  :class:`~aixpy.errors.ServerError`, ``connection`` -> :class:`~aixpy.errors.ProviderConnectionError`;
  only errors whose ``retryable`` is true (an exhausted quota is a rate limit that is not; a stream
  interrupted after delivery never is). An :class:`~aixpy.errors.AllProvidersFailedError` (a fallback
  chain inside) is retried when any of its errors would be; a
  :class:`~aixpy.errors.PartialBatchError` when any of its errors would be, the one with the longest
  ``retry_after`` deciding the wait.
* ``Retry-After``: a rate limit's ``retry_after`` (and a loading model's estimate,
  :class:`~aixpy.errors.ModelLoadingError`) replaces the computed backoff (the server knows best).
  A wait that would outlive the call's deadline, or is longer than ``max_retry_after`` (60 s by
  default), ends the retries at once: the error is raised now so that a fallback — or the caller —
  can act instead of sleeping uselessly. With a fallback chain inside, a rate-limited chain waits for
  the *soonest* provider to be ready.

Sleeps are :class:`~aixpy.policy.engine.Sleep` steps, done on the wrapper's
:class:`~aixpy.policy.deadline.Clock` by a driver, so tests run instantly.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from aixpy.errors import (
    AllProvidersFailedError,
    InvalidInputError,
    ModelLoadingError,
    PartialBatchError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from aixpy.policy.deadline import Deadline, DeadlineExceededError
from aixpy.policy.engine import Attempt, Sleep, StepPlan, Work

__all__ = ["RETRY_ON", "RetryPolicy", "retry_plan"]

T = TypeVar("T")

RETRY_ON: dict[str, type[ProviderError]] = {
    "rate_limit": RateLimitError,
    "timeout": ProviderTimeoutError,
    "server_error": ServerError,
    "connection": ProviderConnectionError,
}


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """The decisions of the retry loop, without I/O (see the module docstring)."""

    max_attempts: int = 3
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    multiplier: float = 2.0
    jitter: bool = True
    retry_on: Collection[str] = field(default_factory=lambda: frozenset(RETRY_ON))
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        unknown = set(self.retry_on) - set(RETRY_ON)
        if unknown:
            raise InvalidInputError(f"unknown retry_on value(s) {sorted(unknown)}; known: {sorted(RETRY_ON)}")
        if self.max_attempts < 1:
            raise InvalidInputError("max_attempts must be at least 1")

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> RetryPolicy:
        """From a :class:`~aixpy.config.RetryConfig` (or anything with its attributes)."""
        values = {"max_attempts": config.max_attempts, "initial_backoff": _seconds(config.initial_backoff),
                  "max_backoff": _seconds(config.max_backoff), "multiplier": config.multiplier,
                  "jitter": config.jitter, "retry_on": frozenset(config.retry_on)}
        return cls(**{**values, **overrides})

    def retries(self, err: BaseException) -> bool:
        """Whether ``err`` is one that ``retry_on`` retries."""
        if isinstance(err, AllProvidersFailedError):
            return any(self.retries(e) for e in err.errors)
        if isinstance(err, DeadlineExceededError) or not isinstance(err, ProviderError):
            return False
        return err.retryable and any(isinstance(err, RETRY_ON[kind]) for kind in self.retry_on)

    def server_wait(self, err: BaseException) -> float | None:
        """How long the server asked to wait (the soonest provider of a failed chain), if it did."""
        if isinstance(err, AllProvidersFailedError):
            waits = [self.server_wait(e) or 0.0 for e in err.errors if self.retries(e)]
            return min(waits) if waits and min(waits) > 0 else None
        # 429 Retry-After, and a loading model's own estimate (ModelLoadingError.retry_after)
        after = getattr(err, "retry_after", None) if isinstance(err, RateLimitError | ModelLoadingError) else None
        if after is not None:
            return max(0.0, float(after))
        return None

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The computed wait after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return rng.uniform(0.0, cap) if self.jitter else cap

    def next_delay(self, attempt: int, err: BaseException, deadline: Deadline, rng: random.Random) -> float | None:
        """Seconds to sleep before the next attempt, or ``None`` to give up and raise ``err``."""
        if attempt >= self.max_attempts or not self.retries(err):
            return None
        server = self.server_wait(err)
        if server is not None and server > self.max_retry_after:
            return None
        delay = server if server is not None else self.backoff(attempt, rng)
        left = deadline.remaining()
        if left is not None and delay >= left:
            return None
        return delay

    def decisive(self, err: ProviderError) -> ProviderError | None:
        """The error that decides the retry: ``err``; for a partial batch, the retried one of its errors
        with the longest wait (``None`` when none is retried)."""
        if not isinstance(err, PartialBatchError):
            return err
        retried = [e for e in err.errors if isinstance(e, ProviderError) and self.retries(e)]
        if not retried:
            return None
        return max(retried, key=lambda e: self.server_wait(e) or getattr(e, "retry_after", None) or 0.0)


def retry_plan(policy: RetryPolicy, work: Work[Any, T], *, deadline: Deadline, rng: random.Random,
               name: Callable[[], str], logger: logging.Logger,
               on_retry: Callable[[], None] | None = None) -> StepPlan[T]:
    """Attempt target 0 until it answers or ``policy`` gives up (then the error is raised, through
    ``work.failure``). ``name()`` names the target in the log line of each retry, ``on_retry`` counts them."""
    attempt = 1
    while True:
        try:
            return work.result((yield Attempt(0)))
        except ProviderError as err:
            if isinstance(err, PartialBatchError):
                work.partial(err)
            decisive = policy.decisive(err)
            delay = None if decisive is None else policy.next_delay(attempt, decisive, deadline, rng)
            if decisive is None or delay is None:
                failure = work.failure(err)
                if failure is err:
                    raise
                raise failure from err
            pending = work.outstanding()
            logger.info("retrying %s%s in %.3f s after attempt %d: %s", f"{pending} on " if pending else "", name(),
                        delay, attempt, type(decisive).__name__)
            if on_retry is not None:
                on_retry()
        yield Sleep(delay)
        attempt += 1
