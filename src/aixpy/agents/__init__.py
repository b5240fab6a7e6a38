"""Agents that run: a model, instructions, tools, an optional output type and limits.

See :class:`Agent`. Also here: :func:`ask` / :class:`Asker` / :class:`AgenticAsker` (answers from the
indexed documents), :func:`retrieve_tool`, the session stores, :class:`MCPServer` and :func:`new` (an agent
of the config); those that pull the RAG layer or the MCP SDK are imported on first use.

Layering: this package sits above :mod:`aixpy.llm` (and the embeddings, vector-store and RAG layers);
nothing below imports it, and it never builds a vendor's JSON (the LLM layer's codecs do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aixpy._lazy import attach
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
from aixpy.agents.sessions import FileSessionStore, MemorySessionStore, RedisSessionStore, SessionStore
from aixpy.agents.tools import Tool, tool

if TYPE_CHECKING:
    from aixpy.agents.ask import AgenticAsker, Asker, ask
    from aixpy.agents.mcp import MCPServer
    from aixpy.agents.retrieval import retrieve_tool
    from aixpy.config.models import AixpyConfig

# The RAG-backed answerers and the MCP client are imported on first use (they pull aixpy.rag, the
# embeddings and vector-store layers, or the mcp SDK).
__getattr__, __dir__ = attach(__name__, attributes={
    ".ask": ("AgenticAsker", "Asker", "ask"),
    ".mcp": ("MCPServer",),
    ".retrieval": ("retrieve_tool",),
})

__all__ = [
    "Agent",
    "AgenticAsker",
    "Asker",
    "FileSessionStore",
    "FinalResult",
    "Limits",
    "MCPServer",
    "MemorySessionStore",
    "RedisSessionStore",
    "RunContext",
    "RunEvent",
    "RunResult",
    "SessionStore",
    "Step",
    "StepFinished",
    "TextDelta",
    "Tool",
    "ToolCallStarted",
    "ToolResult",
    "ToolResultEvent",
    "Toolset",
    "ask",
    "new",
    "retrieve_tool",
    "tool",
]


def new(name: str, config: AixpyConfig, **kw: Any) -> Agent[Any]:
    """The agent called ``name`` in ``config``, built as :mod:`aixpy.agents.config` says."""
    from aixpy.agents.config import new as build

    return build(name, config, **kw)
