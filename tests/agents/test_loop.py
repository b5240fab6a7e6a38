"""The agent loop on native tool calling, with scripted models: results back as tool messages, sync and
async parity, streamed events, concurrency, error results, run context."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from aixpy.agents import (
    Agent,
    FinalResult,
    Limits,
    RunContext,
    StepFinished,
    TextDelta,
    Tool,
    ToolCallStarted,
    ToolResultEvent,
)
from aixpy.errors import InvalidToolArgumentsError, ResponseFormatError, ToolRetriesExceededError
from aixpy.llm import ChatRequest, FunctionModel, TestModel, ToolMessage, Usage

from ._scripts import calls


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather of a city.

    Args:
        city: City name.
        unit: celsius or fahrenheit.
    """
    return f"18 {unit} in {city}"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def script() -> TestModel:
    return TestModel(calls(("c1", "get_weather", {"city": "Paris"}), ("c2", "add", {"a": 2, "b": "3"}),
                           usage=Usage(10, 5)),
                     "Paris: 18 celsius; 2 + 3 = 5")


def tool_messages(req: ChatRequest) -> list[ToolMessage]:
    return [m for m in req.messages if isinstance(m, ToolMessage)]


def test_every_call_runs_and_results_go_back_as_tool_messages() -> None:
    model = script()
    agent = Agent("a", "Be brief.", model, tools=[get_weather, add])
    result = agent.run("Weather in Paris, and 2+3?")
    assert result.text == result.output == "Paris: 18 celsius; 2 + 3 = 5"
    assert len(model.requests) == 2
    assert result.requests == 2
    first, second = model.requests
    assert [t.name for t in first.tools] == ["get_weather", "add"]
    assert first.tools[0].parameters["properties"]["city"]["description"] == "City name."
    assert first.messages[0].content == "Be brief."
    assert [(m.tool_call_id, m.name, m.content, m.is_error) for m in tool_messages(second)] == [
        ("c1", "get_weather", "18 celsius in Paris", False), ("c2", "add", "5", False)]
    step = result.steps[0]
    assert [c.id for c in step.tool_calls] == ["c1", "c2"]
    assert [r.value for r in step.tool_results] == ["18 celsius in Paris", 5]  # "3" validated into an int
    assert result.usage == Usage(10, 5) + result.steps[1].response.usage
    assert result.usage.output_tokens == 5 + 8  # words of the answer
    assert result.cost_usd is None  # the "test" model has no price
    assert result.wall_time_s > 0


def test_sync_and_async_runs_are_equal() -> None:
    sync = Agent("a", "Be brief.", script(), tools=[get_weather, add]).run("q")
    amodel = script()
    arun = asyncio.run(Agent("a", "Be brief.", amodel, tools=[get_weather, add]).arun("q"))
    strip = [(s.index, s.response.text, s.tool_calls, [(r.content, r.is_error) for r in s.tool_results])
             for s in sync.steps]
    assert strip == [(s.index, s.response.text, s.tool_calls, [(r.content, r.is_error) for r in s.tool_results])
                     for s in arun.steps]
    assert (sync.text, sync.usage, sync.messages) == (arun.text, arun.usage, arun.messages)


def kinds(events: list[Any]) -> list[str]:
    return [e.kind for e in events]


def test_stream_and_astream_yield_the_same_typed_events() -> None:
    events = list(Agent("a", "", script(), tools=[get_weather, add]).stream("q"))

    async def collect() -> list[Any]:
        return [e async for e in Agent("a", "", script(), tools=[get_weather, add]).astream("q")]

    aevents = asyncio.run(collect())
    want = ["tool_call_started", "tool_call_started", "tool_result", "tool_result", "step_finished",
            *["text_delta"] * 8, "step_finished", "final_result"]
    assert kinds(events) == kinds(aevents) == want
    assert isinstance(events[0], ToolCallStarted)
    assert events[0].call.id == "c1"
    assert isinstance(events[2], ToolResultEvent)
    assert events[2].result.content == "18 celsius in Paris"
    assert isinstance(events[4], StepFinished)
    assert events[4].step.index == 0
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris: 18 celsius; 2 + 3 = 5"
    final = events[-1]
    assert isinstance(final, FinalResult)
    assert final.result.text == "Paris: 18 celsius; 2 + 3 = 5"


async def test_two_calls_of_one_response_overlap_in_arun() -> None:
    """Each tool waits for the other to have started: run one after the other, the first would wait
    for ever (here: its 2-second timeout, an error result)."""
    started = {"a": asyncio.Event(), "b": asyncio.Event()}
    log: list[str] = []

    async def meet(me: str, other: str) -> str:
        """Wait for the other call."""
        log.append(f"start {me}")
        started[me].set()
        await asyncio.wait_for(started[other].wait(), 2)
        log.append(f"end {me}")
        return f"{me} met {other}"

    async def left() -> str:
        """One side."""
        return await meet("a", "b")

    async def right() -> str:
        """The other side."""
        return await meet("b", "a")

    model = TestModel(calls(("1", "left", {}), ("2", "right", {})), "done")
    result = await Agent("a", "", model, tools=[left, right]).arun("go")
    assert [r.content for r in result.steps[0].tool_results] == ["a met b", "b met a"]
    assert log[:2] == ["start a", "start b"]  # both started before either ended


async def test_sync_tools_run_in_threads_in_arun() -> None:
    barrier = threading.Barrier(2, timeout=2)

    def one() -> str:
        """Waits at the barrier."""
        barrier.wait()
        return "one"

    def two() -> str:
        """Waits at the barrier."""
        barrier.wait()
        return "two"

    model = TestModel(calls(("1", "one", {}), ("2", "two", {})), "done")
    result = await Agent("a", "", model, tools=[one, two]).arun("go")
    assert [r.content for r in result.steps[0].tool_results] == ["one", "two"]


def test_sync_run_executes_calls_in_order() -> None:
    order: list[str] = []

    def first() -> str:
        """First."""
        order.append("first")
        return "1"

    def second() -> str:
        """Second."""
        order.append("second")
        return "2"

    Agent("a", "", TestModel(calls(("1", "second", {}), ("2", "first", {})), "ok"),
          tools=[first, second]).run("go")
    assert order == ["second", "first"]


def test_run_context_carries_deps_and_usage_and_is_not_in_the_schema() -> None:
    seen: list[RunContext[dict[str, str]]] = []

    def whoami(ctx: RunContext[dict[str, str]], greeting: str) -> str:
        """Say who the user is."""
        seen.append(ctx)
        return f"{greeting}, {ctx.deps['user']}"

    model = TestModel(calls(("c", "whoami", {"greeting": "hi"}), usage=Usage(3, 4)), "done")
    result = Agent("a", "", model, tools=[whoami]).run("who?", deps={"user": "ada"})
    assert list(model.requests[0].tools[0].parameters["properties"]) == ["greeting"]
    assert result.steps[0].tool_results[0].content == "hi, ada"
    assert seen[0].usage == Usage(3, 4)
    assert seen[0].requests == 1
    assert seen[0].tool_call_id == "c"


async def test_async_tool_and_run_context_in_arun() -> None:
    async def lookup(ctx: RunContext[int], key: str) -> dict[str, Any]:
        """Look a key up."""
        await asyncio.sleep(0)
        return {"key": key, "tenant": ctx.deps}

    model = TestModel(calls(("c", "lookup", {"key": "k"})), "done")
    result = await Agent("a", "", model, tools=[lookup]).arun("?", deps=7)
    assert result.steps[0].tool_results[0].content == '{"key":"k","tenant":7}'
    assert tool_messages(model.requests[1])[0].content == '{"key":"k","tenant":7}'


def test_an_async_tool_runs_in_a_sync_run() -> None:
    async def ping() -> str:
        """Ping."""
        await asyncio.sleep(0)
        return "pong"

    result = Agent("a", "", TestModel(calls(("c", "ping", {})), "ok"), tools=[ping]).run("go")
    assert result.steps[0].tool_results[0].content == "pong"


# --------------------------------------------------------------------------- error results


def test_bad_arguments_and_exceptions_go_back_as_error_results_the_model_corrects() -> None:
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    model = TestModel(calls(("1", "divide", {"a": 1}), ("2", "divide", {"a": 1, "b": 0}),
                            ("3", "nope", {}), ("4", "divide", {"a": 1, "b": 2, "c": 3})),
                      calls(("5", "divide", {"a": 1, "b": 4})), "a quarter")
    agent = Agent("a", "", model, tools=[Tool(divide, max_errors=3)])
    result = agent.run("1/0?")
    errs = tool_messages(model.requests[1])
    assert [m.is_error for m in errs] == [True, True, True, True]
    assert "invalid arguments for tool 'divide': b: Field required" in errs[0].content
    assert "raised ZeroDivisionError" in errs[1].content
    assert "there is no tool 'nope'" in errs[2].content
    assert "c: Extra inputs are not permitted" in errs[3].content
    assert tool_messages(model.requests[2])[-1].content == "0.25"
    assert result.text == "a quarter"


def test_errors_are_bounded_per_tool_then_a_typed_error_with_the_partial_result() -> None:
    def flaky() -> str:
        """Always fails."""
        raise RuntimeError("down")

    model = TestModel(*[calls((f"c{i}", "flaky", {})) for i in range(5)], "never")
    with pytest.raises(ToolRetriesExceededError) as info:
        Agent("a", "", model, tools=[flaky], limits=Limits(max_tool_errors=2)).run("go")
    assert info.value.tool == "flaky"
    assert len(model.requests) == 3  # two errors went back; the third stopped the run
    partial = info.value.result
    assert partial.requests == 3
    assert all(s.tool_results[0].is_error for s in partial.steps)


def test_invalid_json_arguments_from_the_wire_go_back_to_the_model() -> None:
    """The codecs refuse a call whose arguments are not JSON (ResponseFormatError); the agent tells the
    model and asks again, bounded like any bad call of that tool."""
    from aixpy.llm import StreamEvent

    broken = [StreamEvent.tool_call_delta(0, id="c1", name="add", arguments='{"a": 1, "b":'),
              StreamEvent.finish("tool_calls")]
    model = TestModel(broken, calls(("c2", "add", {"a": 1, "b": 2})), "3")
    result = Agent("a", "", model, tools=[add]).run("1+2")
    assert result.text == "3"
    retry = model.requests[1].messages[-1]
    assert "tool call 'add' has invalid JSON arguments" in str(retry.content)
    assert result.steps[0].response.finish_reason == "error"

    with pytest.raises(ToolRetriesExceededError):
        Agent("a", "", TestModel(broken, broken, default=None), tools=[Tool(add, max_errors=1)]).run("1+2")


def test_bad_arguments_are_recognised_by_type_never_by_message() -> None:
    """The typed error (with its ``tool_name``) goes back to the model whatever its message says; a plain
    ResponseFormatError whose message merely looks like one propagates."""
    replies: list[Any] = [InvalidToolArgumentsError("garbled reply", tool_name="add", tool_call_id="c1"),
                          calls(("c2", "add", {"a": 1, "b": 2})), "3"]

    def answer(request: ChatRequest) -> Any:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    model = FunctionModel(answer)
    assert Agent("a", "", model, tools=[add]).run("1+2").text == "3"
    assert "garbled reply" in str(model.requests[1].messages[-1].content)

    def lookalike(request: ChatRequest) -> Any:
        raise ResponseFormatError("tool call 'add' has invalid JSON arguments: Expecting value")

    with pytest.raises(ResponseFormatError) as info:
        Agent("a", "", FunctionModel(lookalike), tools=[add]).run("1+2")
    assert not isinstance(info.value, InvalidToolArgumentsError)


def test_a_tool_over_its_timeout_is_an_error_result() -> None:
    def slow() -> str:
        """Slow."""
        time.sleep(0.5)
        return "late"

    model = TestModel(calls(("c", "slow", {})), "gave up")
    result = Agent("a", "", model, tools=[Tool(slow, timeout=0.05)]).run("go")
    assert "timed out after 0.05 s" in result.steps[0].tool_results[0].content
    assert result.steps[0].tool_results[0].is_error


async def test_an_async_tool_over_its_timeout_is_an_error_result() -> None:
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(5)
        return "late"

    model = TestModel(calls(("c", "slow", {})), "gave up")
    t0 = time.perf_counter()
    await Agent("a", "", model, tools=[slow], limits=Limits(tool_timeout=0.05)).arun("go")
    assert time.perf_counter() - t0 < 2
    assert "timed out after 0.05 s" in tool_messages(model.requests[1])[0].content


def test_a_function_model_sees_the_whole_conversation() -> None:
    def answer(req: ChatRequest) -> Any:
        results = tool_messages(req)
        if not results:
            return calls(("x", "add", {"a": 40, "b": 2}))
        return f"the answer is {results[0].content}"

    assert Agent("a", "", FunctionModel(answer), tools=[add]).run("?").text == "the answer is 42"
