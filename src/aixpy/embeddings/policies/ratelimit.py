"""``RateLimitedEmbeddings``: stay under a provider's limits instead of collecting 429s.

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

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.embeddings.policies.cost import count_tokens
from aixpy.embeddings.policies.fallback import FallbackEmbeddings
from aixpy.errors import InvalidInputError
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock, Deadline, DeadlineExceededError

__all__ = ["RateLimitedEmbeddings", "RateLimiter", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` banked. Not thread-safe: :class:`RateLimiter` locks."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise InvalidInputError("a rate limit must be positive")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are covered (0: now)."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        return max(0.0, (amount - self.tokens) / self.rate)

    def take(self, amount: float) -> None:
        self.tokens -= amount

    def give_back(self, amount: float) -> None:
        self.tokens = min(self.capacity, self.tokens + amount)


@dataclass(eq=False)
class _Waiter:
    event: threading.Event | None = None
    future: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    granted: bool = field(default=False)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Slots:
    """A FIFO semaphore usable from threads and event loops at once, that never leaks a slot."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = limit
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        return self.limit - self._free

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _release_locked(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            w.granted = True
            if w.event is not None:
                w.event.set()
                return
            assert w.future is not None
            assert w.loop is not None
            if not w.loop.is_closed():
                w.loop.call_soon_threadsafe(_wake, w.future)
                return
        self._free += 1

    def release(self) -> None:
        with self._lock:
            self._release_locked()

    def _giveup(self, w: _Waiter) -> None:
        with self._lock:
            if w.granted:
                self._release_locked()
            else:
                self._waiters.remove(w)

    def acquire(self, timeout: float | None) -> bool:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            w = _Waiter(event=threading.Event())
            self._waiters.append(w)
        assert w.event is not None
        w.event.wait(timeout)
        with self._lock:
            if w.granted:
                return True
            self._waiters.remove(w)
            return False

    async def aacquire(self, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return True
            w = _Waiter(future=loop.create_future(), loop=loop)
            self._waiters.append(w)
        assert w.future is not None
        try:
            async with asyncio.timeout(timeout):
                await w.future
        except TimeoutError:
            self._giveup(w)
            return False
        except BaseException:
            self._giveup(w)
            raise
        return True


class RateLimiter:
    """The shared state of the limits (see the module docstring). ``None`` disables a limit."""

    def __init__(self, requests_per_second: float | None = None, tokens_per_minute: float | None = None,
                 max_concurrency: int | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise InvalidInputError("max_concurrency must be at least 1")
        self.clock = clock
        now = clock.now()
        self.requests_per_second = requests_per_second
        self.tokens_per_minute = tokens_per_minute
        self.max_concurrency = max_concurrency
        self._requests = None if requests_per_second is None else TokenBucket(
            requests_per_second, max(1.0, requests_per_second), now)
        self._tokens = None if tokens_per_minute is None else TokenBucket(tokens_per_minute / 60.0,
                                                                          tokens_per_minute, now)
        self._slots = None if max_concurrency is None else _Slots(max_concurrency)
        self._lock = threading.Lock()
        self.waited = 0.0

    @property
    def counts_tokens(self) -> bool:
        return self._tokens is not None

    def reserve(self, tokens: int, deadline: Deadline, *, requests: int = 1) -> float:
        """Take ``requests`` requests and ``tokens`` tokens; return the seconds to sleep before sending.

        Raises :class:`DeadlineExceededError` (reserving nothing) if that sleep would pass ``deadline``.
        """
        with self._lock:
            now = self.clock.now()
            wait = 0.0
            if self._requests is not None:
                wait = self._requests.wait_for(requests, now)
            if self._tokens is not None:
                wait = max(wait, self._tokens.wait_for(tokens, now))
            left = deadline.remaining()
            if left is not None and (left <= 0 or wait > left):
                raise DeadlineExceededError(
                    f"rate limit: the request would wait {wait:.3f} s but the call's deadline is "
                    f"{max(0.0, left):.3f} s away")
            if self._requests is not None:
                self._requests.take(requests)
            if self._tokens is not None:
                self._tokens.take(tokens)
            self.waited += wait
            return wait

    def refund(self, tokens: int, *, requests: int = 1) -> None:
        """Give back a reservation whose request was never sent (a cancelled wait)."""
        with self._lock:
            if self._requests is not None:
                self._requests.give_back(requests)
            if self._tokens is not None:
                self._tokens.give_back(tokens)

    def _slot_timeout(self, deadline: Deadline) -> float | None:
        left = deadline.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceededError("rate limit: the call's deadline passed before a request slot was free")
        return left

    def acquire(self, deadline: Deadline) -> None:
        """Take a concurrency slot (blocking), or raise :class:`DeadlineExceededError`."""
        if self._slots is not None and not self._slots.acquire(self._slot_timeout(deadline)):
            raise DeadlineExceededError(f"rate limit: no request slot (max_concurrency={self.max_concurrency}) "
                                        "was free before the call's deadline")

    async def aacquire(self, deadline: Deadline) -> None:
        if self._slots is not None and not await self._slots.aacquire(self._slot_timeout(deadline)):
            raise DeadlineExceededError(f"rate limit: no request slot (max_concurrency={self.max_concurrency}) "
                                        "was free before the call's deadline")

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def stats(self) -> dict[str, Any]:
        """``in_flight``, ``waiting`` (for a slot) and ``waited`` (total seconds slept for the buckets)."""
        return {"in_flight": self._slots.in_use if self._slots else 0,
                "waiting": self._slots.waiting if self._slots else 0, "waited": self.waited}

    def __repr__(self) -> str:
        return (f"RateLimiter(requests_per_second={self.requests_per_second}, "
                f"tokens_per_minute={self.tokens_per_minute}, max_concurrency={self.max_concurrency})")


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
