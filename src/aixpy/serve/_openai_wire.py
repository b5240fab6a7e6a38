"""The server side of the OpenAI wire, sans-IO: parse a request body, emit a response body or SSE chunks.

The mirror of :mod:`aixpy.llm.codecs.openai_chat` (which builds requests and parses responses for the
client side); ``tests/serve/test_wire.py`` checks that a :class:`~aixpy.llm.types.ChatRequest` built into a
body by that codec parses back to the same request here.

A request may carry only the fields listed in :data:`CHAT_FIELDS` / :data:`EMBEDDING_FIELDS`; anything
else is refused with a :class:`WireError` (400) before any model is looked up, and fields that would
point a provider elsewhere or authenticate it (``api_base``, ``base_url``, ``api_key``, ``extra_headers``...)
get their own message: no request can set a provider's URL, key or headers (CVE-2024-6587).
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aixpy.errors import AixpyError
from aixpy.llm.types import (
    AssistantMessage,
    ChatResponse,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    parse_tool_arguments,
)

__all__ = [
    "CHAT_FIELDS",
    "EMBEDDING_FIELDS",
    "ChatCall",
    "ChunkWriter",
    "EmbedCall",
    "WireError",
    "completion_body",
    "embeddings_body",
    "error_body",
    "models_body",
    "parse_chat",
    "parse_embeddings",
    "sse",
]

CHAT_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "tools",
    "tool_choice", "response_format", "stream", "stream_options", "n", "user",
})
EMBEDDING_FIELDS = frozenset({"model", "input", "encoding_format", "user"})
# Fields other gateways accept to re-point or re-key a provider: refused by name.
OVERRIDE_FIELDS = frozenset({
    "api_base", "base_url", "api_key", "api_version", "extra_headers", "headers", "endpoint", "organization",
    "aws_access_key_id", "aws_secret_access_key", "vertex_credentials", "custom_llm_provider", "azure_ad_token",
})

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


class WireError(Exception):
    """A request the server refuses: ``status``, and the OpenAI error fields ``type``, ``code``, ``param``."""

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.type, self.code, self.param = message, status, type, code, param


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``: the OpenAI error shape."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# --------------------------------------------------------------------------- requests


def _fields(body: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise WireError("the request body must be a JSON object")
    overrides = sorted(k for k in body if k in OVERRIDE_FIELDS)
    if overrides:
        raise WireError(f"field(s) {overrides} may not be set by a request: provider endpoints, keys and headers "
                        "come from the server's config only", code="forbidden_parameter", param=overrides[0])
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise WireError(f"unsupported parameter(s) {unknown[:5]}", code="unsupported_parameter", param=unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("'model' must be a non-empty string", param="model")
    return body


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) == len(content) and all(isinstance(t, str) for t in texts):
            return "".join(t for t in texts if isinstance(t, str))
    raise WireError(f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def _user_parts(content: Any, where: str) -> str | list[ContentPart]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise WireError(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    parts: list[ContentPart] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url" and isinstance(part.get("image_url"), dict) \
                and isinstance(part["image_url"].get("url"), str):
            parts.append(ImagePart.from_url(part["image_url"]["url"], detail=part["image_url"].get("detail")))
        else:
            raise WireError(f"{where}.content has an unsupported part (text and image_url only)",
                            param=f"{where}.content")
    return parts


def _tool_call(call: Any, where: str) -> ToolCall:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
        raise WireError(f"{where} must be {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}",
                        param=where)
    raw = fn.get("arguments") or ""
    if not isinstance(raw, str):
        raise WireError(f"{where}.function.arguments must be JSON text", param=where)
    try:
        arguments = parse_tool_arguments(raw, name=fn["name"])
    except AixpyError:
        raise WireError(f"{where}.function.arguments is not a JSON object", param=where) from None
    return ToolCall(call["id"], fn["name"], arguments, raw_arguments=raw)


def _message(m: Any, i: int) -> Message:
    where = f"messages[{i}]"
    role = m.get("role") if isinstance(m, dict) else None
    if role in ("system", "developer"):
        return SystemMessage(_text(m.get("content"), where))
    if role == "user":
        return UserMessage(_user_parts(m.get("content"), where))
    if role == "assistant":
        calls = m.get("tool_calls") or []
        if not isinstance(calls, list):
            raise WireError(f"{where}.tool_calls must be a list", param=f"{where}.tool_calls")
        content = m.get("content")
        return AssistantMessage(None if content is None else _text(content, where),
                                [_tool_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)])
    if role == "tool":
        if not isinstance(m.get("tool_call_id"), str):
            raise WireError(f"{where}.tool_call_id must be a string", param=f"{where}.tool_call_id")
        return ToolMessage(_text(m.get("content"), where), m["tool_call_id"])
    raise WireError(f"{where}.role must be system, developer, user, assistant or tool", param=f"{where}.role")


def _tool(t: Any, i: int) -> ToolSpec:
    fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise WireError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name', ...}}}}", param=f"tools[{i}]")
    params = fn.get("parameters", {"type": "object", "properties": {}})
    strict = fn.get("strict")
    if not isinstance(params, dict) or not isinstance(fn.get("description", ""), str) \
            or not isinstance(strict, bool | None):
        raise WireError(f"tools[{i}].function has a bad description, parameters or strict", param=f"tools[{i}]")
    return ToolSpec(fn["name"], fn.get("description") or "", params, strict)


def _tool_choice(choice: Any) -> str | None:
    if choice is None or choice in ("auto", "none", "required"):
        return choice  # type: ignore[no-any-return]
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str):
        return str(choice["function"]["name"])
    raise WireError("tool_choice must be auto, none, required or {'type': 'function', 'function': {'name'}}",
                    param="tool_choice")


def _response_format(rf: Any) -> ResponseFormat | None:
    kind = rf.get("type") if isinstance(rf, dict) else None
    if rf is None or kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat.json_object()
    spec = rf.get("json_schema") if kind == "json_schema" else None
    if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
        strict = spec.get("strict")
        return ResponseFormat("json_schema", str(spec.get("name") or "response"), spec["schema"],
                              strict if isinstance(strict, bool) else None)
    raise WireError("response_format must be text, json_object or json_schema with a schema",
                    param="response_format")


def _number(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise WireError(f"{name} must be a {'number' if kind is not int else 'integer'}", param=name)
    return value


@dataclass(slots=True)
class ChatCall:
    """A parsed ``POST /v1/chat/completions``: the model id asked for, the messages and chat options."""

    model: str
    messages: list[Message]
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def parse_chat(body: Any) -> ChatCall:
    """A chat completions request body -> :class:`ChatCall`; raises :class:`WireError` (400)."""
    body = _fields(body, CHAT_FIELDS)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("messages must be a non-empty list", param="messages")
    if body.get("n", 1) != 1:
        raise WireError("only n=1 is supported", param="n")
    options = _sampling(body)
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise WireError("tools must be a list", param="tools")
        options["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    if (choice := _tool_choice(body.get("tool_choice"))) is not None:
        options["tool_choice"] = choice
    if (rf := _response_format(body.get("response_format"))) is not None:
        options["response_format"] = rf
    stream = body.get("stream") or False
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(stream_options, dict):
        raise WireError("stream must be a boolean and stream_options an object", param="stream")
    return ChatCall(body["model"], [_message(m, i) for i, m in enumerate(messages)], options, stream,
                    bool(stream_options.get("include_usage")))


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if (value := _number(body, name, (int, float))) is not None:
            options[name] = float(value)
    for name in ("max_completion_tokens", "max_tokens"):
        if (value := _number(body, name, int)) is not None:
            if value <= 0:
                raise WireError(f"{name} must be positive", param=name)
            options.setdefault("max_tokens", value)
    if (seed := _number(body, "seed", int)) is not None:
        options["seed"] = seed
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise WireError("stop must be a string or a list of strings", param="stop")
        options["stop"] = stop
    return options


@dataclass(slots=True)
class EmbedCall:
    """A parsed ``POST /v1/embeddings``."""

    model: str
    texts: list[str]
    base64: bool = False


def parse_embeddings(body: Any) -> EmbedCall:
    """An embeddings request body -> :class:`EmbedCall` (text input only; token arrays are refused)."""
    body = _fields(body, EMBEDDING_FIELDS)
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise WireError("input must be a string or a non-empty list of strings (token arrays are not supported)",
                        param="input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise WireError("encoding_format must be float or base64", param="encoding_format")
    return EmbedCall(body["model"], texts, encoding == "base64")


# --------------------------------------------------------------------------- responses


def _usage(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def _call(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}


def completion_body(resp: ChatResponse, *, id: str, created: int, model: str) -> dict[str, Any]:
    """A ``chat.completion`` body for ``resp``; ``model`` is the id the client asked for."""
    message: dict[str, Any] = {"role": "assistant", "content": resp.text or None, "refusal": None}
    if resp.tool_calls:
        message["tool_calls"] = [_call(c) for c in resp.tool_calls]
    elif not resp.text:
        message["content"] = ""
    return {"id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _FINISH.get(resp.finish_reason, "stop")}],
            "usage": _usage(resp.usage)}


def sse(data: dict[str, Any] | str) -> bytes:
    """One SSE event: ``data: <json>\\n\\n``."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


class ChunkWriter:
    """Stream events -> ``chat.completion.chunk`` SSE events, one stream.

    :meth:`start` (the role chunk), :meth:`feed` per event, :meth:`end` (the finish chunk, the usage chunk
    when ``include_usage``, ``[DONE]``); :meth:`error` for a failure after the stream began.
    """

    __slots__ = ("_base", "_finish", "_include_usage", "_usage")

    def __init__(self, *, id: str, created: int, model: str, include_usage: bool) -> None:
        self._base = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._include_usage = include_usage
        self._usage: Usage | None = None
        self._finish: str | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**self._base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if self._include_usage:
            chunk["usage"] = None
        return sse(chunk)

    def start(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def feed(self, event: StreamEvent) -> bytes | None:
        if event.kind == "text":
            return self._chunk({"content": event.text}) if event.text else None
        if event.kind == "tool_call":
            call: dict[str, Any] = {"index": event.index, "function": {"arguments": event.arguments_delta}}
            if event.tool_call_id is not None or event.tool_name is not None:
                call["id"], call["type"] = event.tool_call_id or f"call_{event.index}", "function"
                call["function"]["name"] = event.tool_name or ""
            return self._chunk({"tool_calls": [call]})
        if event.kind == "usage":
            self._usage = event.usage
        elif event.kind == "finish":
            self._finish = _FINISH.get(event.finish_reason or "stop", "stop")
        return None

    def end(self) -> bytes:
        out = self._chunk({}, self._finish or "stop")
        if self._include_usage:
            out += sse({**self._base, "choices": [], "usage": _usage(self._usage or Usage())})
        return out + sse("[DONE]")

    @staticmethod
    def error(message: str, type: str, code: str | None = None) -> bytes:
        return sse(error_body(message, type, code)) + sse("[DONE]")


def embeddings_body(vectors: Sequence[Sequence[float]] | Any, *, model: str, tokens: int,
                    base64_floats: bool) -> dict[str, Any]:
    """An embeddings ``list`` body; with ``base64_floats`` each vector is little-endian float32, base64."""
    def encode(v: Sequence[float]) -> Any:
        if base64_floats:
            return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode("ascii")
        return [float(x) for x in v]

    return {"object": "list", "model": model,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def models_body(ids: Sequence[str], *, created: int = 0) -> dict[str, Any]:
    """``GET /v1/models``."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "aixpy"}
                                       for m in ids]}
