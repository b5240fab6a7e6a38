"""aixpy.policy: the retry and fallback plans hold every decision; the four drivers only do I/O.

Each scenario is a script of replies per target (a value, or an exception to raise). It is run by the
sync and the async driver on a fresh script each time, and both runs must record the very same
steps (attempts and sleeps) and the very same outcome, which the test also spells out.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, NoReturn

import pytest

from aixpy.errors import (
    AllProvidersFailedError,
    InvalidInputError,
    InvalidRequestError,
    PartialBatchError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from aixpy.policy import (
    Attempt,
    Deadline,
    DeadlineExceededError,
    ManualClock,
    RetryPolicy,
    Sleep,
    StepPlan,
    Whole,
    Work,
    acall,
    astream,
    call,
    fallback_plan,
    provider_failed,
    retry_plan,
    stream,
)

LOG = logging.getLogger("tests.policy")
POLICY = RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=5.0, multiplier=2.0, jitter=False)
NAMES = [("a", "x"), ("b", "y"), ("c", "z")]


class RecordingClock(ManualClock):
    def __init__(self, log: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.log = log

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))
        super().sleep(seconds)


class Harness:
    """Replies per target, in order; records each attempt and sleep. ``slow`` advances the clock per attempt."""

    def __init__(self, script: dict[int, list[Any]], slow: float = 0.0) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.log: list[tuple[str, Any]] = []
        self.clock = RecordingClock(self.log)
        self.slow = slow

    def attempt(self, target: int) -> Any:
        self.log.append(("attempt", target))
        self.clock.advance(self.slow)
        reply = self.script[target].pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def aattempt(self, target: int) -> Any:
        await asyncio.sleep(0)
        return self.attempt(target)


def outcome(fn: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("ok", fn())
    except Exception as e:
        cause = e.__cause__
        inner = [type(x).__name__ for x in getattr(e, "errors", [])]
        return ("raised", type(e).__name__, str(e), type(cause).__name__ if cause else None, inner)


PlanOf = Callable[[Harness], StepPlan[Any]]


def both(script: Callable[[], dict[int, list[Any]]], plan_of: PlanOf, slow: float = 0.0) -> tuple[Any, list[Any]]:
    """Run the scenario with call() and acall(); assert identical records; return (outcome, steps)."""
    sync, asyn = Harness(script(), slow), Harness(script(), slow)
    got_sync = outcome(lambda: call(plan_of(sync), sync.attempt, sync.clock))
    got_async = outcome(lambda: asyncio.run(acall(plan_of(asyn), asyn.aattempt, asyn.clock)))
    assert got_sync == got_async
    assert sync.log == asyn.log
    return got_sync, sync.log


def retrying(policy: RetryPolicy = POLICY, deadline_s: float | None = None,
             on_retry: Callable[[], None] | None = None) -> PlanOf:
    def plan_of(h: Harness) -> StepPlan[Any]:
        return retry_plan(policy, Whole[Any](), deadline=Deadline.after(deadline_s, h.clock), rng=random.Random(0),
                          name=lambda: "a:x", logger=LOG, on_retry=on_retry)
    return plan_of


def cascading(count: int = 3, fallback_on: Callable[[BaseException], bool] = provider_failed,
              deadline_s: float | None = None) -> PlanOf:
    def plan_of(h: Harness) -> StepPlan[Any]:
        return fallback_plan(count, Whole[Any](), deadline=Deadline.after(deadline_s, h.clock),
                             fallback_on=fallback_on, name=lambda i: NAMES[i], logger=LOG)
    return plan_of


# --------------------------------------------------------------------------- the plans by hand


def test_retry_plan_steps_by_hand() -> None:
    clock = ManualClock()
    plan = retry_plan(POLICY, Whole[str](), deadline=Deadline(None, clock), rng=random.Random(0),
                      name=lambda: "a:x", logger=LOG)
    assert next(plan) == Attempt(0)
    assert plan.throw(RateLimitError("slow down", retry_after=2.5)) == Sleep(2.5)   # Retry-After wins
    assert plan.send(None) == Attempt(0)
    assert plan.throw(ServerError("boom")) == Sleep(2.0)                            # backoff after attempt 2
    assert plan.send(None) == Attempt(0)
    with pytest.raises(StopIteration) as done:
        plan.send("answer")
    assert done.value.value == "answer"


def test_fallback_plan_steps_by_hand() -> None:
    plan = fallback_plan(3, Whole[str](), deadline=Deadline(None, ManualClock()), fallback_on=provider_failed,
                         name=lambda i: NAMES[i], logger=LOG)
    assert next(plan) == Attempt(0)
    assert plan.throw(ServerError("down")) == Attempt(1)
    assert plan.throw(InvalidRequestError("no such model", status_code=404)) == Attempt(2)
    with pytest.raises(StopIteration) as done:
        plan.send("from c")
    assert done.value.value == "from c"


# --------------------------------------------------------------------------- retry, sync == async


def test_retry_backs_off_then_answers() -> None:
    got, steps = both(lambda: {0: [RateLimitError("429", retry_after=2.5), ServerError("503"), "ok"]}, retrying())
    assert got == ("ok", "ok")
    assert steps == [("attempt", 0), ("sleep", 2.5), ("attempt", 0), ("sleep", 2.0), ("attempt", 0)]


def test_retry_gives_up_after_max_attempts_with_the_last_error() -> None:
    errors = lambda: {0: [ServerError(f"503 #{i}") for i in range(4)]}  # noqa: E731
    got, steps = both(errors, retrying())
    assert got[:3] == ("raised", "ServerError", "503 #3")
    assert [s for s in steps if s[0] == "sleep"] == [("sleep", 1.0), ("sleep", 2.0), ("sleep", 4.0)]
    assert steps.count(("attempt", 0)) == 4


@pytest.mark.parametrize("err", [
    InvalidRequestError("bad request", status_code=400),
    RateLimitError("quota exhausted", retryable=False),
    RateLimitError("come back in 5 min", retry_after=300.0),     # longer than max_retry_after: raise now
    DeadlineExceededError("late", retryable=True),
])
def test_retry_raises_at_once(err: ProviderError) -> None:
    got, steps = both(lambda: {0: [err, "never"]}, retrying())
    assert got[:2] == ("raised", type(err).__name__)
    assert steps == [("attempt", 0)]


def test_retry_never_catches_bugs() -> None:
    got, steps = both(lambda: {0: [KeyError("bug"), "never"]}, retrying())
    assert got[:2] == ("raised", "KeyError")
    assert steps == [("attempt", 0)]


def test_retry_stops_before_a_wait_that_would_pass_the_deadline() -> None:
    # deadline in 3 s: wait 1 s fits (3 left), the next 2 s wait does not (2 left)
    got, steps = both(lambda: {0: [ServerError("1"), ServerError("2"), "late"]}, retrying(deadline_s=3.0))
    assert got[:3] == ("raised", "ServerError", "2")
    assert steps == [("attempt", 0), ("sleep", 1.0), ("attempt", 0)]


def test_retry_counts_and_logs_each_retry(caplog: pytest.LogCaptureFixture) -> None:
    count: list[int] = []
    with caplog.at_level(logging.INFO, logger="tests.policy"):
        both(lambda: {0: [ServerError("1"), "ok"]}, retrying(on_retry=lambda: count.append(1)))
    assert count == [1, 1]   # once per driver
    assert caplog.messages == ["retrying a:x in 1.000 s after attempt 1: ServerError"] * 2


def test_retry_of_a_failed_chain_waits_for_the_soonest_provider() -> None:
    def chain() -> AllProvidersFailedError:
        return AllProvidersFailedError([RateLimitError("a", retry_after=9.0), RateLimitError("b", retry_after=3.0)])
    got, steps = both(lambda: {0: [chain(), "ok"]}, retrying())
    assert got == ("ok", "ok")
    assert steps == [("attempt", 0), ("sleep", 3.0), ("attempt", 0)]


# --------------------------------------------------------------------------- fallback, sync == async


def test_fallback_moves_on_in_order() -> None:
    def script() -> dict[int, list[Any]]:
        return {0: [ServerError("down")], 1: [InvalidRequestError("gone", status_code=404)], 2: ["c"]}
    got, steps = both(script, cascading())
    assert got == ("ok", "c")
    assert steps == [("attempt", 0), ("attempt", 1), ("attempt", 2)]


@pytest.mark.parametrize("err", [InvalidRequestError("bad field", status_code=400), InvalidInputError("yours"),
                                 KeyError("bug")])
def test_fallback_does_not_move_on_for_errors_that_would_fail_everywhere(err: Exception) -> None:
    got, steps = both(lambda: {0: [err], 1: ["never"]}, cascading())
    assert got[:2] == ("raised", type(err).__name__)
    assert steps == [("attempt", 0)]


def test_fallback_rule_is_replaceable() -> None:
    got, steps = both(lambda: {0: [InvalidInputError("cannot express")], 1: ["b"]},
                      cascading(2, fallback_on=lambda e: isinstance(e, InvalidInputError)))
    assert got == ("ok", "b")
    assert steps == [("attempt", 0), ("attempt", 1)]


def test_every_target_failed_lists_each_error_in_order(caplog: pytest.LogCaptureFixture) -> None:
    def script() -> dict[int, list[Any]]:
        return {0: [ServerError("s")], 1: [RateLimitError("r")], 2: [ServerError("t")]}
    with caplog.at_level(logging.INFO, logger="tests.policy"):
        got, steps = both(script, cascading())
    assert got[0:2] == ("raised", "AllProvidersFailedError")
    assert got[3:] == ("ServerError", ["ServerError", "RateLimitError", "ServerError"])
    assert steps == [("attempt", 0), ("attempt", 1), ("attempt", 2)]
    assert caplog.messages[:2] == ["a:x failed (ServerError); falling back to b:y",
                                   "b:y failed (RateLimitError); falling back to c:z"]
    assert len(caplog.messages) == 4   # two per driver; the last target logs no fallback


def test_deadline_stops_the_chain() -> None:
    # each attempt takes 2 s; the deadline is 3 s away: target 0 and 1 are tried, 2 is not
    def script() -> dict[int, list[Any]]:
        return {0: [ServerError("s")], 1: [ServerError("t")], 2: ["never"]}
    got, steps = both(script, cascading(deadline_s=3.0), slow=2.0)
    assert got[:2] == ("raised", "AllProvidersFailedError")
    assert got[4] == ["ServerError", "ServerError", "DeadlineExceededError"]
    assert "the call's deadline passed before c:z was tried" in got[2]
    assert steps == [("attempt", 0), ("attempt", 1)]


# --------------------------------------------------------------------------- partial batches


class Items(Work[list[str], list[str]]):
    """A toy batch: a reply is one answer per pending item; a PartialBatchError keeps what came back."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.pending = list(range(len(items)))
        self.got: dict[int, str] = {}
        self.sent: list[list[str]] = []

    def batch(self) -> list[str]:
        out = [self.items[i] for i in self.pending]
        self.sent.append(out)
        return out

    def outstanding(self) -> str:
        return f"{len(self.pending)} item(s)"

    def partial(self, err: PartialBatchError) -> None:
        failed = set(err.failed)
        self.got.update({i: v for j, (i, v) in enumerate(zip(self.pending, err.vectors, strict=True))
                         if j not in failed})
        self.pending = [self.pending[j] for j in sorted(failed)]

    def result(self, reply: list[str]) -> list[str]:
        self.got.update(zip(self.pending, reply, strict=True))
        return [self.got[i] for i in range(len(self.items))]

    def failure(self, err: ProviderError) -> ProviderError:
        return PartialBatchError(self.pending, [err], [self.got.get(i) for i in range(len(self.items))])


def partial(failed: list[int], vectors: list[Any], *errors: ProviderError) -> PartialBatchError:
    return PartialBatchError(failed, list(errors), vectors)


def run_items(plan_of: Callable[[Items], StepPlan[list[str]]], replies: dict[int, list[Any]]) -> tuple[Any, ...]:
    """Drive an Items plan sync and async; the targets echo what they are sent unless scripted."""
    results = []
    for mode in ("sync", "async"):
        work, h = Items(["p", "q", "r", "s"]), Harness(replies)

        def send(target: int, work: Items = work, h: Harness = h) -> list[str]:
            batch = work.batch()
            reply = h.attempt(target)
            return [f"{target}:{t}" for t in batch] if reply == "echo" else reply

        async def asend(target: int, send: Callable[[int], list[str]] = send) -> list[str]:
            return send(target)

        plan = plan_of(work)
        res = (outcome(lambda: call(plan, send, h.clock)) if mode == "sync"   # noqa: B023
               else outcome(lambda: asyncio.run(acall(plan, asend, h.clock))))  # noqa: B023
        results.append((res, work.sent, h.log))
    assert results[0] == results[1]
    return results[0]


def test_retry_resends_only_the_failed_items_and_waits_for_the_decisive_error() -> None:
    plan_of = lambda w: retry_plan(POLICY, w, deadline=Deadline(None), rng=random.Random(0),  # noqa: E731
                                   name=lambda: "a:x", logger=LOG)
    first = partial([1, 3], ["0:p", None, "0:r", None], ServerError("x"), RateLimitError("y", retry_after=7.0))
    got, sent, log = run_items(plan_of, {0: [first, "echo"]})
    assert got == ("ok", ["0:p", "0:q", "0:r", "0:s"])
    assert sent == [["p", "q", "r", "s"], ["q", "s"]]
    assert log == [("attempt", 0), ("sleep", 7.0), ("attempt", 0)]


def test_retry_of_a_partial_batch_gives_up_holding_what_was_obtained() -> None:
    plan_of = lambda w: retry_plan(POLICY, w, deadline=Deadline(None), rng=random.Random(0),  # noqa: E731
                                   name=lambda: "a:x", logger=LOG)
    first = partial([0], [None, "0:q", "0:r", "0:s"], InvalidRequestError("too long", status_code=400))
    got, sent, log = run_items(plan_of, {0: [first, "never"]})
    assert got[:2] == ("raised", "PartialBatchError")
    assert sent == [["p", "q", "r", "s"]]
    assert log == [("attempt", 0)]


def test_fallback_sends_only_the_failed_items_on_even_when_the_rule_says_no() -> None:
    plan_of = lambda w: fallback_plan(2, w, deadline=Deadline(None), fallback_on=lambda e: False,  # noqa: E731
                                      name=lambda i: NAMES[i], logger=LOG)
    first = partial([2], ["0:p", "0:q", None, "0:s"], ServerError("x"))
    got, sent, log = run_items(plan_of, {0: [first], 1: ["echo"]})
    assert got == ("ok", ["0:p", "0:q", "1:r", "0:s"])
    assert sent == [["p", "q", "r", "s"], ["r"]]
    assert log == [("attempt", 0), ("attempt", 1)]


def test_fallback_of_partial_batches_fails_with_everything_obtained() -> None:
    plan_of = lambda w: fallback_plan(2, w, deadline=Deadline(None), fallback_on=provider_failed,  # noqa: E731
                                      name=lambda i: NAMES[i], logger=LOG)
    first = partial([2, 3], ["0:p", "0:q", None, None], ServerError("x"))
    second = partial([1], ["1:r", None], ServerError("y"))
    got, sent, _ = run_items(plan_of, {0: [first], 1: [second]})
    assert got[:2] == ("raised", "PartialBatchError")
    assert got[4] == ["AllProvidersFailedError"]
    assert sent == [["p", "q", "r", "s"], ["r", "s"]]


# --------------------------------------------------------------------------- stream drivers


class Interrupted(Exception):
    pass


def interrupt(err: ProviderError, delivered: int) -> NoReturn:
    raise Interrupted(f"{type(err).__name__} after {delivered}") from err


class Streams:
    """Per target, per attempt: the events to yield, then an exception to raise (or None)."""

    def __init__(self, script: dict[int, list[tuple[list[str], Exception | None]]]) -> None:
        self.script = {k: list(v) for k, v in script.items()}
        self.log: list[tuple[str, Any]] = []
        self.clock = RecordingClock(self.log)
        self.closed: list[int] = []

    def open(self, target: int) -> Generator[str, None, None]:
        self.log.append(("attempt", target))
        events, err = self.script[target].pop(0)
        try:
            yield from events
            if err is not None:
                raise err
        finally:
            self.closed.append(target)

    async def aopen(self, target: int) -> AsyncGenerator[str, None]:
        for event in self.open(target):
            await asyncio.sleep(0)
            yield event


def stream_both(script: Callable[[], dict[int, list[tuple[list[str], Exception | None]]]],
                plan_of: Callable[[ManualClock], StepPlan[Any]], take: int | None = None) -> tuple[Any, ...]:
    """Consume stream() and astream() (at most ``take`` events); assert identical records."""
    out = []
    for mode in ("sync", "async"):
        s = Streams(script())
        got: list[str] = []
        if mode == "sync":
            def consume_sync(s: Streams = s, got: list[str] = got) -> None:
                gen = stream(plan_of(s.clock), s.open, s.clock, interrupt)
                for event in gen:
                    got.append(event)
                    if take is not None and len(got) == take:
                        gen.close()
                        return
            res = outcome(consume_sync)
        else:
            async def consume(s: Streams = s, got: list[str] = got) -> None:
                gen = astream(plan_of(s.clock), s.aopen, s.clock, interrupt)
                async for event in gen:
                    got.append(event)
                    if take is not None and len(got) == take:
                        await gen.aclose()
                        return
            res = outcome(lambda: asyncio.run(consume()))
        out.append((res, got, s.log, s.closed))
    assert out[0] == out[1]
    return out[0]


def stream_retry(clock: ManualClock) -> StepPlan[Any]:
    return retry_plan(POLICY, Whole[None](), deadline=Deadline(None, clock), rng=random.Random(0),
                      name=lambda: "a:x", logger=LOG)


def stream_cascade(clock: ManualClock) -> StepPlan[Any]:
    return fallback_plan(2, Whole[None](), deadline=Deadline(None, clock), fallback_on=provider_failed,
                         name=lambda i: NAMES[i], logger=LOG)


def test_stream_retries_while_nothing_was_delivered() -> None:
    res, got, log, closed = stream_both(lambda: {0: [([], ServerError("1")), ([], ServerError("2")),
                                                     (["x", "y"], None)]}, stream_retry)
    assert res == ("ok", None)
    assert got == ["x", "y"]
    assert log == [("attempt", 0), ("sleep", 1.0), ("attempt", 0), ("sleep", 2.0), ("attempt", 0)]
    assert closed == [0, 0, 0]


def test_stream_falls_back_while_nothing_was_delivered() -> None:
    res, got, log, _ = stream_both(lambda: {0: [([], RateLimitError("r"))], 1: [(["b1", "b2"], None)]},
                                   stream_cascade)
    assert res == ("ok", None)
    assert got == ["b1", "b2"]
    assert log == [("attempt", 0), ("attempt", 1)]


@pytest.mark.parametrize("plan_of", [stream_retry, stream_cascade])
def test_stream_never_resends_after_a_delivered_event(plan_of: Callable[[ManualClock], StepPlan[Any]]) -> None:
    res, got, log, closed = stream_both(lambda: {0: [(["a1", "a2"], ServerError("cut")), (["again"], None)],
                                                 1: [(["b1"], None)]}, plan_of)
    assert res[:4] == ("raised", "Interrupted", "ServerError after 2", "ServerError")
    assert got == ["a1", "a2"]
    assert log == [("attempt", 0)]
    assert closed == [0]


@pytest.mark.parametrize("plan_of", [stream_retry, stream_cascade])
def test_stream_bug_after_delivery_propagates_as_is(plan_of: Callable[[ManualClock], StepPlan[Any]]) -> None:
    res, got, log, _ = stream_both(lambda: {0: [(["a1"], KeyError("bug"))], 1: [(["b1"], None)]}, plan_of)
    assert res[:2] == ("raised", "KeyError")
    assert got == ["a1"]
    assert log == [("attempt", 0)]


def test_stream_all_failed_before_delivery() -> None:
    res, got, log, closed = stream_both(lambda: {0: [([], ServerError("s"))], 1: [([], ServerError("t"))]},
                                        stream_cascade)
    assert res[:2] == ("raised", "AllProvidersFailedError")
    assert res[4] == ["ServerError", "ServerError"]
    assert got == []
    assert log == [("attempt", 0), ("attempt", 1)]
    assert closed == [0, 1]


def test_closing_the_stream_closes_the_attempt() -> None:
    res, got, _, closed = stream_both(lambda: {0: [(["a1", "a2", "a3"], None)]}, stream_cascade, take=1)
    assert res == ("ok", None)
    assert got == ["a1"]
    assert closed == [0]
