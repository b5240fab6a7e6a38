"""Agents that run: a model, instructions, tools, an optional output type and limits.

See :class:`Agent`. Layering: this package sits above :mod:`aixpy.llm` (and the embeddings,
vector-store and RAG layers); nothing below imports it, and it never builds a vendor's JSON (the LLM
layer's codecs do).
"""

from aixpy.agents.agent import Agent
from aixpy.agents.result import (
    FinalResult,
    Limits,
    RunContext,
    RunEvent,
    RunResult,
    Step,
    StepFinished,
    TextDelta,
    ToolCallStarted,
    ToolResult,
    ToolResultEvent,
)
from aixpy.agents.tools import Tool, tool

__all__ = [
    "Agent",
    "FinalResult",
    "Limits",
    "RunContext",
    "RunEvent",
    "RunResult",
    "Step",
    "StepFinished",
    "TextDelta",
    "Tool",
    "ToolCallStarted",
    "ToolResult",
    "ToolResultEvent",
    "tool",
]
