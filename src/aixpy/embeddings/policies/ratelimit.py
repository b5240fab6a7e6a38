"""``RateLimitedEmbeddings``: stay under a provider's limits instead of collecting 429s.

The limiter (:class:`~aixpy.policy.ratelimit.RateLimiter`, its :class:`TokenBucket`) lives in
:mod:`aixpy.policy.ratelimit`, shared with the LLM rate limits; this module counts an embedding call.

Three limits, each optional, shared by sync and async callers (and by several services when you
pass the same :class:`RateLimiter`):

* ``requests_per_second`` — a token bucket refilled at that rate, holding one second's worth; a call
  costs the number of requests the provider will send (its sub-batches of ``batch_size`` texts);
* ``tokens_per_minute`` — a token bucket of a minute's worth, refilled continuously; a request costs
  the tokens of its texts as counted by :func:`~aixpy.embeddings.policies.cost.count_tokens`
  (tiktoken when available, else the 4-bytes-per-token estimate);
* ``max_concurrency`` — at most that many calls in flight through this wrapper (first come, first
  served); each call may itself send up to the provider's own ``max_concurrency`` sub-batches at once.

Buckets work by reservation: a caller takes its tokens now (the balance may go negative) and sleeps
until the balance would have covered them, so later callers queue behind it fairly. A batch larger
than a minute's tokens still goes through, after the wait its size implies.

Deadlines and cancellation
    A wait that would end after the call's deadline (see :func:`~aixpy.embeddings.policies.deadline`)
    is not started: :class:`~aixpy.policy.deadline.DeadlineExceededError` is raised at once and nothing
    is reserved. A cancelled async call gives back its concurrency slot and its reserved tokens.
    Waiting for a concurrency slot is bounded by the deadline in real seconds.
"""

from __future__ import annotations

from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.embeddings.policies.cost import count_tokens
from aixpy.embeddings.policies.fallback import FallbackEmbeddings
from aixpy.policy.deadline import Clock
from aixpy.policy.ratelimit import RateLimiter, TokenBucket

__all__ = ["RateLimitedEmbeddings", "RateLimiter", "TokenBucket"]


def _requests(service: EmbeddingService, texts: list[str]) -> int:
    """How many requests ``service`` will send for ``texts``: its sub-batch plan (1 if it cannot say)."""
    while isinstance(service, EmbeddingWrapper):
        service = service.services[0] if isinstance(service, FallbackEmbeddings) else service.inner
    try:
        return max(1, len(service._split(texts)))
    except Exception:  # a provider whose split needs I/O or state it lacks: count the call once
        return 1


class RateLimitedEmbeddings(EmbeddingWrapper):
    """Applies ``limiter`` (or one built from the keyword limits) to every call of ``inner``."""

    def __init__(self, inner: EmbeddingService, limiter: RateLimiter | None = None, *,
                 requests_per_second: float | None = None, tokens_per_minute: float | None = None,
                 max_concurrency: int | None = None, clock: Clock | None = None, timeout: float | None = None) -> None:
        super().__init__(inner, clock=clock, timeout=timeout)
        self.limiter = limiter or RateLimiter(requests_per_second, tokens_per_minute, max_concurrency,
                                              clock=self.clock)
        self.clock = self.limiter.clock

    def _cost(self, texts: list[str]) -> tuple[int, int]:
        """(requests, tokens) this call will spend: the provider's sub-batches, and its texts' tokens."""
        tokens = count_tokens(texts, self._model).tokens if self.limiter.counts_tokens else 0
        return _requests(self.inner, texts), tokens

    def _run(self, texts: list[str]) -> Result:
        deadline = self._deadline()
        self.limiter.acquire(deadline)
        try:
            requests, tokens = self._cost(texts)
            wait = self.limiter.reserve(tokens, deadline, requests=requests)
            if wait > 0:
                self.clock.sleep(wait)
            return self.inner.embed_with_usage(texts)
        finally:
            self.limiter.release()

    async def _arun(self, texts: list[str]) -> Result:
        deadline = self._deadline()
        await self.limiter.aacquire(deadline)
        try:
            requests, tokens = self._cost(texts)
            wait = self.limiter.reserve(tokens, deadline, requests=requests)
            if wait > 0:
                try:
                    await self.clock.asleep(wait)
                except BaseException:
                    self.limiter.refund(tokens, requests=requests)
                    raise
            return await self.inner.aembed_with_usage(texts)
        finally:
            self.limiter.release()

    def __repr__(self) -> str:
        return f"RateLimitedEmbeddings({self.inner!r}, {self.limiter!r})"
