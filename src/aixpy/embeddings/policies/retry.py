"""``RetryingEmbeddings``: the one retry loop of an embedding call.

The decisions are those of the LLM side's :class:`~aixpy.llm.policies.retry.RetryPolicy` (reused,
not copied): ``max_attempts`` counts every attempt; exponential backoff with full jitter; only
retryable :class:`~aixpy.errors.ProviderError` s of the kinds in ``retry_on`` (rate limit, timeout,
5xx, connection) — never an :class:`~aixpy.errors.InvalidInputError` or a 400; a rate limit's
``retry_after`` (and a loading model's estimate, :class:`~aixpy.errors.ModelLoadingError`)
replaces the backoff; a wait that would pass the call's deadline (see
:func:`~aixpy.embeddings.policies.deadline`) or is longer than ``max_retry_after`` ends the retries at
once. A fallback chain inside is retried when one of its providers' errors would be.

Partial batches
    When the inner service raises :class:`~aixpy.errors.PartialBatchError`, only the texts that failed
    are sent again; nothing that succeeded is re-sent. If retries run out, the error raised is a
    ``PartialBatchError`` indexed on *your* list, holding every vector obtained on any attempt.
    Its errors are retried if any of them is retryable; the longest ``retry_after`` among them wins.

Sleeps go through the wrapper's clock (a :class:`~aixpy.llm.deadline.ManualClock` in tests).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.policies._attempts import Attempts
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.errors import PartialBatchError, ProviderError
from aixpy.llm.deadline import Clock, Deadline
from aixpy.llm.policies.retry import RetryPolicy

__all__ = ["RetryPolicy", "RetryingEmbeddings"]

logger = logging.getLogger("aixpy.embeddings")


class RetryingEmbeddings(EmbeddingWrapper):
    """Retries ``inner`` by a :class:`RetryPolicy` (default: 3 attempts, 1 s..30 s backoff, full jitter).

    ``policy`` may also be a ``retry:`` config block (anything with ``max_attempts``,
    ``initial_backoff``, ``max_backoff``, ``multiplier``, ``jitter``, ``retry_on``).
    """

    def __init__(self, inner: EmbeddingService, policy: RetryPolicy | Any = None, *, clock: Clock | None = None,
                 rng: random.Random | None = None, timeout: float | None = None) -> None:
        super().__init__(inner, clock=clock, timeout=timeout)
        if policy is None:
            policy = RetryPolicy()
        self.policy = policy if isinstance(policy, RetryPolicy) else RetryPolicy.from_config(policy)
        self._rng = rng or random.Random()
        self.retries = 0

    def _delay(self, run: Attempts, err: ProviderError, deadline: Deadline) -> float | None:
        decisive: ProviderError = err
        if isinstance(err, PartialBatchError):
            retried = [e for e in err.errors if isinstance(e, ProviderError) and self.policy.retries(e)]
            if not retried:
                return None
            decisive = max(retried, key=lambda e: self.policy.server_wait(e) or getattr(e, "retry_after", None) or 0.0)
        delay = self.policy.next_delay(run.attempt, decisive, deadline, self._rng)
        if delay is not None:
            self.retries += 1
            logger.info("retrying %d text(s) on %s:%s in %.3f s after attempt %d: %s", len(run.pending),
                        self.provider, self._model, delay, run.attempt, type(decisive).__name__)
        return delay

    def _wait_or_raise(self, run: Attempts, err: ProviderError, deadline: Deadline) -> float:
        """Seconds to wait before the next attempt; raise the final error when retries are over."""
        delay = self._delay(run, err, deadline)
        if delay is None:
            failure = run.failure(err)
            if failure is err:
                raise err
            raise failure from err
        return delay

    def _run(self, texts: list[str]) -> Result:
        run, deadline = Attempts(texts), self._deadline()
        while True:
            try:
                out = run.done(*self.inner.embed_with_usage(run.batch()))
                return out, run.usage
            except PartialBatchError as e:
                run.partial(e)
                err: ProviderError = e
            except ProviderError as e:
                err = e
            self.clock.sleep(self._wait_or_raise(run, err, deadline))
            run.attempt += 1

    async def _arun(self, texts: list[str]) -> Result:
        run, deadline = Attempts(texts), self._deadline()
        while True:
            try:
                out = run.done(*await self.inner.aembed_with_usage(run.batch()))
                return out, run.usage
            except PartialBatchError as e:
                run.partial(e)
                err: ProviderError = e
            except ProviderError as e:
                err = e
            await self.clock.asleep(self._wait_or_raise(run, err, deadline))
            run.attempt += 1

    def __repr__(self) -> str:
        return f"RetryingEmbeddings({self.inner!r}, max_attempts={self.policy.max_attempts})"
