"""What an agent run gives back: :class:`RunResult` (with its :class:`Step` s and :class:`ToolResult` s),
the typed :data:`RunEvent` s of a streamed run, the run's :class:`Limits` and the :class:`RunContext`
a tool may ask for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from aixpy.llm.types import ChatResponse, Message, ToolCall, Usage

__all__ = [
    "FinalResult",
    "Limits",
    "RunContext",
    "RunEvent",
    "RunResult",
    "Step",
    "StepFinished",
    "TextDelta",
    "ToolCallStarted",
    "ToolResult",
    "ToolResultEvent",
]

Deps = TypeVar("Deps")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one run. Reaching one stops the run with a typed error carrying the partial result.

    * ``max_requests``: model calls per run (the guide's agents iterate; default 10).
    * ``max_tool_calls``: tool executions per run (``None``: unbounded).
    * ``max_total_tokens``: input + output tokens summed over the run's model calls.
    * ``max_cost_usd``: the run's cost (models with a known price only).
    * ``timeout``: seconds, ONE deadline over the whole run (every model call and tool shares it).
    * ``tool_timeout``: default seconds per tool call (a :class:`~aixpy.agents.Tool` may set its own);
      a call that takes longer is an error result the model sees.
    * ``max_tool_errors``: failed calls (bad arguments, an exception, a timeout) sent back to the model per
      tool before the run stops with :class:`~aixpy.errors.ToolRetriesExceededError`; a malformed ReAct
      reply counts as an error of the pseudo-tool ``react``.
    * ``output_retries``: how many times a final answer that fails the output type is sent back.
    """

    max_requests: int = 10
    max_tool_calls: int | None = None
    max_total_tokens: int | None = None
    max_cost_usd: float | None = None
    timeout: float | None = None
    tool_timeout: float | None = None
    max_tool_errors: int = 2
    output_retries: int = 1


@dataclass(slots=True)
class RunContext(Generic[Deps]):
    """Given to a tool whose first parameter is annotated ``RunContext``: the run's ``deps``, the
    ``usage`` so far, how many model ``requests`` were made, and the calling ``tool_call_id``."""

    deps: Deps
    usage: Usage
    requests: int
    tool_call_id: str = ""


@dataclass(slots=True)
class ToolResult:
    """The outcome of one tool call: ``content`` is what the model received (the value as text, or
    the error message when ``is_error``); ``value`` the tool's Python return value; ``replayed``
    when the call id had already run in this run and its recorded result was sent again."""

    call: ToolCall
    content: str
    value: Any = None
    is_error: bool = False
    duration_s: float = 0.0
    replayed: bool = False


@dataclass(slots=True)
class Step:
    """One model call and the tool calls it asked for (with their results)."""

    index: int
    response: ChatResponse
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)


@dataclass(slots=True)
class RunResult:
    """A whole run: the final ``text``, the parsed ``output`` (the text itself without an output
    type), every ``step``, ``usage`` summed over all model calls, ``cost_usd`` (``None`` when some
    call's price is unknown), wall time, and the conversation ``messages`` (to continue it)."""

    text: str = ""
    output: Any = None
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    wall_time_s: float = 0.0
    messages: list[Message] = field(default_factory=list)

    @property
    def requests(self) -> int:
        """Model calls made."""
        return len(self.steps)

    @property
    def tool_calls(self) -> int:
        """Tool calls executed (replays not counted)."""
        return sum(1 for s in self.steps for r in s.tool_results if not r.replayed)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the model's text, as it streams."""

    text: str
    step: int
    kind: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """A tool call is about to run."""

    call: ToolCall
    step: int
    kind: Literal["tool_call_started"] = "tool_call_started"


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    """A tool call finished (or failed: ``result.is_error``)."""

    result: ToolResult
    step: int
    kind: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step (one model call and its tool calls) is done."""

    step: Step
    kind: Literal["step_finished"] = "step_finished"


@dataclass(frozen=True, slots=True)
class FinalResult:
    """The run is done; always the last event."""

    result: RunResult
    kind: Literal["final_result"] = "final_result"


RunEvent: TypeAlias = TextDelta | ToolCallStarted | ToolResultEvent | StepFinished | FinalResult
"""One event of a streamed run, discriminated by ``kind``."""
