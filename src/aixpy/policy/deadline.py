"""Clocks and per-call deadlines.

A :class:`Deadline` is created once per public call (``chat``/``achat``/``stream``/``astream``) and
handed down to every layer below it: the retry policy, the fallback chain and each provider's HTTP
request all see the same absolute instant, so a call never outlives it however many attempts and
providers it tries. Time is read from a :class:`Clock`; tests pass a :class:`ManualClock`, whose
sleeps return at once and only move its own time forward, so a 30-second ``Retry-After`` is tested
in microseconds and measured exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aixpy.errors import ProviderTimeoutError

__all__ = ["SYSTEM_CLOCK", "Clock", "Deadline", "DeadlineExceededError", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Where policies and models read time and sleep: ``now()`` (monotonic seconds) and two sleeps."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.sleep` and ``anyio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        import anyio  # lazily: anyio costs ~50 ms to import and only async callers need it

        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()
"""The clock every model uses unless told otherwise."""


class ManualClock:
    """A clock for tests: ``sleep`` returns at once and advances :attr:`time`; every sleep is kept
    in :attr:`sleeps`. ``advance`` moves time by hand (e.g. to simulate a slow provider)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        import anyio

        await anyio.sleep(0)  # still a checkpoint, like a real sleep

    @property
    def slept(self) -> float:
        """Total seconds slept."""
        return sum(self.sleeps)

    def __repr__(self) -> str:
        return f"ManualClock(time={self.time}, sleeps={len(self.sleeps)})"


class DeadlineExceededError(ProviderTimeoutError):
    """The per-call deadline passed before a provider could be (re)tried. Not retryable."""

    default_retryable = False


@dataclass(slots=True)
class Deadline:
    """An absolute instant on ``clock`` by which a call must end (``at=None``: no deadline)."""

    at: float | None
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)

    @classmethod
    def after(cls, seconds: float | None, clock: Clock = SYSTEM_CLOCK) -> Deadline:
        """A deadline ``seconds`` from now (``None``: never)."""
        return cls(None if seconds is None else clock.now() + max(0.0, seconds), clock)

    def remaining(self) -> float | None:
        """Seconds left (may be negative), or ``None`` without a deadline."""
        return None if self.at is None else self.at - self.clock.now()

    @property
    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    def tighter(self, seconds: float | None) -> Deadline:
        """This deadline, or one ``seconds`` from now if that comes first."""
        if seconds is None:
            return self
        other = self.clock.now() + max(0.0, seconds)
        return self if self.at is not None and self.at <= other else Deadline(other, self.clock)

    def timeout_for(self, limit: float | None, *, provider: str | None = None,
                    model: str | None = None) -> float | None:
        """The timeout to give one request: the time left, capped by ``limit`` (the provider's own).

        Raises :class:`DeadlineExceededError` when no time is left.
        """
        left = self.remaining()
        if left is None:
            return limit
        if left <= 0:
            raise DeadlineExceededError("the call's deadline passed before the request could be sent",
                                        provider=provider, model=model)
        return left if limit is None else min(left, limit)
