"""Token buckets and the rate limiter the embedding and LLM rate-limit wrappers share.

Limits, each optional: ``requests_per_second`` (a bucket holding one second's worth) or
``requests_per_minute`` (a bucket holding a minute's worth, refilled continuously),
``tokens_per_minute`` (a minute's worth, refilled continuously) and ``max_concurrency``.

Buckets work by reservation: a caller takes its tokens now (the balance may go negative) and sleeps
until the balance would have covered them, so later callers queue behind it fairly. A wait that
would end after the call's deadline is not started: :class:`~aixpy.policy.deadline.DeadlineExceededError`
is raised at once and nothing is reserved. :meth:`RateLimiter.adjust` corrects a reservation made on
an estimate once the real count is known (an LLM answer's usage).

:class:`RateLimiter` keeps its buckets in the process; :class:`~aixpy.policy.ratelimit_redis.RedisRateLimiter`
keeps them in Redis so a fleet of processes stays under one quota. Both have the same ``reserve`` /
``refund`` / ``adjust`` methods and their async twins.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aixpy.errors import InvalidInputError
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock, Deadline, DeadlineExceededError

__all__ = ["Limiter", "RateLimiter", "TokenBucket", "too_late"]


@runtime_checkable
class Limiter(Protocol):
    """What a rate-limit wrapper asks of its limiter (local or shared)."""

    clock: Clock

    def reserve(self, tokens: int, deadline: Deadline, *, requests: int = 1) -> float: ...

    def refund(self, tokens: int, *, requests: int = 1) -> None: ...

    def adjust(self, tokens: int) -> None: ...

    async def areserve(self, tokens: int, deadline: Deadline, *, requests: int = 1) -> float: ...

    async def arefund(self, tokens: int, *, requests: int = 1) -> None: ...

    async def aadjust(self, tokens: int) -> None: ...


def too_late(wait: float, deadline: Deadline) -> DeadlineExceededError | None:
    """The error to raise at once when a ``wait`` would pass ``deadline`` (``None``: it fits)."""
    left = deadline.remaining()
    if left is not None and (left <= 0 or wait > left):
        return DeadlineExceededError(f"rate limit: the request would wait {wait:.3f} s but the call's deadline is "
                                     f"{max(0.0, left):.3f} s away")
    return None


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
                 max_concurrency: int | None = None, *, clock: Clock = SYSTEM_CLOCK,
                 requests_per_minute: float | None = None) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise InvalidInputError("max_concurrency must be at least 1")
        if requests_per_second is not None and requests_per_minute is not None:
            raise InvalidInputError("give requests_per_second or requests_per_minute, not both")
        self.clock = clock
        now = clock.now()
        self.requests_per_second = requests_per_second
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_concurrency = max_concurrency
        self._requests = None if requests_per_second is None else TokenBucket(
            requests_per_second, max(1.0, requests_per_second), now)
        if requests_per_minute is not None:
            self._requests = TokenBucket(requests_per_minute / 60.0, requests_per_minute, now)
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
            late = too_late(wait, deadline)
            if late is not None:
                raise late
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

    def adjust(self, tokens: int) -> None:
        """Correct a reservation once the real count is known: take ``tokens`` more (or give back when negative)."""
        with self._lock:
            if self._tokens is not None:
                if tokens >= 0:
                    self._tokens.wait_for(0, self.clock.now())
                    self._tokens.take(tokens)
                else:
                    self._tokens.give_back(-tokens)

    async def areserve(self, tokens: int, deadline: Deadline, *, requests: int = 1) -> float:
        """:meth:`reserve` for async callers (no I/O: the same lock-protected arithmetic)."""
        return self.reserve(tokens, deadline, requests=requests)

    async def arefund(self, tokens: int, *, requests: int = 1) -> None:
        self.refund(tokens, requests=requests)

    async def aadjust(self, tokens: int) -> None:
        self.adjust(tokens)

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
        rpm = f"requests_per_minute={self.requests_per_minute}, " if self.requests_per_minute is not None else ""
        return (f"RateLimiter({rpm}requests_per_second={self.requests_per_second}, "
                f"tokens_per_minute={self.tokens_per_minute}, max_concurrency={self.max_concurrency})")
