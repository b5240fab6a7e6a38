"""The agent loop, written once as a *plan* (see :mod:`aixpy._plans`): a generator that holds every
decision and yields the I/O it needs — :class:`CallModel`, :class:`RunTools` — plus the
:class:`Emit` s of run events. :mod:`aixpy.agents._drive` has the sync and the async driver; they only
do the I/O, so the sync and async runs cannot drift.

A tool call id runs at most once per run. A response that repeats an id already run with the same
name and arguments (a retry or a fallback provider answering the resent conversation again) gets the
recorded result back (``ToolResult.replayed``) without running the tool; a repeated id with different
name or arguments is a provider's synthesized id (``call_0`` on every turn: Gemini, Ollama) and is
renamed ``<id>~<n>`` so that results still pair with their calls.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from aixpy.agents import _react
from aixpy.agents._output import FINAL_TOOL, OutputSpec
from aixpy.agents.result import (
    RunContext,
    RunEvent,
    RunResult,
    Step,
    StepFinished,
    ToolCallStarted,
    ToolResult,
    ToolResultEvent,
)
from aixpy.agents.tools import Tool, result_text
from aixpy.errors import (
    AgentError,
    AgentTimeoutError,
    InvalidToolArgumentsError,
    OutputValidationError,
    ProviderTimeoutError,
    ToolRetriesExceededError,
    UsageLimitExceededError,
)
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from aixpy.policy.deadline import Deadline

if TYPE_CHECKING:
    from aixpy.agents.agent import Agent

__all__ = ["CallModel", "Emit", "PendingCall", "RunTools", "ToolOutcome", "plan"]


@dataclass(frozen=True, slots=True)
class CallModel:
    request: ChatRequest
    deadline: Deadline
    step: int


@dataclass(frozen=True, slots=True)
class PendingCall:
    tool: Tool
    call: ToolCall
    kwargs: dict[str, Any]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class RunTools:
    calls: list[PendingCall]
    context: RunContext[Any]


@dataclass(frozen=True, slots=True)
class Emit:
    event: RunEvent


@dataclass(slots=True)
class ToolOutcome:
    """What a driver reports for one call: the value, or the error text for the model (and the
    exception's type name, for telemetry); when it started (``time.perf_counter()``) and how long it took."""

    value: Any = None
    error: str | None = None
    duration_s: float = 0.0
    error_type: str | None = None
    started: float = 0.0


PlanStep: TypeAlias = CallModel | RunTools | Emit
Plan: TypeAlias = Generator[PlanStep, Any, RunResult]


@dataclass(slots=True)
class _Run:
    """The mutable state of one run."""

    agent: Agent[Any]
    deps: Any
    deadline: Deadline
    started: float
    result: RunResult
    spec: OutputSpec | None
    react: bool
    done: dict[str, ToolResult] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    output_errors: int = 0
    executed: int = 0

    @property
    def final_tool(self) -> bool:
        """The output comes through the final-result tool (no native structured output)."""
        return (self.spec is not None and not self.react and not self.agent.model.capabilities.json_schema
                and all(t.name != FINAL_TOOL for t in self.agent.tools))

    def stop(self, error: type[AgentError], message: str, **kw: Any) -> AgentError:
        self.result.wall_time_s = time.perf_counter() - self.started
        return error(message, result=self.result, **kw)

    def context(self) -> RunContext[Any]:
        return RunContext(self.deps, replace(self.result.usage), self.result.requests)


def plan(agent: Agent[Any], messages: list[Message], deps: Any) -> Plan:
    """The whole run; returns the :class:`RunResult` or raises an :class:`~aixpy.errors.AgentError`."""
    limits = agent.limits
    spec = OutputSpec.of(agent.output_type) if agent.output_type is not None else None
    run = _Run(agent, deps, Deadline.after(limits.timeout, agent.clock), time.perf_counter(),
               RunResult(messages=messages), spec, not agent.model.capabilities.tools)
    tools = {t.name: t for t in agent.tools}
    request, head = _request_template(run)
    while True:
        _check_before_call(run)
        index = run.result.requests
        resp = yield from _ask(run, replace(request, messages=[*head, *messages]), index, messages, tools)
        if resp is None:
            continue
        step = _record(run, resp, index)
        calls, answer = _react_turn(run, resp, tools, messages) if run.react else _native_turn(run, resp, messages)
        if answer is not None:  # a final answer to validate
            try:
                output = spec.validate_text(answer) if spec is not None else answer
            except ValueError as e:
                yield Emit(StepFinished(step))
                _output_error(run, e, messages)
                continue
            yield Emit(StepFinished(step))
            return _finish(run, answer, output)
        if not calls:  # a malformed ReAct reply, already answered with the error
            yield Emit(StepFinished(step))
            continue
        step.tool_calls = calls
        final = next((c for c in calls if run.final_tool and c.name == FINAL_TOOL), None)
        if final is not None and spec is not None:
            try:
                output = spec.validate_tool_args(final.arguments)
            except ValueError as e:
                final_error = ToolResult(final, f"error: {e}", is_error=True)
            else:
                messages.extend(ToolMessage("final result accepted" if c is final else
                                            "not run: the final result was given", c.id, c.name) for c in calls)
                yield Emit(StepFinished(step))
                return _finish(run, resp.text or json.dumps(final.arguments), output)
        results = yield from _run_calls(run, step, [c for c in calls if c is not final], tools)
        if final is not None:
            results.append(final_error)
        step.tool_results = results
        if run.react:
            messages.append(UserMessage(_react.observation(results[0].content)))
        else:
            by_id = {r.call.id: r for r in results}
            messages.extend(ToolMessage(by_id[c.id].content, c.id, c.name, by_id[c.id].is_error) for c in calls)
        yield Emit(StepFinished(step))
        if final is not None:
            _output_error(run, ValueError(final_error.content), None)
        for r in results:
            if r.is_error and not r.replayed and r.call is not final:
                _count_error(run, r.call.name, tools, None)


def _ask(run: _Run, request: ChatRequest, index: int, messages: list[Message],
         tools: dict[str, Tool]) -> Generator[PlanStep, Any, ChatResponse | None]:
    """One model call. ``None`` when its reply had a tool call with arguments that are not a JSON object
    (the codecs refuse those): the model is told, bounded like any bad tool call."""
    try:
        resp: ChatResponse = yield CallModel(request, run.deadline, index)
    except ProviderTimeoutError as e:
        if run.deadline.expired:
            raise run.stop(AgentTimeoutError, f"the run's timeout ({run.agent.limits.timeout} s) passed") from e
        raise
    except InvalidToolArgumentsError as e:
        model = run.agent.model
        run.result.steps.append(Step(index, ChatResponse(finish_reason="error", model=model.model,
                                                         provider=model.provider)))
        messages.append(UserMessage(f"Your last reply had a tool call with bad arguments ({e}). Call the tool "
                                    "again with one valid JSON object."))
        yield Emit(StepFinished(run.result.steps[-1]))
        _count_error(run, e.tool_name, tools, e)
        return None
    return resp


def _record(run: _Run, resp: ChatResponse, index: int) -> Step:
    result = run.result
    result.usage = result.usage + (resp.usage or Usage())
    if result.cost_usd is not None:
        result.cost_usd = None if resp.cost_usd is None else result.cost_usd + resp.cost_usd
    step = Step(index, resp)
    result.steps.append(step)
    return step


def _run_calls(run: _Run, step: Step, calls: list[ToolCall],
               tools: dict[str, Tool]) -> Generator[PlanStep, Any, list[ToolResult]]:
    """Validate, run (through the driver, as one batch) and record the calls of one step."""
    limits = run.agent.limits
    results: dict[str, ToolResult] = {}
    pending: list[PendingCall] = []
    for call in calls:
        seen = run.done.get(call.id)
        tool = tools.get(call.name)
        if seen is not None:  # this very call already ran in this run: never twice
            results[call.id] = replace(seen, replayed=True, duration_s=0.0)
        elif tool is None:
            results[call.id] = ToolResult(call, f"error: there is no tool {call.name!r}; the tools are "
                                                f"{sorted(tools)}", is_error=True)
        else:
            try:
                kwargs = tool.validate(call.arguments)
            except ValueError as e:
                results[call.id] = ToolResult(call, f"error: {e}", is_error=True)
                continue
            timeout = tool.timeout if tool.timeout is not None else limits.tool_timeout
            left = run.deadline.remaining()
            if left is not None:
                timeout = left if timeout is None else min(timeout, left)
            pending.append(PendingCall(tool, call, kwargs, timeout))
    if pending:
        if limits.max_tool_calls is not None and run.executed + len(pending) > limits.max_tool_calls:
            raise run.stop(UsageLimitExceededError, f"{len(pending)} more tool calls would pass the run's limit "
                           f"(max_tool_calls={limits.max_tool_calls}, {run.executed} made)", limit="max_tool_calls")
        if run.deadline.expired:
            raise run.stop(AgentTimeoutError, f"the run's timeout ({limits.timeout} s) passed")
        for p in pending:
            yield Emit(ToolCallStarted(p.call, step.index))
        run.executed += len(pending)
        outcomes: list[ToolOutcome] = yield RunTools(pending, run.context())
        for p, o in zip(pending, outcomes, strict=True):
            content = o.error if o.error is not None else result_text(o.value)
            results[p.call.id] = ToolResult(p.call, content, o.value, o.error is not None, o.duration_s)
    out = [results[c.id] for c in calls]
    for r in out:
        if not r.replayed:
            run.done[r.call.id] = r
        yield Emit(ToolResultEvent(r, step.index))
    return out


def _count_error(run: _Run, name: str, tools: dict[str, Tool], cause: BaseException | None) -> None:
    run.errors[name] += 1
    tool = tools.get(name)
    allowed = tool.max_errors if tool is not None and tool.max_errors is not None else run.agent.limits.max_tool_errors
    if run.errors[name] > allowed:
        raise run.stop(ToolRetriesExceededError, f"tool {name!r} failed {run.errors[name]} times in this run "
                       f"(max_tool_errors={allowed})", tool=name) from cause


def _output_error(run: _Run, error: ValueError, messages: list[Message] | None) -> None:
    """Send a rejected final answer back, or stop when no output retry is left."""
    run.output_errors += 1
    if run.output_errors > run.agent.limits.output_retries:
        raise run.stop(OutputValidationError, f"the final answer failed validation: {error}")
    if messages is None:  # the final tool's error result already went back
        return
    hint = f" Give it by calling the {FINAL_TOOL} tool." if run.final_tool else ""
    text = f"Your answer was not accepted: {error}. Try again.{hint}"
    messages.append(UserMessage(_react.observation(text) if run.react else text))


def _finish(run: _Run, text: str, output: Any) -> RunResult:
    result = run.result
    result.text, result.output = text, output
    result.wall_time_s = time.perf_counter() - run.started
    return result


def _request_template(run: _Run) -> tuple[ChatRequest, list[Message]]:
    """The request every step sends (its messages replaced per step) and the system message, if any."""
    agent, spec = run.agent, run.spec
    specs: list[ToolSpec] = [t.spec for t in agent.tools]
    system = agent.instructions
    response_format = None
    stop = None
    if run.react:
        system = "\n\n".join(x for x in (system, _react.instructions(specs, spec.schema if spec else None)) if x)
        specs, stop = [], list(_react.STOP)
    elif spec is not None:
        if agent.model.capabilities.json_schema:
            response_format = spec.response_format()
        else:
            specs.append(spec.final_tool())
    head: list[Message] = [SystemMessage(system)] if system else []
    template = ChatRequest(agent.model.model, [UserMessage("")], temperature=agent.temperature,
                           max_tokens=agent.max_tokens, tools=specs, response_format=response_format, stop=stop)
    return template, head


def start_messages(agent: Agent[Any], prompt: str | Sequence[Message], history: Sequence[Message]) -> list[Message]:
    """The conversation a run starts from (the system prompt is added per request, never stored)."""
    tail = [UserMessage(prompt)] if isinstance(prompt, str) else list(prompt)
    return [*(m for m in history if not isinstance(m, SystemMessage)), *tail]


def _check_before_call(run: _Run) -> None:
    limits, result = run.agent.limits, run.result
    if run.deadline.expired:
        raise run.stop(AgentTimeoutError, f"the run's timeout ({limits.timeout} s) passed")
    if result.requests >= limits.max_requests:
        raise run.stop(UsageLimitExceededError, f"the run made {result.requests} model requests, its limit "
                       "(max_requests) is reached", limit="max_requests")
    if limits.max_total_tokens is not None and result.usage.total_tokens >= limits.max_total_tokens:
        raise run.stop(UsageLimitExceededError, f"the run used {result.usage.total_tokens} tokens, its limit "
                       f"(max_total_tokens={limits.max_total_tokens}) is reached", limit="max_total_tokens")
    if limits.max_cost_usd is not None and result.cost_usd is not None and result.cost_usd >= limits.max_cost_usd:
        raise run.stop(UsageLimitExceededError, f"the run cost ${result.cost_usd:.6f}, its limit "
                       f"(max_cost_usd={limits.max_cost_usd}) is reached", limit="max_cost_usd")


def _native_turn(run: _Run, resp: ChatResponse, messages: list[Message]) -> tuple[list[ToolCall], str | None]:
    if not resp.tool_calls:
        messages.append(AssistantMessage(resp.text or None))
        return [], resp.text
    calls = []
    for call in resp.tool_calls:
        seen = run.done.get(call.id)
        if seen is not None and seen.call != call:  # a synthesized id used again for another call
            n = 2
            while f"{call.id}~{n}" in run.done:
                n += 1
            call = replace(call, id=f"{call.id}~{n}")
        calls.append(call)
    messages.append(AssistantMessage(resp.text or None, calls))
    return calls, None


def _react_turn(run: _Run, resp: ChatResponse, tools: dict[str, Tool],
                messages: list[Message]) -> tuple[list[ToolCall], str | None]:
    text = resp.text.strip()
    try:
        parsed = _react.parse(text, list(tools))
    except ValueError as e:
        messages.extend([AssistantMessage(text), UserMessage(_react.observation(f"error: {e}"))])
        _count_error(run, "react", tools, e)
        return [], None
    messages.append(AssistantMessage(text.removesuffix("Observation:").rstrip()))
    if isinstance(parsed, _react.ReactFinal):
        return [], parsed.answer
    return [ToolCall(f"react_{run.result.requests - 1}", parsed.tool, parsed.arguments,
                     json.dumps(parsed.arguments))], None
