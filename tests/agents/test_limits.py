"""Run limits stop a run with a typed error carrying the partial result; a tool call id runs once."""

from __future__ import annotations

import pytest

from aixpy.agents import Agent, Limits
from aixpy.errors import AgentTimeoutError, ServerError, UsageLimitExceededError
from aixpy.llm import FallbackModel, ManualClock, RetryModel, RetryPolicy, TestModel, ToolMessage, Usage

from ._scripts import calls

COUNT: list[str] = []


def tick(n: int) -> str:
    """Count a call."""
    COUNT.append(str(n))
    return f"tick {n}"


def looping(n: int = 20, **kw: object) -> TestModel:
    return TestModel(*[calls((f"c{i}", "tick", {"n": i}), usage=Usage(100, 50)) for i in range(n)], "done", **kw)  # type: ignore[arg-type]


def test_max_requests_defaults_to_ten() -> None:
    model = looping()
    with pytest.raises(UsageLimitExceededError) as info:
        Agent("a", "", model, tools=[tick]).run("go")
    assert info.value.limit == "max_requests"
    assert len(model.requests) == 10
    assert info.value.result.requests == 10
    assert info.value.result.usage == Usage(1000, 500)
    assert info.value.result.steps[-1].tool_results[0].content == "tick 9"


@pytest.mark.parametrize(("limits", "limit", "requests"), [
    (Limits(max_tool_calls=3), "max_tool_calls", 4),
    (Limits(max_total_tokens=400), "max_total_tokens", 3),
])
def test_tool_call_and_token_limits(limits: Limits, limit: str, requests: int) -> None:
    model = looping()
    with pytest.raises(UsageLimitExceededError) as info:
        Agent("a", "", model, tools=[tick], limits=limits).run("go")
    assert info.value.limit == limit
    assert len(model.requests) == requests
    assert info.value.result.tool_calls == min(3, requests)


def test_cost_limit_on_a_priced_model() -> None:
    model = looping(model="gpt-4o-mini")
    with pytest.raises(UsageLimitExceededError) as info:
        Agent("a", "", model, tools=[tick], limits=Limits(max_cost_usd=0.00015)).run("go")
    partial = info.value.result
    assert info.value.limit == "max_cost_usd"
    assert partial.cost_usd == pytest.approx(sum(s.response.cost_usd for s in partial.steps))
    # each call: 100 in + 50 out at $0.15 / $0.60 per 1M = $0.000045; the 4th brings the run past the limit
    assert partial.cost_usd == pytest.approx(4 * 0.000045)
    assert partial.requests == 4


def test_one_deadline_over_the_whole_run_with_a_manual_clock() -> None:
    clock = ManualClock()

    def slow_tool() -> str:
        """Takes 4 s of the clock."""
        clock.advance(4)
        return "ok"

    model = TestModel(*[calls((f"c{i}", "slow_tool", {})) for i in range(5)], "done", clock=clock)
    with pytest.raises(AgentTimeoutError) as info:
        Agent("a", "", model, tools=[slow_tool], limits=Limits(timeout=10)).run("go")
    assert info.value.result.requests == 3  # 0 s, 4 s, 8 s; at 12 s the deadline has passed
    assert info.value.result.wall_time_s > 0


def test_the_run_deadline_reaches_the_model_call() -> None:
    """A model call that finds the run's deadline passed (here: the clock jumps inside a tool that the
    per-call check does not see) raises the agent timeout, not a provider one."""
    clock = ManualClock()
    model = TestModel(calls(("c", "t", {})), "never", clock=clock)

    def t() -> str:
        """Jump."""
        clock.advance(11)
        return "x"

    agent = Agent("a", "", model, tools=[t], limits=Limits(timeout=10), clock=clock)
    with pytest.raises(AgentTimeoutError):
        agent.run("go")


# --------------------------------------------------------------------------- never twice


def counting_tool() -> tuple[list[str], object]:
    ran: list[str] = []

    def book(seat: str) -> str:
        """Book a seat (a side effect: must not happen twice)."""
        ran.append(seat)
        return f"booked {seat}"

    return ran, book


def test_a_replayed_call_id_is_not_run_again() -> None:
    ran, book = counting_tool()
    model = TestModel(calls(("b1", "book", {"seat": "1A"})), calls(("b1", "book", {"seat": "1A"})), "done")
    result = Agent("a", "", model, tools=[book]).run("book 1A")  # type: ignore[list-item]
    assert ran == ["1A"]
    replay = result.steps[1].tool_results[0]
    assert replay.replayed
    assert replay.content == "booked 1A"
    assert result.tool_calls == 1


def test_never_twice_under_retry_model() -> None:
    ran, book = counting_tool()
    inner = TestModel(calls(("b1", "book", {"seat": "1A"})), ServerError("503", provider="test"),
                      calls(("b1", "book", {"seat": "1A"})), "done")
    model = RetryModel(inner, RetryPolicy(max_attempts=3, jitter=False), clock=ManualClock())
    result = Agent("a", "", model, tools=[book]).run("book")  # type: ignore[list-item]
    assert ran == ["1A"]
    assert len(inner.requests) == 4
    assert result.text == "done"
    # the retried request carried the same conversation, with the result once
    assert inner.requests[1].messages == inner.requests[2].messages
    assert sum(isinstance(m, ToolMessage) for m in inner.requests[3].messages) == 2


def test_never_twice_under_fallback_model() -> None:
    ran, book = counting_tool()
    down = ServerError("down", provider="p")
    primary = TestModel(calls(("b1", "book", {"seat": "1A"})), down, down, default=None)
    secondary = TestModel(calls(("b1", "book", {"seat": "1A"})), "done", provider="s")
    result = Agent("a", "", FallbackModel([primary, secondary]), tools=[book]).run("book")  # type: ignore[list-item]
    assert ran == ["1A"]
    assert result.steps[1].response.provider == "s"
    assert result.steps[1].tool_results[0].replayed


def test_a_synthesized_id_used_again_for_another_call_is_renamed_and_run() -> None:
    """Gemini and Ollama get ``call_0`` on every turn when the wire has no id."""
    ran, book = counting_tool()
    model = TestModel(calls(("call_0", "book", {"seat": "1A"})), calls(("call_0", "book", {"seat": "2B"})), "ok")
    result = Agent("a", "", model, tools=[book]).run("book two")  # type: ignore[list-item]
    assert ran == ["1A", "2B"]
    assert [s.tool_calls[0].id for s in result.steps[:2]] == ["call_0", "call_0~2"]
    last = model.requests[2].messages
    assert [m.tool_call_id for m in last if isinstance(m, ToolMessage)] == ["call_0", "call_0~2"]
