"""Small builders shared by the agent tests."""

from __future__ import annotations

from typing import Any

from aixpy.llm import ChatResponse, ToolCall, Usage


def calls(*items: tuple[str, str, dict[str, Any]], text: str = "", usage: Usage | None = None) -> ChatResponse:
    """A reply asking for tool calls ``(id, name, arguments)``."""
    return ChatResponse(text=text, tool_calls=[ToolCall(i, n, a) for i, n, a in items], finish_reason="tool_calls",
                        usage=usage)
