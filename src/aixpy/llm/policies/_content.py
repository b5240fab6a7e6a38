"""The content of a call as GenAI semantic-convention JSON, for telemetry that explicitly asked for it
(:func:`aixpy.telemetry.capture_content`): ``gen_ai.input.messages`` and ``gen_ai.output.messages``."""

from __future__ import annotations

import json
from typing import Any

from aixpy.llm.types import AssistantMessage, ChatRequest, ChatResponse, ImagePart, Message, TextPart, ToolMessage

__all__ = ["content_of"]


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    out: list[dict[str, Any]] = []
    for part in content or ():
        if isinstance(part, TextPart):
            out.append({"type": "text", "content": part.text})
        elif isinstance(part, ImagePart):
            out.append({"type": "image"})  # never the bytes or the URL
    return out


def _message(m: Message) -> dict[str, Any]:
    if isinstance(m, ToolMessage):
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": m.tool_call_id,
                                           "response": m.content}]}
    parts = _parts(m.content)
    if isinstance(m, AssistantMessage):
        parts += [{"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    return {"role": m.role, "parts": parts}


def content_of(req: ChatRequest, resp: ChatResponse | None) -> tuple[str, str]:
    """``(input messages, output messages)`` as JSON texts (the output is ``[]`` when the call failed)."""
    inputs = json.dumps([_message(m) for m in req.messages], ensure_ascii=False, default=str)
    outputs: list[dict[str, Any]] = []
    if resp is not None:
        out = _message(resp.message)
        out["finish_reason"] = resp.finish_reason
        outputs.append(out)
    return inputs, json.dumps(outputs, ensure_ascii=False, default=str)
