"""Agents that run: a model, instructions, tools, an optional output type and limits.

See :class:`Agent`. Layering: this package sits above :mod:`aixpy.llm` (and the embeddings,
vector-store and RAG layers); nothing below imports it, and it never builds a vendor's JSON (the LLM
layer's codecs do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aixpy.agents.agent import Agent, Toolset
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

if TYPE_CHECKING:
    from aixpy.config.models import AixpyConfig

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
    "Toolset",
    "new",
    "tool",
]


def new(name: str, config: AixpyConfig, **kw: Any) -> Agent[Any]:
    """The agent called ``name`` in ``config``, built as :mod:`aixpy.agents.config` says."""
    from aixpy.agents.config import new as build

    return build(name, config, **kw)
