"""``RetryModel``: the one retry loop of a call, with the guide's ``retry:`` semantics.

* ``max_attempts`` counts every attempt, the first included.
* Backoff before attempt *n + 1*: ``min(max_backoff, initial_backoff * multiplier ** (n - 1))``,
  with full jitter (a uniform draw between 0 and that) unless ``jitter: false``.
* ``retry_on`` picks the errors retried: ``rate_limit`` -> :class:`~aixpy.errors.RateLimitError`,
  ``timeout`` -> :class:`~aixpy.errors.ProviderTimeoutError`, ``server_error`` ->
  :class:`~aixpy.errors.ServerError`, ``connection`` -> :class:`~aixpy.errors.ProviderConnectionError`;
  only errors whose ``retryable`` is true (an exhausted quota is a rate limit that is not). An
  :class:`~aixpy.errors.AllProvidersFailedError` (a fallback chain inside) is retried when any of its
  errors would be.
* ``Retry-After``: a rate limit's ``retry_after`` replaces the computed backoff (the server knows
  best). A wait that would outlive the call's deadline, or is longer than ``max_retry_after``
  (60 s by default), ends the retries at once: the error is raised now so that a fallback — or the
  caller — can act instead of sleeping uselessly. With a fallback chain inside, a rate-limited
  chain waits for the *soonest* provider to be ready.
* Streams are retried only while no event has reached the caller; after that a failure raises
  :class:`~aixpy.llm.model.StreamInterruptedError`.

Sleeps go through the model's :class:`~aixpy.llm.deadline.Clock`, so tests run instantly.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, Collection, Generator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aixpy.errors import (
    AllProvidersFailedError,
    InvalidInputError,
    ModelLoadingError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from aixpy.llm.deadline import Clock, Deadline, DeadlineExceededError
from aixpy.llm.model import CallContext, ChatModel, StreamInterruptedError, raise_stream_error
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["RETRY_ON", "RetryModel", "RetryPolicy"]

logger = logging.getLogger("aixpy.llm")

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
        if isinstance(err, StreamInterruptedError | DeadlineExceededError) or not isinstance(err, ProviderError):
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


class RetryModel(ChatModel):
    """Retries ``inner`` by a :class:`RetryPolicy` (or a ``RetryConfig``). The answer names the provider
    that served it; ``CallContext.attempts`` counts every request made.

    ``timeout`` is the default deadline of a whole call, every attempt and wait included; the inner
    model's own ``timeout`` still bounds each request.
    """

    def __init__(self, inner: ChatModel, policy: RetryPolicy | Any = None, *, clock: Clock | None = None,
                 rng: random.Random | None = None, timeout: float | None = None) -> None:
        super().__init__(provider=inner.provider, model=inner.model, capabilities=inner.capabilities,
                         timeout=timeout, clock=clock or inner.clock)
        self.inner = inner
        if policy is None:
            policy = RetryPolicy()
        self.policy = policy if isinstance(policy, RetryPolicy) else RetryPolicy.from_config(policy)
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"RetryModel({self.inner!r}, max_attempts={self.policy.max_attempts})"

    def _delay(self, attempt: int, err: ProviderError, ctx: CallContext) -> float | None:
        delay = self.policy.next_delay(attempt, err, ctx.deadline, self._rng)
        if delay is not None:
            logger.info("retrying %s:%s in %.3f s after attempt %d: %s", ctx.provider or self.provider,
                        ctx.model or self.model, delay, attempt, type(err).__name__)
        return delay

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        attempt = 1
        while True:
            try:
                return await self.inner._achat(req, ctx)
            except ProviderError as e:
                delay = self._delay(attempt, e, ctx)
                if delay is None:
                    raise
            await self.clock.asleep(delay)
            attempt += 1

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        attempt = 1
        while True:
            delivered = 0
            events = self.inner._astream(req, ctx)
            try:
                async for event in events:
                    delivered += 1
                    yield event
                return
            except ProviderError as e:
                if delivered:
                    raise_stream_error(e, delivered, ctx)
                delay = self._delay(attempt, e, ctx)
                if delay is None:
                    raise
            finally:
                await events.aclose()
            await self.clock.asleep(delay)
            attempt += 1

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.inner._alist_models(ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        attempt = 1
        while True:
            try:
                return self.inner._chat(req, ctx)
            except ProviderError as e:
                delay = self._delay(attempt, e, ctx)
                if delay is None:
                    raise
            self.clock.sleep(delay)
            attempt += 1

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        attempt = 1
        while True:
            delivered = 0
            events = self.inner._stream(req, ctx)
            try:
                for event in events:
                    delivered += 1
                    yield event
                return
            except ProviderError as e:
                if delivered:
                    raise_stream_error(e, delivered, ctx)
                delay = self._delay(attempt, e, ctx)
                if delay is None:
                    raise
            finally:
                events.close()
            self.clock.sleep(delay)
            attempt += 1

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.inner._list_models(ctx)

    def close(self) -> None:
        self.inner.close()
