"""Run one piece of logic on both the sync and the async path: a *plan* is a generator that yields the
I/O it needs done and receives each result (or has the I/O's exception thrown in where it yielded).

>>> def plan() -> Plan[str, int, int]:              # doctest: +SKIP
...     try:
...         n = yield "first"
...     except OSError:
...         n = yield "second"
...     return n * 2
>>> run(plan(), do_io)                                   # doctest: +SKIP
>>> await arun(plan(), ado_io)                           # doctest: +SKIP

The plan holds every decision (which endpoint, what to do on which error), so the sync and async
twins differ only in the ``do_io`` they pass. An exception raised by the I/O, cancellation
included, is thrown into the plan at its ``yield``, so its ``try``/``except`` blocks see it exactly as
they would see a direct call's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TypeVar

__all__ = ["Plan", "arun", "run"]

Step = TypeVar("Step")
Reply = TypeVar("Reply")
Out = TypeVar("Out")
Plan = Generator[Step, Reply, Out]


def run(plan: Plan[Step, Reply, Out], io: Callable[[Step], Reply]) -> Out:
    """Drive ``plan`` to its end, doing each step with ``io``; returns the plan's return value."""
    try:
        step = next(plan)
        while True:
            try:
                reply = io(step)
            except BaseException as e:
                step = plan.throw(e)
            else:
                step = plan.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun(plan: Plan[Step, Reply, Out], io: Callable[[Step], Awaitable[Reply]]) -> Out:
    """:func:`run` with awaited I/O."""
    try:
        step = next(plan)
        while True:
            try:
                reply = await io(step)
            except BaseException as e:
                step = plan.throw(e)
            else:
                step = plan.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
