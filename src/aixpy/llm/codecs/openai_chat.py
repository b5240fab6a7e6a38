"""Codec for the OpenAI Chat Completions wire format (``POST {base}/chat/completions``).

Pure functions, no I/O. The same format is spoken by OpenAI, xAI, the HuggingFace router, vLLM, TGI,
llama.cpp's server and Ollama's ``/v1``; the parsers tolerate their small differences:

* missing or ``null`` ``usage`` (-> ``usage=None``), ``content: null``, content given as a list of
  parts, extra fields (llama.cpp's ``timings``, vLLM's ``reasoning_content``, Azure's filter results);
* a usage-only final stream chunk with ``choices: []``, ``null`` or no ``choices`` at all;
* tool-call deltas that repeat ``id``/``name`` or send them as ``""`` after the first delta, and
  ``arguments`` sent as an object instead of JSON text; a missing ``index`` falls back to the
  delta's position (only then);
* xAI counting reasoning tokens outside ``completion_tokens`` (detected from ``total_tokens``);
* the legacy ``function_call`` field.

Only the first choice (``index`` 0) is read; ``n > 1`` is not supported. A ``refusal`` is reported
as the reply text when there is no content. Tool messages are sent without ``name`` (not part of
the format; ``is_error`` has no equivalent either).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aixpy.errors import ResponseFormatError
from aixpy.llm.codecs import _common
from aixpy.llm.codecs._common import as_int, canonical_json, error_for_code, load_json, load_json_object
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ContentPart,
    Message,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    fold_stream,
    split_tool_choice,
)

__all__ = [
    "PROVIDER",
    "OpenAIChatAPI",
    "StreamParser",
    "build_request",
    "max_tokens_field",
    "parse_error",
    "parse_models",
    "parse_response",
    "parse_stream_event",
    "parse_stream_payload",
    "parse_usage",
]

PROVIDER = "openai"

# o1, o3, o4-mini, gpt-5... reject ``max_tokens``; everything else (and every compatible server) knows it.
_MAX_COMPLETION_MODELS = re.compile(r"^(o\d|gpt-5)")


def max_tokens_field(model: str) -> str:
    """``"max_completion_tokens"`` for OpenAI reasoning models (o-series, gpt-5), else ``"max_tokens"``.

    An org prefix such as ``openai/o3-mini`` (HF router, OpenRouter) is ignored.
    """
    name = model.rsplit("/", 1)[-1].lower()
    return "max_completion_tokens" if _MAX_COMPLETION_MODELS.match(name) else "max_tokens"


# --------------------------------------------------------------------------- request


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.as_url()}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _message(m: Message) -> dict[str, Any]:
    if isinstance(m, SystemMessage):
        return {"role": "system", "content": m.content}
    if isinstance(m, UserMessage):
        content = m.content if isinstance(m.content, str) else [_part(p) for p in m.content]
        return {"role": "user", "content": content}
    if isinstance(m, AssistantMessage):
        out: dict[str, Any] = {"role": "assistant", "content": m.content}
        if m.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments_json}} for c in m.tool_calls]
        elif m.content is None:
            out["content"] = ""  # several compatible servers reject a null content without tool calls
        return out
    if isinstance(m, ToolMessage):
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    raise TypeError(f"not a message: {m!r}")  # unreachable: ChatRequest validates its messages


def _tool(t: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": t.parameters}
    if not t.description:
        del fn["description"]
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def build_request(req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``req``.

    With ``stream=True`` it always asks for usage (``stream_options.include_usage``), so streamed
    calls report tokens like non-streamed ones. ``req.extra`` is merged last.
    """
    body: dict[str, Any] = {"model": req.model, "messages": [_message(m) for m in req.messages]}
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.max_tokens is not None:
        body[max_tokens_field(req.model)] = req.max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    if req.seed is not None:
        body["seed"] = req.seed
    if req.tools:
        body["tools"] = [_tool(t) for t in req.tools]
        if req.tool_choice is not None:
            mode, name = split_tool_choice(req.tool_choice)
            body["tool_choice"] = {"type": "function", "function": {"name": name}} if mode == "tool" else mode
    rf = req.response_format
    if rf is not None and rf.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif rf is not None and rf.type == "json_schema":
        schema: dict[str, Any] = {"name": rf.name, "schema": rf.schema}
        if rf.strict is not None:
            schema["strict"] = rf.strict
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if req.extra:
        if "max_tokens" in req.extra or "max_completion_tokens" in req.extra:
            body.pop("max_tokens", None)
            body.pop("max_completion_tokens", None)
        body.update(req.extra)
    return body


# --------------------------------------------------------------------------- responses


def parse_usage(usage: Any) -> Usage | None:
    """Normalize an OpenAI-style ``usage`` object (see the Usage contract in :mod:`aixpy.llm.types`)."""
    if not isinstance(usage, dict):
        return None
    prompt = as_int(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = as_int(usage.get("completion_tokens", usage.get("output_tokens")))
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = as_int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = as_int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    output = completion
    if reasoning and usage.get("total_tokens") == prompt + completion + reasoning:
        output = completion + reasoning  # xAI: reasoning is billed outside completion_tokens
    return Usage(prompt, output, cached, 0, reasoning)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with a list of parts
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return canonical_json(arguments)  # some servers send an object


def _raise_body_error(data: dict[str, Any], provider: str) -> None:
    err = data.get("error")
    if err is None:
        return
    if isinstance(err, dict):
        code = err.get("code") or err.get("type")
        message = str(err.get("message") or err)
    else:
        code, message = data.get("error_type"), str(err)
    raise error_for_code(str(code) if code is not None else None, message, provider=provider,
                         model=data.get("model"), body=canonical_json(data))


def parse_response(body: dict[str, Any] | bytes | str, *, provider: str = PROVIDER) -> ChatResponse:
    """Parse a non-streamed ``chat.completion`` body into a :class:`ChatResponse`.

    Raises ResponseFormatError for invalid JSON, no choices, or tool arguments that are not JSON;
    a body carrying an ``error`` object raises the matching ProviderError.
    """
    data = load_json_object(body, provider=provider)
    choices = data.get("choices")
    if not choices:
        _raise_body_error(data, provider)
        raise ResponseFormatError("response has no choices", provider=provider, body=canonical_json(data))
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    model, rid = data.get("model") or None, data.get("id") or None
    events: list[StreamEvent] = []
    text = _text_of(message.get("content")) or _text_of(message.get("refusal"))
    if text:
        events.append(StreamEvent.text_delta(text, model=model, response_id=rid))
    calls = message.get("tool_calls") or []
    if not calls and isinstance(message.get("function_call"), dict):
        calls = [{"function": message["function_call"]}]
    for i, call in enumerate(calls):
        fn = call.get("function") or {}
        events.append(StreamEvent.tool_call_delta(i, id=call.get("id") or None, name=fn.get("name") or None,
                                                  arguments=_arguments_text(fn.get("arguments"))))
    usage = parse_usage(data.get("usage"))
    if usage is not None:
        events.append(StreamEvent.usage_update(usage))
    events.append(StreamEvent.finish(choice.get("finish_reason"), model=model, response_id=rid))
    return fold_stream(events, provider=provider)


def parse_stream_event(data: str | bytes, *, provider: str = PROVIDER) -> list[StreamEvent]:
    """Parse one SSE ``data:`` payload of a streamed call into zero or more :class:`StreamEvent` s.

    ``[DONE]`` and empty payloads give ``[]``. Tool-call deltas keep the API's ``index``; the
    usage-only last chunk gives a ``usage`` event. An ``error`` payload raises a ProviderError.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    data = data.strip()
    if not data or data == "[DONE]":
        return []
    return parse_stream_payload(data, provider)


def parse_stream_payload(data: str, provider: str) -> list[StreamEvent]:
    """:func:`parse_stream_event` for a payload already stripped and known not to be empty or ``[DONE]``
    (the stream decoder checks that itself, once per event)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if chunk.__class__ is not dict:  # load_json_object raises its usual error for these
        chunk = load_json_object(data, provider=provider)
    choices = chunk.get("choices") or []
    if not choices:
        _raise_body_error(chunk, provider)
    model, rid = chunk.get("model") or None, chunk.get("id") or None
    events: list[StreamEvent] = []
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or choice.get("message") or {}
        content = delta.get("content")
        text = content if content.__class__ is str else _text_of(content)  # the common case first
        if not text:
            text = _text_of(delta.get("refusal"))
        if text:
            events.append(StreamEvent("text", text, model=model, response_id=rid))
        calls = delta.get("tool_calls") or []
        if not calls and isinstance(delta.get("function_call"), dict):
            calls = [{"index": 0, "function": delta["function_call"]}]
        for position, call in enumerate(calls):
            index = call.get("index")
            fn = call.get("function") or {}
            events.append(StreamEvent.tool_call_delta(
                index if isinstance(index, int) else position, id=call.get("id") or None,
                name=fn.get("name") or None, arguments=_arguments_text(fn.get("arguments")),
                model=model, response_id=rid))
        if choice.get("finish_reason"):
            events.append(StreamEvent.finish(choice["finish_reason"], model=model, response_id=rid))
    raw_usage = chunk.get("usage")
    if raw_usage is not None:  # parse_usage(None) is None: skip the call on every content chunk
        usage = parse_usage(raw_usage)
        if usage is not None:
            events.append(StreamEvent.usage_update(usage, model=model, response_id=rid))
    return events


class StreamParser(_common.StreamParser):
    """:func:`parse_stream_event` for one stream: ``done`` turns true on ``[DONE]``."""

    __slots__ = ()

    def __init__(self, *, provider: str = PROVIDER) -> None:
        super().__init__(provider)

    def feed(self, item: Any) -> list[StreamEvent]:
        data = getattr(item, "data", item)
        if data.__class__ is not str:
            events = parse_stream_event(data, provider=self.provider)
        else:  # strip and check once (parse_stream_event would do both again)
            text = data.strip()
            if text == "[DONE]":
                self.done = True
                return []
            events = parse_stream_payload(text, self.provider) if text else []
        return self._noting_finish(events)


# --------------------------------------------------------------------------- errors and models


def parse_error(status: int, body: dict[str, Any] | bytes | str | None) -> tuple[str, str | None]:
    """``(message, code)`` from an error response of any OpenAI-compatible server.

    Understands ``{"error": {"message", "type", "code"}}`` (OpenAI, xAI, vLLM), ``{"error": "...",
    "error_type": ...}`` (TGI), ``{"detail": ...}`` (FastAPI servers), ``{"message": ...}`` and plain
    text. ``code`` is the API's ``code`` or ``type`` when given.
    """
    fallback = f"HTTP {status}"
    if body is None or body in (b"", ""):
        return fallback, None
    try:
        data = load_json(body, provider=PROVIDER)
    except ResponseFormatError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return (text.strip()[:500] or fallback), None
    if not isinstance(data, dict):
        return fallback, None
    err = data.get("error")
    if isinstance(err, dict):
        code = err.get("code") or err.get("type")
        return str(err.get("message") or fallback), (str(code) if code is not None else None)
    if isinstance(err, str):
        code = data.get("error_type") or data.get("type") or data.get("code")
        return err, (str(code) if code is not None else None)
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list):  # FastAPI validation errors
        msgs = [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail]
        return "; ".join(msgs) or fallback, None
    if isinstance(data.get("message"), str):
        code = data.get("code") or data.get("type")
        return data["message"], (str(code) if code is not None else None)
    return fallback, None


def parse_models(body: dict[str, Any] | bytes | str) -> list[str]:
    """Model ids from ``GET /models`` (``{"object": "list", "data": [{"id": ...}]}``)."""
    data = load_json(body, provider=PROVIDER)
    items = data.get("data", data.get("models", [])) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ResponseFormatError("model list has no 'data' array", provider=PROVIDER)
    ids: list[str] = []
    for item in items:
        if isinstance(item, dict):
            ident = item.get("id") or item.get("name") or item.get("model")
            if isinstance(ident, str):
                ids.append(ident)
        elif isinstance(item, str):
            ids.append(item)
    return ids


class OpenAIChatAPI(_common.WireAPI):
    """``POST {base}/chat/completions``; ``GET {base}/models``.

    ``stream_usage=False`` drops ``stream_options`` for old servers that reject it (streams from
    them then end with a ``usage`` event carrying ``None``).
    """

    def __init__(self, *, path: str = "/chat/completions", models_path: str = "/models",
                 stream_usage: bool = True) -> None:
        self.path = path
        self.models_path = models_path
        self.stream_usage = stream_usage

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        body = build_request(req, stream=stream)
        if stream and not self.stream_usage:
            body.pop("stream_options", None)
        return _common.HttpCall(self.path, body)

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return parse_response(body, provider=provider)

    def stream_parser(self, req: ChatRequest, *, provider: str) -> StreamParser:
        return StreamParser(provider=provider)

    def models_call(self) -> _common.HttpCall:
        return _common.HttpCall(self.models_path, method="GET")

    def parse_models(self, body: bytes) -> list[str]:
        return parse_models(body)
