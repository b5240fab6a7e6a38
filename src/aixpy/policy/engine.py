"""The one engine under every retry and fallback: *plans* that decide, *drivers* that do the I/O.

A retry or fallback plan (:func:`~aixpy.policy.retry.retry_plan`,
:func:`~aixpy.policy.fallback.fallback_plan`) is a generator of :class:`Attempt` and :class:`Sleep`
steps (see :mod:`aixpy.policy.plans`). It receives each attempt's reply, or has the attempt's exception
thrown in where it yielded, and holds every decision: attempt counting, backoff and ``Retry-After``,
the deadline, which errors move on, the final error and the logs. Four drivers run a plan:

* :func:`call` / :func:`acall` — one request per attempt, sleeps on the wrapper's clock;
* :func:`stream` / :func:`astream` — one event stream per attempt, retried or failed over only while
  nothing has reached the caller. Once an event was delivered a failure is handed to ``interrupted``
  (the LLM layer's ``raise_stream_error``: a :class:`~aixpy.llm.model.StreamInterruptedError`), never
  to the plan, so nothing delivered is ever sent again.

The sync and async drivers differ only in their I/O, so both paths take the same decisions by
construction.

What one call sends over its attempts is a :class:`Work`: a request sent whole each time
(:class:`Whole`, the LLM case) or a batch whose attempts may partly succeed — embeddings'
:class:`~aixpy.errors.PartialBatchError`: the batch keeps what came back and only what failed is sent
again (``aixpy.embeddings.policies._attempts.Attempts``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeAlias, TypeVar

from aixpy.errors import PartialBatchError, ProviderError
from aixpy.policy.deadline import Clock
from aixpy.policy.plans import arun, run

__all__ = ["Attempt", "Sleep", "Step", "StepPlan", "Whole", "Work", "acall", "astream", "call", "stream"]

R = TypeVar("R")
T = TypeVar("T")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Attempt:
    """Send the call to target number ``target`` (0 for a retry's single inner service)."""

    target: int


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` on the wrapper's clock before the next attempt."""

    seconds: float


Step: TypeAlias = Attempt | Sleep
StepPlan: TypeAlias = Generator[Step, Any, T]
"""A plan of :class:`Step` s returning ``T``; an attempt's reply is sent in, a sleep's is ``None``."""


class Work(Generic[R, T]):
    """What one call sends over its attempts, and how its replies make the result.

    ``R`` is one attempt's reply, ``T`` the call's result. The plans call these hooks only:
    """

    def outstanding(self) -> str | None:
        """What is still to send, for the logs (``"3 text(s)"``); ``None`` when the request goes whole."""
        return None

    def partial(self, err: PartialBatchError) -> None:
        """Keep what a partly failed attempt returned, so that only what failed is sent again."""

    def result(self, reply: R) -> T:
        """The call's result once an attempt answered."""
        raise NotImplementedError

    def failure(self, err: ProviderError) -> ProviderError:
        """The error to raise when the plan gives up on ``err`` (``err`` itself, or one that also holds
        what earlier attempts obtained)."""
        return err


class Whole(Work[R, R]):
    """The same request on every attempt; an answer is the result and nothing carries over."""

    def result(self, reply: R) -> R:
        return reply


# --------------------------------------------------------------------------- call drivers


def call(plan: StepPlan[T], attempt: Callable[[int], Any], clock: Clock) -> T:
    """Run ``plan``: ``attempt(target)`` for each :class:`Attempt`, ``clock.sleep`` for each :class:`Sleep`."""

    def io(step: Step) -> Any:
        if isinstance(step, Sleep):
            clock.sleep(step.seconds)
            return None
        return attempt(step.target)

    return run(plan, io)


async def acall(plan: StepPlan[T], attempt: Callable[[int], Awaitable[Any]], clock: Clock) -> T:
    """:func:`call` with awaited attempts and sleeps."""

    async def io(step: Step) -> Any:
        if isinstance(step, Sleep):
            await clock.asleep(step.seconds)
            return None
        return await attempt(step.target)

    return await arun(plan, io)


# --------------------------------------------------------------------------- stream drivers


def _resume(plan: StepPlan[Any], err: Exception | None = None) -> Step | None:
    """The plan's next step after a failed attempt (``err``) or a sleep; ``None`` when it returned."""
    try:
        return plan.throw(err) if err is not None else plan.send(None)
    except StopIteration:
        return None


def _first(plan: StepPlan[Any]) -> Step | None:
    try:
        return next(plan)
    except StopIteration:
        return None


def _failed(plan: StepPlan[Any], err: Exception, delivered: int,
            interrupted: Callable[[ProviderError, int], NoReturn]) -> Step | None:
    """A stream attempt failed: before any event the plan decides; after one, ``interrupted`` does (a
    non-aixpy error propagates as it is)."""
    if not delivered:
        return _resume(plan, err)
    if not isinstance(err, ProviderError):
        raise err
    interrupted(err, delivered)


def stream(plan: StepPlan[Any], open_events: Callable[[int], Generator[E, None, None]], clock: Clock,
           interrupted: Callable[[ProviderError, int], NoReturn]) -> Generator[E, None, None]:
    """Yield the events of the first attempt that completes; a failure before any event is the plan's
    to decide, one after an event goes to ``interrupted(err, delivered)`` (a non-aixpy error propagates)."""
    with closing(plan):
        step = _first(plan)
        while step is not None:
            if isinstance(step, Sleep):
                clock.sleep(step.seconds)
                step = _resume(plan)
                continue
            delivered = 0
            events = open_events(step.target)
            try:
                for event in events:
                    delivered += 1
                    yield event
                return
            except Exception as e:
                step = _failed(plan, e, delivered, interrupted)
            finally:
                events.close()


async def astream(plan: StepPlan[Any], open_events: Callable[[int], AsyncGenerator[E, None]], clock: Clock,
                  interrupted: Callable[[ProviderError, int], NoReturn]) -> AsyncGenerator[E, None]:
    """:func:`stream` with async event streams and sleeps."""
    with closing(plan):
        step = _first(plan)
        while step is not None:
            if isinstance(step, Sleep):
                await clock.asleep(step.seconds)
                step = _resume(plan)
                continue
            delivered = 0
            events = open_events(step.target)
            try:
                async for event in events:
                    delivered += 1
                    yield event
                return
            except Exception as e:
                step = _failed(plan, e, delivered, interrupted)
            finally:
                await events.aclose()
