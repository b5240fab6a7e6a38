"""Codec for Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/tags``). Pure, no I/O.

Ollama also serves the OpenAI format under ``/v1`` (use :mod:`~aixpy.llm.codecs.openai_chat` there);
this codec speaks the native API, which streams NDJSON (one JSON object per line) and exposes
``options``, ``keep_alive`` and ``format`` directly. Both endpoints stream by default, so the body
always carries ``stream``.

Request mapping (:func:`build_request` for ``/api/chat``)
    * Messages keep their roles. Text parts of a user message are joined with a blank line; images
      go to the message's ``images`` list as bare base64 (bytes or ``data:`` URLs only: Ollama cannot
      fetch a URL and this codec does no I/O, so a remote URL raises InvalidInputError).
    * Assistant tool calls are sent back as ``tool_calls`` with ``function.arguments`` as an object;
      tool results as ``{"role": "tool", "content", "tool_name", "tool_call_id"}`` — the name from
      ``ToolMessage.name`` or the earlier assistant call with that id.
    * ``tools`` in the OpenAI function shape. Ollama has no ``tool_choice``: ``"none"`` sends no tools, a
      tool name sends only that tool, ``"auto"``/``"required"`` send them all (``required`` is not enforced).
    * ``format``: ``"json"`` for ``json_object``, the schema itself for ``json_schema``.
    * ``options``: ``temperature``, ``top_p``, ``num_predict`` (max_tokens), ``stop``, ``seed``.
    * ``req.extra``: keys Ollama reads as runtime options (``num_ctx``, ``top_k``, ``repeat_penalty``...,
      see :data:`OPTION_KEYS`) go into ``options``; an ``options`` dict is merged into it; anything else
      (``keep_alive``, ``think``, ``raw``, ``suffix``...) goes to the top level.

:func:`build_generate_request` builds ``/api/generate`` (``prompt``, ``system``, ``images``, same
``options``/``format``/``stream``) from system and user messages only.

Responses
    :class:`StreamParser` reads both endpoints' lines (``message.content`` or ``response`` deltas,
    ``message.thinking`` skipped). ``message.tool_calls`` arrive whole: one ``tool_call`` event each,
    ``canonical_json(arguments)``, a dense index counted across lines, and the call's ``id`` or
    ``call_{index}``. The ``done: true`` line carries usage (``prompt_eval_count`` -> input,
    ``eval_count`` -> output) and ``done_reason`` (``stop`` when absent, as older servers omit it); its
    durations (nanoseconds) are kept in :attr:`StreamParser.metrics`. :func:`parse_response` feeds a
    ``stream: false`` body (or a whole NDJSON stream) to the same parser. ``{"error": ...}`` lines raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aixpy.errors import InvalidInputError, ResponseFormatError
from aixpy.llm.codecs import _common
from aixpy.llm.codecs._common import as_int, canonical_json, error_for_code, load_json, load_json_object
from aixpy.llm.codecs.gemini import tool_call_names
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ImagePart,
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
    "CHAT_PATH",
    "DEFAULT_BASE_URL",
    "GENERATE_PATH",
    "OPTION_KEYS",
    "PROVIDER",
    "TAGS_PATH",
    "LocalModel",
    "OllamaAPI",
    "StreamParser",
    "build_generate_request",
    "build_request",
    "error_code",
    "parse_error",
    "parse_models",
    "parse_response",
    "parse_tags",
]

PROVIDER = "ollama"
DEFAULT_BASE_URL = "http://localhost:11434"
CHAT_PATH = "/api/chat"
GENERATE_PATH = "/api/generate"
TAGS_PATH = "/api/tags"

OPTION_KEYS = frozenset({
    "num_ctx", "num_keep", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n", "temperature",
    "repeat_penalty", "presence_penalty", "frequency_penalty", "mirostat", "mirostat_tau", "mirostat_eta",
    "penalize_newline", "stop", "seed", "numa", "num_batch", "num_gpu", "main_gpu", "low_vram", "vocab_only",
    "use_mmap", "use_mlock", "num_thread",
})
"""Keys of ``req.extra`` that go into ``options`` (Ollama's Modelfile runtime parameters)."""

_METRICS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")

# --------------------------------------------------------------------------- requests


def _images(parts: list[TextPart | ImagePart]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if isinstance(part, ImagePart):
            inline = part.inline()
            if inline is None:
                raise InvalidInputError("Ollama needs the image itself: pass ImagePart.from_bytes(...) or a data: URL, "
                                        f"not {part.url!r}")
            out.append(inline[1])
    return out


def _user(m: UserMessage) -> dict[str, Any]:
    parts = m.parts()
    out: dict[str, Any] = {"role": "user", "content": "\n\n".join(p.text for p in parts if isinstance(p, TextPart))}
    images = _images(parts)
    if images:
        out["images"] = images
    return out


def _message(m: Message, names: dict[str, str]) -> dict[str, Any]:
    if isinstance(m, SystemMessage):
        return {"role": "system", "content": m.content}
    if isinstance(m, UserMessage):
        return _user(m)
    if isinstance(m, AssistantMessage):
        out: dict[str, Any] = {"role": "assistant", "content": m.content or ""}
        if m.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"index": i, "name": c.name, "arguments": c.arguments}}
                                 for i, c in enumerate(m.tool_calls)]
        return out
    if not isinstance(m, ToolMessage):
        raise TypeError(f"not a message: {m!r}")  # unreachable: ChatRequest validates its messages
    tool: dict[str, Any] = {"role": "tool", "content": m.content}
    name = m.name or names.get(m.tool_call_id)
    if name:
        tool["tool_name"] = name
    if m.tool_call_id:
        tool["tool_call_id"] = m.tool_call_id
    return tool


def _tool(t: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name, "description": t.description, "parameters": t.parameters}
    if not t.description:
        del fn["description"]
    return {"type": "function", "function": fn}


def _tools(req: ChatRequest) -> list[dict[str, Any]]:
    if not req.tools:
        return []
    mode, name = split_tool_choice(req.tool_choice or "auto")
    if mode == "none":
        return []
    return [_tool(t) for t in req.tools if mode != "tool" or t.name == name]


def _finish_body(req: ChatRequest, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """Adds ``format``, ``options``, ``stream`` and ``extra`` to ``body``."""
    rf = req.response_format
    if rf is not None and rf.type == "json_object":
        body["format"] = "json"
    elif rf is not None and rf.type == "json_schema":
        body["format"] = rf.schema
    pairs = (("temperature", req.temperature), ("top_p", req.top_p), ("num_predict", req.max_tokens),
             ("stop", list(req.stop) if req.stop else None), ("seed", req.seed))
    options: dict[str, Any] = {key: value for key, value in pairs if value is not None}
    top: dict[str, Any] = {}
    for key, value in req.extra.items():
        if key == "options" and isinstance(value, dict):
            options.update(value)
        elif key in OPTION_KEYS:
            options[key] = value
        else:
            top[key] = value
    if options:
        body["options"] = options
    body["stream"] = stream
    body.update(top)
    return body


def build_request(req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /api/chat`` for ``req``."""
    names = tool_call_names(req.messages)
    body: dict[str, Any] = {"model": req.model, "messages": [_message(m, names) for m in req.messages]}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    return _finish_body(req, body, stream)


def build_generate_request(req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /api/generate``: user texts joined into ``prompt``, system texts into ``system``.

    Raises InvalidInputError for assistant or tool messages and for tools (use :func:`build_request`).
    """
    if req.tools:
        raise InvalidInputError("/api/generate has no tools; use the chat endpoint (build_request)")
    system: list[str] = []
    prompt: list[str] = []
    images: list[str] = []
    for m in req.messages:
        if isinstance(m, SystemMessage):
            system.append(m.content)
        elif isinstance(m, UserMessage):
            user = _user(m)
            prompt.append(user["content"])
            images.extend(user.get("images", []))
        else:
            raise InvalidInputError(f"/api/generate takes a prompt, not a {m.role} message; use the chat endpoint "
                                    "(build_request)")
    body: dict[str, Any] = {"model": req.model, "prompt": "\n\n".join(p for p in prompt if p)}
    if system:
        body["system"] = "\n\n".join(system)
    if images:
        body["images"] = images
    return _finish_body(req, body, stream)


# --------------------------------------------------------------------------- responses


class StreamParser(_common.StreamParser):
    """Turns NDJSON lines of ``/api/chat`` or ``/api/generate`` into :class:`StreamEvent` s.

    One instance per stream; feed each line to :meth:`feed`. ``done`` turns true on the last line,
    whose durations (nanoseconds: ``total_duration``, ``load_duration``, ``prompt_eval_duration``,
    ``eval_duration``) land in :attr:`metrics`.
    """

    __slots__ = ("_next_tool", "metrics", "model")

    def __init__(self, *, provider: str = PROVIDER) -> None:
        super().__init__(provider)
        self.model: str | None = None
        self.metrics: dict[str, int] = {}
        self._next_tool = 0

    def feed(self, item: Any) -> list[StreamEvent]:
        line: str | bytes | dict[str, Any] = item
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        if isinstance(line, str) and not line.strip():
            return []
        data = load_json_object(line, provider=self.provider)
        if "error" in data:
            error = str(data["error"])
            raise error_for_code(error_code(error), error, provider=self.provider, model=self.model,
                                 body=canonical_json(data))
        self.model = self.model or data.get("model") or None
        message: dict[str, Any] = data["message"] if isinstance(data.get("message"), dict) else {}
        events: list[StreamEvent] = []
        text = message.get("content") if message else data.get("response")
        if isinstance(text, str) and text:
            events.append(StreamEvent.text_delta(text, model=self.model))
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                events.append(self._call(call))
        if data.get("done"):
            self.done = self.finished = True
            self.metrics = {k: as_int(data[k]) for k in _METRICS if k in data}
            if "prompt_eval_count" in data or "eval_count" in data:
                usage = Usage(as_int(data.get("prompt_eval_count")), as_int(data.get("eval_count")))
                events.append(StreamEvent.usage_update(usage, model=self.model))
            events.append(StreamEvent.finish(data.get("done_reason") or "stop", model=self.model))
        return events

    def _call(self, call: dict[str, Any]) -> StreamEvent:
        index = self._next_tool
        self._next_tool += 1
        fn: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
        args = fn.get("arguments")
        text = args if isinstance(args, str) else canonical_json(args) if args is not None else ""
        return StreamEvent.tool_call_delta(index, id=call.get("id") or f"call_{index}", name=fn.get("name"),
                                           arguments=text, model=self.model)


def parse_response(body: dict[str, Any] | bytes | str, *, provider: str = PROVIDER) -> ChatResponse:
    """Parse a ``stream: false`` reply of ``/api/chat`` or ``/api/generate`` (an NDJSON stream is accepted too).

    Raises ResponseFormatError for invalid JSON; an ``error`` body raises the matching ProviderError.
    """
    parser = StreamParser(provider=provider)
    try:
        lines: list[Any] = [load_json_object(body, provider=provider)]
    except ResponseFormatError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        if not isinstance(text, str) or text.count("\n") < 1:
            raise
        lines = [line for line in text.splitlines() if line.strip()]
    events = [e for line in lines for e in parser.feed(line)]
    return fold_stream(events, provider=provider)


# --------------------------------------------------------------------------- errors and models

_NOT_FOUND = re.compile(r"model .*not found|no such model|file does not exist", re.IGNORECASE)


def error_code(message: str) -> str | None:
    """A code :func:`~aixpy.llm.codecs._common.error_for_code` understands, guessed from Ollama's text.

    ``model "x" not found, try pulling it first`` -> ``model_not_found``; ``server busy`` -> ``overloaded``;
    ``... does not support tools`` / ``invalid ...`` -> ``invalid_request``; unknown -> ``None``.
    """
    lowered = message.lower()
    if _NOT_FOUND.search(message):
        return "model_not_found"
    if "server busy" in lowered or "maximum pending requests" in lowered:
        return "overloaded"
    if "does not support" in lowered or lowered.startswith("invalid") or "context length" in lowered:
        return "invalid_request"
    if "unauthorized" in lowered:
        return "unauthorized"
    return None


def parse_error(status: int, body: dict[str, Any] | bytes | str | None) -> tuple[str, str | None]:
    """``(message, code)`` from ``{"error": "..."}`` (code from :func:`error_code`); plain text tolerated."""
    fallback = f"HTTP {status}"
    if body is None or body in (b"", ""):
        return fallback, None
    try:
        data = load_json(body, provider=PROVIDER)
    except ResponseFormatError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        message = text.strip()[:500] or fallback
        return message, error_code(message)
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, str) and err:
        return err, error_code(err)
    return fallback, None


@dataclass(frozen=True, slots=True)
class LocalModel:
    """One model of ``GET /api/tags``: its name (``llama3.2:latest``), size in bytes and details."""

    name: str
    size: int = 0
    digest: str = ""
    modified_at: str = ""
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""


def parse_tags(body: dict[str, Any] | bytes | str) -> list[LocalModel]:
    """The local models listed by ``GET /api/tags`` (``{"models": [{"name", "size", "details"...}]}``)."""
    data = load_json_object(body, provider=PROVIDER)
    items = data.get("models")
    if not isinstance(items, list):
        raise ResponseFormatError("model list has no 'models' array", provider=PROVIDER)
    out: list[LocalModel] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name = item.get("name") or item.get("model")
        if not isinstance(name, str):
            continue
        details: dict[str, Any] = item["details"] if isinstance(item.get("details"), dict) else {}
        out.append(LocalModel(name, as_int(item.get("size")), str(item.get("digest") or ""),
                              str(item.get("modified_at") or ""), str(details.get("family") or ""),
                              str(details.get("parameter_size") or ""), str(details.get("quantization_level") or "")))
    return out


def parse_models(body: dict[str, Any] | bytes | str) -> list[str]:
    """Model names from ``GET /api/tags``."""
    return [m.name for m in parse_tags(body)]


class OllamaAPI(_common.WireAPI):
    """``POST {base}/api/chat`` (NDJSON when streamed); ``GET {base}/api/tags``."""

    framing = "ndjson"

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        return _common.HttpCall(CHAT_PATH, build_request(req, stream=stream))

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return parse_response(body, provider=provider)

    def stream_parser(self, req: ChatRequest, *, provider: str) -> StreamParser:
        return StreamParser(provider=provider)

    def models_call(self) -> _common.HttpCall:
        return _common.HttpCall(TAGS_PATH, method="GET")

    def parse_models(self, body: bytes) -> list[str]:
        return parse_models(body)
