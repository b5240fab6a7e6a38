"""The requests both live test modules send, so the SDK tests and ours exercise the same things.

The model is a 270M *base* model: it does not follow instructions, so nothing here depends on what
it writes. Two server features make outcomes certain anyway:

* ``finish_reason: "length"`` — llama.cpp's ``ignore_eos`` body field makes it generate exactly
  ``max_tokens`` tokens.
* ``finish_reason: "stop"`` — a JSON schema response format is enforced by a grammar; once the
  object is complete only end-of-generation is allowed.
* ``finish_reason: "tool_calls"`` — a few-shot history in which the assistant already called the
  tool once; the model repeats the pattern, the server's lazy tool grammar takes over at
  ``<tool_call>`` and the stop sequence ``</tool_call>`` ends it (``tool_choice: "required"`` does
  not force a call on llama-server).
"""

from __future__ import annotations

import json
from typing import Any

SEED = 7
TOOL_STOP = ["</tool_call>"]
TOOL_NAME = "get_weather"
TOOL_DESCRIPTION = "Current weather in a city."
TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "Name of the city"}},
    "required": ["city"],
}
# grammar-enforced and short: the only possible answers are {"ok": true} and {"ok": false}
BOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
PROMPT = "Write one sentence about the sea."

_FIRST_Q = "What is the weather in Paris?"
_FIRST_ARGS = {"city": "Paris"}
_FIRST_RESULT = json.dumps({"city": "Paris", "temp_c": 18, "sky": "sunny"})
_FIRST_A = "It is 18 degrees and sunny in Paris."
NEXT_Q = "What is the weather in Berlin?"
FIRST_CALL_ID = "call_weather_1"

# --------------------------------------------------------------------------- OpenAI wire format

OPENAI_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_PARAMETERS},
}


def openai_tool_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": _FIRST_Q},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": FIRST_CALL_ID, "type": "function",
             "function": {"name": TOOL_NAME, "arguments": json.dumps(_FIRST_ARGS)}}]},
        {"role": "tool", "tool_call_id": FIRST_CALL_ID, "content": _FIRST_RESULT},
        {"role": "assistant", "content": _FIRST_A},
        {"role": "user", "content": NEXT_Q},
    ]


# --------------------------------------------------------------------------- Anthropic wire format

ANTHROPIC_TOOL: dict[str, Any] = {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_PARAMETERS}


def anthropic_tool_history() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": _FIRST_Q},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": FIRST_CALL_ID, "name": TOOL_NAME, "input": _FIRST_ARGS}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": FIRST_CALL_ID, "content": _FIRST_RESULT}]},
        {"role": "assistant", "content": _FIRST_A},
        {"role": "user", "content": NEXT_Q},
    ]


# --------------------------------------------------------------------------- aixpy types


def aixpy_tool_history() -> list[Any]:
    from aixpy.llm import AssistantMessage, ToolCall, ToolMessage, UserMessage

    return [
        UserMessage(_FIRST_Q),
        AssistantMessage(tool_calls=[ToolCall(FIRST_CALL_ID, TOOL_NAME, dict(_FIRST_ARGS))]),
        ToolMessage(_FIRST_RESULT, tool_call_id=FIRST_CALL_ID, name=TOOL_NAME),
        AssistantMessage(_FIRST_A),
        UserMessage(NEXT_Q),
    ]


def aixpy_tool() -> Any:
    from aixpy.llm import ToolSpec

    return ToolSpec(TOOL_NAME, TOOL_DESCRIPTION, TOOL_PARAMETERS)
