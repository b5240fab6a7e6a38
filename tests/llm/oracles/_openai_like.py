"""The OpenAI Chat Completions format as the official SDKs speak it (OpenAI, xAI, HuggingFace router).

:func:`sdk_kwargs` writes each logical call of :func:`~._oracle.scenario` the way a user of the
``openai`` SDK (or of ``huggingface_hub``'s OpenAI-compatible ``chat_completion``) writes it;
:func:`completion_outcome` and :func:`fold_chunks` read what the SDK parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aixpy.llm.codecs import openai_chat
from aixpy.llm.types import fold_stream

from ._oracle import (
    ASK_WEATHER,
    IMAGE_URL,
    PNG_B64,
    REPORT_SCHEMA,
    SYSTEM,
    TIME_PARAMS,
    TOOL_RESULT,
    WEATHER_PARAMS,
    Outcome,
    calls,
    finish,
    ours,
    sse_events,
)

OA_WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city.",
                                               "parameters": WEATHER_PARAMS}}
OA_TIME = {"type": "function", "function": {"name": "get_time", "description": "Local time of a timezone.",
                                            "parameters": TIME_PARAMS}}

FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter",
          "function_call": "tool_calls"}
"""OpenAI ``finish_reason`` -> ours (identity but for the legacy ``function_call``)."""


def sdk_kwargs(name: str) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for the logical call ``name``."""
    user_hi = [{"role": "user", "content": "Hi"}]
    if name == "plain":
        return {"messages": user_hi}
    if name == "system":
        return {"messages": [{"role": "system", "content": SYSTEM}, *user_hi]}
    if name == "multi_turn_tools":
        return {"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ASK_WEATHER},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": TOOL_RESULT},
        ], "tools": [OA_WEATHER]}
    if name.startswith("tools_"):
        choice: Any = name.removeprefix("tools_")
        if choice == "named":
            choice = {"type": "function", "function": {"name": "get_weather"}}
        return {"messages": [{"role": "user", "content": "Weather in Paris, and the time there?"}],
                "tools": [OA_WEATHER, OA_TIME], "tool_choice": choice}
    if name == "json_object":
        return {"messages": [{"role": "system", "content": "Answer in JSON."},
                             {"role": "user", "content": ASK_WEATHER}],
                "response_format": {"type": "json_object"}}
    if name == "json_schema":
        return {"messages": [{"role": "user", "content": ASK_WEATHER}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "weather_report",
                                                                          "schema": REPORT_SCHEMA, "strict": True}}}
    if name == "sampling":
        return {"messages": [{"role": "user", "content": "Count to five."}], "temperature": 0.3, "max_tokens": 64,
                "top_p": 0.9, "stop": ["\n\n", "END"], "seed": 42}
    if name == "image":
        return {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": IMAGE_URL}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        ]}]}
    raise KeyError(name)


@dataclass(frozen=True)
class Case:
    scenario: str
    reply: str
    stream: bool = False

    @property
    def id(self) -> str:
        return f"{self.scenario}-{'stream' if self.stream else 'json'}"


CASES = [  # the logical calls x the reply each one gets (fixtures shaped like OpenAI's docs)
    Case("plain", "openai_text.json"),
    Case("system", "openai_text.json"),
    Case("multi_turn_tools", "openai_text.json"),
    Case("tools_auto", "openai_tools.json"),
    Case("tools_required", "openai_tools.json"),
    Case("tools_named", "openai_tools.json"),
    Case("tools_none", "openai_text.json"),
    Case("json_object", "openai_json.json"),
    Case("json_schema", "openai_json.json"),
    Case("sampling", "openai_text.json"),
    Case("image", "openai_text.json"),
    Case("plain", "openai_text.sse", stream=True),
    Case("tools_auto", "openai_tools.sse", stream=True),
    Case("multi_turn_tools", "openai_text.sse", stream=True),
]


STREAM_KWARGS = {"stream_options": {"include_usage": True}}
"""Ours always asks for usage in streams; the SDK user does it explicitly (OpenAI's documented way)."""


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK object: an attribute (``openai`` models, ``huggingface_hub`` dataclasses, whose
    undeclared fields such as ``prompt_tokens_details`` stay plain dicts), else a dict key."""
    if obj is None:
        return None
    value = getattr(obj, name, None)
    if value is None and isinstance(obj, dict):
        value = obj.get(name)
    return value


def usage_tuple(usage: Any) -> tuple[int, int, int] | None:
    """SDK usage -> ours: input = ``prompt_tokens``; cached = ``prompt_tokens_details.cached_tokens``;
    output = ``completion_tokens``, plus ``reasoning_tokens`` when ``total_tokens`` shows they were
    counted outside it (xAI bills reasoning apart, docs.x.ai); otherwise reasoning is already inside."""
    if usage is None:
        return None
    prompt, completion = _get(usage, "prompt_tokens") or 0, _get(usage, "completion_tokens") or 0
    cached = _get(_get(usage, "prompt_tokens_details"), "cached_tokens") or 0
    reasoning = _get(_get(usage, "completion_tokens_details"), "reasoning_tokens") or 0
    if reasoning and _get(usage, "total_tokens") == prompt + completion + reasoning:
        completion += reasoning
    return prompt, completion, cached


def completion_outcome(completion: Any) -> Outcome:
    """A ``chat.completion`` as the SDK parsed it (``openai`` objects or ``huggingface_hub`` dataclasses)."""
    choice = _get(completion, "choices")[0]
    message = _get(choice, "message")
    tool_calls = calls((_get(tc, "id"), _get(_get(tc, "function"), "name"), _get(_get(tc, "function"), "arguments"))
                       for tc in _get(message, "tool_calls") or [])
    return Outcome(_get(message, "content") or "", tool_calls,
                   finish(_get(choice, "finish_reason"), FINISH, bool(tool_calls)),
                   usage_tuple(_get(completion, "usage")), _get(completion, "model"))


def fold_chunks(chunks: Iterable[Any]) -> Outcome:
    """Fold ``chat.completion.chunk`` s the SDK parsed (for SDKs without an accumulator of their own).

    Tool-call deltas are merged by their ``index``; id and name come with the first delta of an index.
    """
    text: list[str] = []
    parts: dict[int, list[Any]] = {}
    reason = usage = model = None
    for chunk in chunks:
        model = model or _get(chunk, "model")
        usage = _get(chunk, "usage") or usage
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta")
            text.append(_get(delta, "content") or "")
            for tc in _get(delta, "tool_calls") or []:
                fn = _get(tc, "function")
                slot = parts.setdefault(_get(tc, "index"), [None, None, ""])
                slot[0] = slot[0] or _get(tc, "id")
                slot[1] = slot[1] or _get(fn, "name")
                slot[2] += _get(fn, "arguments") or ""
            reason = _get(choice, "finish_reason") or reason
    tool_calls = calls((ident, name, args) for ident, name, args in (parts[i] for i in sorted(parts)))
    return Outcome("".join(text), tool_calls, finish(reason, FINISH, bool(tool_calls)), usage_tuple(usage), model)


def codec_outcome(raw: bytes, stream: bool) -> Outcome:
    """Our codec (pure functions) on the same reply bytes."""
    if not stream:
        return ours(openai_chat.parse_response(raw))
    return ours(fold_stream(e for _, data in sse_events(raw) for e in openai_chat.parse_stream_event(data)))
