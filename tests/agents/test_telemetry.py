"""Agents emit their telemetry: one AgentRunEvent per run, one AgentStepEvent per step, one ToolCallEvent
per tool executed (never its arguments or result), the same from the sync and the async driver, and
nothing at all (no observer built) while nobody listens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from aixpy import telemetry
from aixpy.agents import Agent, Limits, _observe
from aixpy.errors import ServerError, UsageLimitExceededError
from aixpy.llm import ChatResponse, TestModel, Usage
from aixpy.telemetry import AgentRunEvent, AgentStepEvent, Event, ToolCallEvent

from ._scripts import calls

GPT = {"provider": "openai", "model": "gpt-4o-mini"}
STEP1_COST = 10 * 0.15e-6 + 5 * 0.6e-6
STEP2_COST = 20 * 0.15e-6 + 4 * 0.6e-6


def get_weather(city: str) -> str:
    """Current weather of a city."""
    return f"SECRET-RESULT sunny in {city}"


def explode(n: int) -> int:
    """Always fails."""
    raise ValueError("SECRET-ERROR-MESSAGE")


def scripted() -> TestModel:
    return TestModel(calls(("c1", "get_weather", {"city": "SECRET-ARG"}), ("c2", "explode", {"n": 1}),
                           usage=Usage(10, 5)),
                     ChatResponse(text="It is sunny.", usage=Usage(20, 4), finish_reason="stop"), **GPT)


@pytest.fixture
def events() -> Iterator[list[Event]]:
    got: list[Event] = []
    stop = telemetry.subscribe(got.append)
    yield got
    stop()


def strip(e: Event) -> Event:
    """The event without what varies between runs (times, the run id)."""
    out = replace(e, timestamp=0.0, duration=0.0)  # type: ignore[call-arg]
    return replace(out, run_id="") if hasattr(out, "run_id") else out  # type: ignore[call-arg]


def expected() -> list[Event]:
    tool = {"timestamp": 0.0, "duration": 0.0, "agent": "weather", "run_id": "", "step": 1}
    step = {"timestamp": 0.0, "duration": 0.0, "agent": "weather", "run_id": "", **GPT}
    return [
        ToolCallEvent(**tool, tool="get_weather", call_id="c1"),
        ToolCallEvent(**tool, tool="explode", call_id="c2", error="ValueError"),
        AgentStepEvent(**step, step=1, tool_calls=2, input_tokens=10, output_tokens=5, cost_usd=STEP1_COST),
        AgentStepEvent(**step, step=2, tool_calls=0, input_tokens=20, output_tokens=4,
                       cost_usd=pytest.approx(STEP2_COST)),
        AgentRunEvent(timestamp=0.0, duration=0.0, agent="weather", run_id="", stop_reason="final", steps=2,
                      tool_calls=2, input_tokens=30, output_tokens=9,
                      cost_usd=pytest.approx(STEP1_COST + STEP2_COST)),
    ]


def check(events: list[Event]) -> None:
    agent_events = [e for e in events if isinstance(e, (AgentRunEvent, AgentStepEvent, ToolCallEvent))]
    assert [strip(e) for e in agent_events] == expected()
    assert len({e.run_id for e in agent_events}) == 1  # type: ignore[attr-defined]
    run = agent_events[-1]
    assert all(run.timestamp <= e.timestamp and e.duration >= 0 for e in agent_events)
    assert run.duration >= max(e.duration for e in agent_events)
    for e in agent_events:                            # content never rides on an agent event
        text = repr(e) + repr(e.attributes()) + repr(e.labels())
        for secret in ("SECRET", "sunny", "What is"):
            assert secret not in text


def test_a_run_emits_tool_step_and_run_events_with_exact_fields(events: list[Event]) -> None:
    with Agent("weather", "", scripted(), tools=[get_weather, explode]) as agent:
        assert agent.run("What is the weather?").text == "It is sunny."
    check(events)


def test_the_async_driver_emits_the_same_events(events: list[Event]) -> None:
    async def main() -> None:
        agent = Agent("weather", "", scripted(), tools=[get_weather, explode])
        await agent.arun("What is the weather?")

    asyncio.run(main())
    check(events)


def test_a_streamed_run_emits_the_same_events(events: list[Event]) -> None:
    agent = Agent("weather", "", scripted(), tools=[get_weather, explode])
    list(agent.stream("What is the weather?"))
    check(events)


def test_a_run_stopped_by_a_limit_says_why(events: list[Event]) -> None:
    model = TestModel(calls(("c1", "get_weather", {"city": "x"})), default=None)
    agent = Agent("w", "", model, tools=[get_weather], limits=Limits(max_requests=1))
    with pytest.raises(UsageLimitExceededError):
        agent.run("go")
    run = [e for e in events if isinstance(e, AgentRunEvent)]
    assert [(r.stop_reason, r.error, r.steps, r.tool_calls) for r in run] == [
        ("max_requests", "UsageLimitExceededError", 1, 1)]
    assert run[0].input_tokens is None                 # the test model reported no usage: unknown, not 0


def test_a_failed_model_call_is_a_failed_step_and_run(events: list[Event]) -> None:
    agent = Agent("w", "", TestModel(ServerError("down", status_code=503), default=None))
    with pytest.raises(ServerError):
        agent.run("go")
    step, run = events
    assert isinstance(step, AgentStepEvent)
    assert isinstance(run, AgentRunEvent)
    assert (step.step, step.error) == (1, "ServerError")
    assert (run.stop_reason, run.error, run.steps) == ("error", "ServerError", 0)


def test_a_stream_the_caller_stops_reading_is_closed_not_failed(events: list[Event]) -> None:
    agent = Agent("w", "", scripted(), tools=[get_weather, explode])
    stream = agent.stream("What is the weather?")
    next(stream)
    stream.close()  # type: ignore[attr-defined]
    (run,) = [e for e in events if isinstance(e, AgentRunEvent)]
    assert (run.stop_reason, run.error) == ("closed", None)


def test_only_the_kinds_asked_for_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[Event] = []
    stop = telemetry.subscribe(got.append, kinds={ToolCallEvent.kind})
    try:
        Agent("weather", "", scripted(), tools=[get_weather, explode]).run("What is the weather?")
    finally:
        stop()
    assert [type(e) for e in got] == [ToolCallEvent, ToolCallEvent]


def test_nothing_is_built_while_nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Any] = []
    real = _observe.RunObserver

    def spy(agent: str) -> Any:
        built.append(agent)
        return real(agent)

    monkeypatch.setattr(_observe, "RunObserver", spy)
    Agent("weather", "", scripted(), tools=[get_weather, explode]).run("What is the weather?")
    stop = telemetry.subscribe(lambda e: None, kinds={"llm.call"})  # someone, but for other kinds
    try:
        Agent("weather", "", scripted(), tools=[get_weather, explode]).run("What is the weather?")
    finally:
        stop()
    assert built == []
    stop = telemetry.subscribe(lambda e: None, kinds={AgentRunEvent.kind})
    try:
        Agent("weather", "", scripted(), tools=[get_weather, explode]).run("What is the weather?")
    finally:
        stop()
    assert built == ["weather"]                        # the spy does see a listened run
