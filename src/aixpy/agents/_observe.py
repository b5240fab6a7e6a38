"""The telemetry of an agent run: one :class:`~aixpy.telemetry.AgentRunEvent` per run, one
:class:`~aixpy.telemetry.AgentStepEvent` per step (model turn) and one
:class:`~aixpy.telemetry.ToolCallEvent` per tool executed.

Both drivers (:mod:`aixpy.agents._drive`) feed one :class:`RunObserver` the same way: the model calls
they make, the tool outcomes they get, the plan's events and how the run ended; the decisions about
what each event says live here once. A driver builds no observer (:func:`observer`) while nobody
listens to any of the three kinds: no clock read, no event built. Events carry names, counts, tokens,
cost, durations and error *types*: never a prompt, an answer, a tool's arguments or its result.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from aixpy.agents.result import RunEvent, RunResult, StepFinished
from aixpy.errors import (
    AgentError,
    AgentTimeoutError,
    OutputValidationError,
    ToolRetriesExceededError,
    UsageLimitExceededError,
)
from aixpy.telemetry import AgentRunEvent, AgentStepEvent, Timer, ToolCallEvent, emit, error_name, listening

if TYPE_CHECKING:
    from aixpy.agents._loop import RunTools, ToolOutcome

__all__ = ["KINDS", "SILENT", "RunObserver", "Silent", "observer"]

KINDS = (AgentRunEvent.kind, AgentStepEvent.kind, ToolCallEvent.kind)


def observer(agent: str | None) -> RunObserver | Silent:
    """A fresh observer for a run of ``agent``, or :data:`SILENT` when no event of an agent would reach
    anyone (nothing is built, no clock is read)."""
    if agent is None or not any(listening(None, k) for k in KINDS):
        return SILENT
    return RunObserver(agent)


def stop_reason(error: BaseException | None) -> str:
    """Why a run ended: ``final``, the limit reached (``max_requests``, ``max_tool_calls``, ...),
    ``timeout``, ``tool_errors``, ``output_validation``, ``closed`` (the caller stopped reading) or
    ``error`` (a model call failed)."""
    if error is None:
        return "final"
    if isinstance(error, UsageLimitExceededError):
        return error.limit
    if isinstance(error, GeneratorExit):
        return "closed"
    for cls, reason in ((AgentTimeoutError, "timeout"), (ToolRetriesExceededError, "tool_errors"),
                        (OutputValidationError, "output_validation")):
        if isinstance(error, cls):
            return reason
    return "error"


class Silent:
    """The observer of a run nobody listens to: every method does nothing."""

    def model_call(self, index: int) -> None:
        pass

    def model_failed(self, error: BaseException) -> None:
        pass

    def tools(self, step: RunTools, outcomes: list[ToolOutcome]) -> None:
        pass

    def event(self, event: RunEvent) -> None:
        pass

    def finished(self, result: RunResult | None, error: BaseException | None) -> None:
        pass


SILENT = Silent()


class RunObserver:
    """What one run emitted so far; the drivers call its methods, in this order per step:
    :meth:`model_call`, then :meth:`model_failed` or :meth:`tools` and :meth:`event` s, and
    :meth:`finished` once."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.run_id = uuid.uuid4().hex
        self.timer = Timer()
        self._step = 0                       # the current step, from 1
        self._step_started = 0.0             # perf_counter() at its model call
        self._step_error: str | None = None  # the error type of its model call, when it raised
        self._step_open = False              # a model call was made and its step event is not out yet

    def _wall(self, perf: float) -> float:
        return self.timer.timestamp + (perf - self.timer.started)

    def model_call(self, index: int) -> None:
        """The driver is about to make the model call of step ``index`` (from 0)."""
        self._step, self._step_started = index + 1, time.perf_counter()
        self._step_error, self._step_open = None, True

    def model_failed(self, error: BaseException) -> None:
        """That model call raised (the plan decides whether the run goes on)."""
        self._step_error = error_name(error)

    def tools(self, step: RunTools, outcomes: list[ToolOutcome]) -> None:
        """The tool calls of the current step ran (one event each, in the model's order)."""
        if not listening(None, ToolCallEvent.kind):
            return
        for p, o in zip(step.calls, outcomes, strict=True):
            emit(ToolCallEvent(timestamp=self._wall(o.started), duration=o.duration_s, error=o.error_type,
                               agent=self.agent, run_id=self.run_id, step=self._step, tool=p.tool.name,
                               call_id=p.call.id))

    def event(self, event: RunEvent) -> None:
        """An event of the plan went by; a finished step becomes an :class:`AgentStepEvent`."""
        if isinstance(event, StepFinished):
            self._step_open = False
            if listening(None, AgentStepEvent.kind):
                resp = event.step.response
                usage = resp.usage
                emit(AgentStepEvent(
                    timestamp=self._wall(self._step_started), duration=time.perf_counter() - self._step_started,
                    error=self._step_error, agent=self.agent, run_id=self.run_id, step=event.step.index + 1,
                    provider=resp.provider or None, model=resp.model or None, tool_calls=len(event.step.tool_calls),
                    input_tokens=None if usage is None else usage.input_tokens,
                    output_tokens=None if usage is None else usage.output_tokens, cost_usd=resp.cost_usd))

    def finished(self, result: RunResult | None, error: BaseException | None) -> None:
        """The run ended: with ``result``, or with ``error`` (its partial result when an agent error)."""
        if self._step_open and self._step_error is not None and listening(None, AgentStepEvent.kind):
            emit(AgentStepEvent(timestamp=self._wall(self._step_started),
                                duration=time.perf_counter() - self._step_started, error=self._step_error,
                                agent=self.agent, run_id=self.run_id, step=self._step))
        if not listening(None, AgentRunEvent.kind):
            return
        if result is None and isinstance(error, AgentError) and isinstance(error.result, RunResult):
            result = error.result
        reported = result is not None and any(s.response.usage is not None for s in result.steps)
        failed = error is not None and not isinstance(error, GeneratorExit)
        emit(AgentRunEvent(
            timestamp=self.timer.timestamp, duration=self.timer.elapsed(),
            error=error_name(error) if failed and error is not None else None, agent=self.agent, run_id=self.run_id,
            stop_reason=stop_reason(error), steps=result.requests if result is not None else 0,
            tool_calls=result.tool_calls if result is not None else 0,
            input_tokens=result.usage.input_tokens if reported and result is not None else None,
            output_tokens=result.usage.output_tokens if reported and result is not None else None,
            cost_usd=result.cost_usd if result is not None and result.steps else None))
