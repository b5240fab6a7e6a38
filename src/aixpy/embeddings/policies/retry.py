"""``RetryingEmbeddings``: the one retry loop of an embedding call.

The decisions are :class:`~aixpy.policy.retry.RetryPolicy`'s and the loop is
:func:`~aixpy.policy.retry.retry_plan`, both shared with the LLM side's ``RetryModel``:
``max_attempts`` counts every attempt; exponential backoff with full jitter; only retryable
:class:`~aixpy.errors.ProviderError` s of the kinds in ``retry_on`` (rate limit, timeout, 5xx,
connection) — never an :class:`~aixpy.errors.InvalidInputError` or a 400; a rate limit's
``retry_after`` (and a loading model's estimate, :class:`~aixpy.errors.ModelLoadingError`)
replaces the backoff; a wait that would pass the call's deadline (see
:func:`~aixpy.embeddings.policies.deadline`) or is longer than ``max_retry_after`` ends the retries at
once. A fallback chain inside is retried when one of its providers' errors would be.

Partial batches
    When the inner service raises :class:`~aixpy.errors.PartialBatchError`, only the texts that failed
    are sent again; nothing that succeeded is re-sent. If retries run out, the error raised is a
    ``PartialBatchError`` indexed on *your* list, holding every vector obtained on any attempt.
    Its errors are retried if any of them is retryable; the longest ``retry_after`` among them wins.

Sleeps go through the wrapper's clock (a :class:`~aixpy.policy.deadline.ManualClock` in tests).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.policies._attempts import Attempts
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.policy import Clock, RetryPolicy, StepPlan, acall, call, retry_plan

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

    def _counted(self) -> None:
        self.retries += 1

    def _call_plan(self, run: Attempts) -> StepPlan[Result]:
        return retry_plan(self.policy, run, deadline=self._deadline(), rng=self._rng, logger=logger,
                          name=lambda: f"{self.provider}:{self._model}", on_retry=self._counted)

    def _run(self, texts: list[str]) -> Result:
        run = Attempts(texts)
        return call(self._call_plan(run), lambda _: self.inner.embed_with_usage(run.batch()), self.clock)

    async def _arun(self, texts: list[str]) -> Result:
        run = Attempts(texts)
        return await acall(self._call_plan(run), lambda _: self.inner.aembed_with_usage(run.batch()), self.clock)

    def __repr__(self) -> str:
        return f"RetryingEmbeddings({self.inner!r}, max_attempts={self.policy.max_attempts})"
