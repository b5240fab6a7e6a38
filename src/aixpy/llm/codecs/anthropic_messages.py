"""Codec for the Anthropic Messages wire format (``POST /v1/messages``). Pure, no I/O.

Request mapping
    * System messages (wherever they appear) are hoisted, in order, to the top-level ``system``:
      a string for one, a list of text blocks for several.
    * Tool results become ``tool_result`` blocks in a user turn; assistant tool calls become
      ``tool_use`` blocks. Consecutive turns of the same role are merged into one (the API needs
      alternation), with ``tool_result`` blocks first in a merged user turn, as the API requires.
      Empty text blocks are dropped (the API rejects them).
    * Images: bytes and ``data:`` URLs as ``base64`` sources, other URLs as ``url`` sources.
    * ``max_tokens`` is required by the API: :data:`DEFAULT_MAX_TOKENS` when unset. ``seed`` is not
      supported by Anthropic and is ignored.
    * Sampling: current Claude models (Sonnet/Haiku 4.5, Opus 4.1, Sonnet 4.6...) answer 400 to
      ``temperature`` and ``top_p`` together, so ``temperature`` is sent when set and ``top_p`` only
      without it. Models that removed sampling parameters (Opus 4.7 and later, every Claude 5 model,
      see :func:`accepts_sampling`) get neither; what was dropped is logged at debug level.
      ``req.extra`` still sends anything as given.

JSON mode — by a forced tool (not by prefill)
    A ``json_object``/``json_schema`` response format adds one tool whose ``input_schema`` is the
    schema (``{"type": "object"}`` for ``json_object``), named after the format (see
    :func:`json_tool_name`), and forces it with ``tool_choice`` when the request has no tools of
    its own (with user tools it is offered next to them and the requested ``tool_choice`` stands).
    The parsers turn that tool's input back into the reply *text* (compact JSON) with finish reason
    ``stop``, so callers see the same thing as OpenAI's JSON mode. Why not prefill (``{`` as a
    partial assistant turn): it does not enforce a schema, newer models refuse prefill, and it
    breaks with tools; a forced tool's input is always a JSON object. Pass the same
    ``json_tool`` name to :func:`parse_response` / :class:`StreamParser` (providers get it from
    :func:`json_tool_name`). A streamed JSON reply arrives as one text event when its block ends,
    so streamed and non-streamed texts are byte-identical.

Usage: ``input_tokens`` is normalized to include ``cache_read_input_tokens`` and
``cache_creation_input_tokens`` (Anthropic reports them apart). Thinking and server-tool blocks are
skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aixpy.errors import InvalidInputError, ResponseFormatError
from aixpy.llm.codecs import _common
from aixpy.llm.codecs._common import as_int, canonical_json, error_for_code, load_json, load_json_object
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    fold_stream,
    parse_tool_arguments,
    split_tool_choice,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_JSON_TOOL",
    "DEFAULT_MAX_TOKENS",
    "PROVIDER",
    "AnthropicMessagesAPI",
    "StreamParser",
    "accepts_sampling",
    "build_request",
    "headers",
    "json_tool_name",
    "parse_error",
    "parse_models",
    "parse_response",
    "parse_usage",
]

PROVIDER = "anthropic"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
DEFAULT_JSON_TOOL = "json_response"

logger = logging.getLogger("aixpy.llm")


def headers(api_key: str, *, beta: Sequence[str] = ()) -> dict[str, str]:
    """Request headers: ``x-api-key``, ``anthropic-version`` and, if given, ``anthropic-beta``."""
    out = {"x-api-key": api_key, "anthropic-version": API_VERSION, "content-type": "application/json"}
    if beta:
        out["anthropic-beta"] = ",".join(beta)
    return out


# --------------------------------------------------------------------------- request


def json_tool_name(req: ChatRequest) -> str | None:
    """Name of the synthetic JSON tool :func:`build_request` adds for ``req``, or ``None`` (no JSON mode)."""
    rf = req.response_format
    if rf is None or rf.type == "text":
        return None
    return rf.name if rf.type == "json_schema" and rf.name else DEFAULT_JSON_TOOL


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    inline = part.inline()
    if inline is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _blocks(m: UserMessage | AssistantMessage | ToolMessage) -> list[dict[str, Any]]:
    if isinstance(m, UserMessage):
        return [_part(p) for p in m.parts()]
    if isinstance(m, ToolMessage):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
        if m.is_error:
            block["is_error"] = True
        return [block]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
    return blocks


def _messages(req: ChatRequest) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in req.messages:
        if isinstance(m, SystemMessage):
            if m.content:
                system.append(m.content)
            continue
        role = "assistant" if isinstance(m, AssistantMessage) else "user"
        blocks = [b for b in _blocks(m) if not (b["type"] == "text" and not b["text"])]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user":  # tool_result blocks must lead a user turn
            content.sort(key=lambda b: b["type"] != "tool_result")
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    if not system:
        return None, turns
    if len(system) == 1:
        return system[0], turns
    return [{"type": "text", "text": s} for s in system], turns


def _tool(t: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "input_schema": t.parameters}
    if t.description:
        out["description"] = t.description
    return out


def _tool_choice(choice: str) -> dict[str, Any]:
    mode, name = split_tool_choice(choice)
    if mode == "tool":
        return {"type": "tool", "name": name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[mode]}


# "claude-opus-4-7", "claude-sonnet-5", "anthropic.claude-opus-4-7-v1:0", "claude-opus-4-7@20260416"...
# but not the "4-20250514" of "claude-sonnet-4-20250514" (a date, not a minor version).
_CLAUDE_VERSION = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:[-.](\d{1,2}))?(?!\d)")


def accepts_sampling(model: str) -> bool:
    """Whether Claude ``model`` still takes sampling parameters (``temperature``, ``top_p``, ``top_k``).

    Claude Opus 4.7 and later, and every Claude 5 model (Sonnet 5, Opus 5, Fable 5...), removed them
    and answer 400 to any. Model ids this does not recognise (older ``claude-3-5-sonnet-...`` names,
    unknown ones) are assumed to take them.
    """
    m = _CLAUDE_VERSION.search(model.lower())
    if m is None:
        return True
    family, major, minor = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if major >= 5:
        return False
    return not (family == "opus" and (major, minor) >= (4, 7))


def _sampling(req: ChatRequest) -> dict[str, float]:
    """``temperature`` or else ``top_p`` (never both), or nothing for a model without sampling."""
    given = {k: v for k, v in (("temperature", req.temperature), ("top_p", req.top_p)) if v is not None}
    if not given:
        return {}
    if not accepts_sampling(req.model):
        logger.debug("%s takes no sampling parameters; not sent: %s", req.model, given)
        return {}
    if len(given) > 1:
        logger.debug("%s takes temperature or top_p, not both; top_p=%s not sent", req.model, given["top_p"])
        return {"temperature": given["temperature"]}
    return given


def build_request(req: ChatRequest, *, stream: bool) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages`` for ``req`` (``req.extra`` merged last)."""
    system, turns = _messages(req)
    body: dict[str, Any] = {"model": req.model, "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS,
                            "messages": turns}
    if system is not None:
        body["system"] = system
    body.update(_sampling(req))
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    tools = [_tool(t) for t in req.tools]
    tool_choice = _tool_choice(req.tool_choice) if req.tools and req.tool_choice is not None else None
    json_tool = json_tool_name(req)
    if json_tool is not None:
        if any(t.name == json_tool for t in req.tools):
            raise InvalidInputError(f"a tool is named {json_tool!r}, like the response format; rename one")
        rf = req.response_format
        schema = rf.schema if rf is not None and rf.type == "json_schema" and rf.schema else {"type": "object"}
        tools.append({"name": json_tool, "input_schema": schema,
                      "description": "Give your final answer by calling this tool; its input is the answer."})
        if not req.tools:
            tool_choice = {"type": "tool", "name": json_tool}
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if stream:
        body["stream"] = True
    if req.extra:
        body.update(req.extra)
    return body


# --------------------------------------------------------------------------- responses


def parse_usage(usage: Any) -> Usage | None:
    """Normalize Anthropic ``usage`` (input includes cache reads and writes, see :mod:`aixpy.llm.types`)."""
    return _usage(usage) if isinstance(usage, dict) else None


def _usage(usage: dict[str, Any]) -> Usage:
    read = as_int(usage.get("cache_read_input_tokens"))
    create = as_int(usage.get("cache_creation_input_tokens"))
    return Usage(as_int(usage.get("input_tokens")) + read + create, as_int(usage.get("output_tokens")), read, create)


def _finish(stop_reason: str | None, *, json_answered: bool, has_calls: bool, model: str | None,
            rid: str | None) -> StreamEvent:
    reason: FinishReason | None = "stop" if json_answered and not has_calls and stop_reason == "tool_use" else None
    return StreamEvent.finish(stop_reason, reason=reason, model=model, response_id=rid)


def _raise_error_payload(data: dict[str, Any], provider: str) -> None:
    err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
    raise error_for_code(err.get("type"), str(err.get("message") or "stream error"), provider=provider,
                         body=canonical_json(data))


def _json_text(value: Any, tool: str, provider: str) -> str:
    if not isinstance(value, dict):
        raise ResponseFormatError(f"JSON answer {tool!r} is not an object", provider=provider)
    return canonical_json(value)


def parse_response(body: dict[str, Any] | bytes | str, *, json_tool: str | None = None,
                   provider: str = PROVIDER) -> ChatResponse:
    """Parse a non-streamed Messages body into a :class:`ChatResponse`.

    ``json_tool`` is the name from :func:`json_tool_name` when the request used JSON mode.
    """
    data = load_json_object(body, provider=provider)
    if data.get("type") == "error":
        _raise_error_payload(data, provider)
    model, rid = data.get("model") or None, data.get("id") or None
    content = data.get("content")
    if not isinstance(content, list):
        raise ResponseFormatError("message has no content list", provider=provider, body=canonical_json(data))
    events: list[StreamEvent] = []
    calls = 0
    json_answered = False
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and block.get("text"):
            events.append(StreamEvent.text_delta(block["text"], model=model, response_id=rid))
        elif kind == "tool_use" and json_tool is not None and block.get("name") == json_tool:
            events.append(StreamEvent.text_delta(_json_text(block.get("input"), json_tool, provider)))
            json_answered = True
        elif kind == "tool_use":
            args = block.get("input")
            events.append(StreamEvent.tool_call_delta(calls, id=block.get("id") or None, name=block.get("name"),
                                                      arguments=canonical_json(args) if args else ""))
            calls += 1
    usage = parse_usage(data.get("usage"))
    if usage is not None:
        events.append(StreamEvent.usage_update(usage))
    events.append(_finish(data.get("stop_reason"), json_answered=json_answered, has_calls=calls > 0,
                          model=model, rid=rid))
    return fold_stream(events, provider=provider)


@dataclass(slots=True)
class _Block:
    kind: str  # "text" | "tool" | "json" | "other"
    tool_index: int = -1
    start_input: Any = None
    got_delta: bool = False
    buffer: list[str] = field(default_factory=list)
    call_id: str | None = None


class StreamParser(_common.StreamParser):
    """Turns Anthropic SSE events into :class:`StreamEvent` s. Pure: no I/O, one instance per stream.

    Feed every event to :meth:`feed` (or its ``(event name, data)`` pair). Tool calls get a dense, stable
    ``index`` (0, 1, ...) however many text/thinking blocks come between them; their arguments
    come from ``input_json_delta`` fragments. Usage from ``message_start`` and ``message_delta`` is
    merged and emitted as cumulative snapshots. ``error`` events raise the matching ProviderError.
    ``done`` turns true on ``message_stop``.
    """

    __slots__ = ("_blocks", "_json_answered", "_next_tool", "_usage", "json_tool", "model", "response_id")

    def __init__(self, *, json_tool: str | None = None, provider: str = PROVIDER) -> None:
        super().__init__(provider)
        self.json_tool = json_tool
        self.model: str | None = None
        self.response_id: str | None = None
        self._blocks: dict[int, _Block] = {}
        self._next_tool = 0
        self._usage: dict[str, Any] = {}
        self._json_answered = False

    def feed(self, item: Any, data: str | bytes | dict[str, Any] | None = None) -> list[StreamEvent]:
        """Events for one SSE event: ``feed(sse)``, ``feed(data)`` or ``feed(event name, data)`` (the
        payload's ``type`` decides; the event name only stands in for a missing one)."""
        if data is None:
            event, data = getattr(item, "event", None), getattr(item, "data", item)
        else:
            event = item
        payload = load_json_object(data, provider=self.provider) if data not in ("", b"") else {}
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "content_block_start":
            return self._start(payload)
        if kind == "content_block_stop":
            return self._stop(payload)
        if kind == "message_start":
            message = payload.get("message") or {}
            self.model = message.get("model") or self.model
            self.response_id = message.get("id") or self.response_id
            return self._usage_event(message.get("usage"))
        if kind == "message_delta":
            out = self._usage_event(payload.get("usage"))
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self.finished = True
                out.append(_finish(delta.get("stop_reason"), json_answered=self._json_answered,
                                   has_calls=self._next_tool > 0, model=self.model, rid=self.response_id))
            return out
        if kind == "message_stop":
            self.done = True
        elif kind == "error":
            _raise_error_payload(payload, self.provider)
        return []  # ping and event types added later by Anthropic

    def _usage_event(self, usage: Any) -> list[StreamEvent]:
        if not isinstance(usage, dict):
            return []
        self._usage.update({k: v for k, v in usage.items() if v is not None})
        return [StreamEvent.usage_update(_usage(self._usage), model=self.model, response_id=self.response_id)]

    def _start(self, payload: dict[str, Any]) -> list[StreamEvent]:
        index = payload.get("index", len(self._blocks))
        block = payload.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _Block("text")
            text = block.get("text")
            return [StreamEvent.text_delta(text, model=self.model, response_id=self.response_id)] if text else []
        if kind == "tool_use" and self.json_tool is not None and block.get("name") == self.json_tool:
            self._blocks[index] = _Block("json", start_input=block.get("input"), call_id=block.get("id") or None)
            return []
        if kind == "tool_use":
            ordinal = self._next_tool
            self._next_tool += 1
            self._blocks[index] = _Block("tool", ordinal, block.get("input"))
            return [StreamEvent.tool_call_delta(ordinal, id=block.get("id") or None, name=block.get("name"),
                                                model=self.model, response_id=self.response_id)]
        self._blocks[index] = _Block("other")  # thinking, redacted_thinking, server tools...
        return []

    def _delta(self, payload: dict[str, Any]) -> list[StreamEvent]:
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        block = self._blocks.get(payload.get("index", -1))
        if kind == "text_delta":
            text = delta.get("text")
            if text and (block is None or block.kind == "text"):
                return [StreamEvent.text_delta(text, model=self.model, response_id=self.response_id)]
        elif kind == "input_json_delta" and block is not None:
            fragment = delta.get("partial_json") or ""
            block.got_delta = True
            if block.kind == "json":
                block.buffer.append(fragment)
            elif block.kind == "tool" and fragment:
                return [StreamEvent.tool_call_delta(block.tool_index, arguments=fragment, model=self.model,
                                                    response_id=self.response_id)]
        return []  # thinking_delta, signature_delta, citations_delta...

    def _stop(self, payload: dict[str, Any]) -> list[StreamEvent]:
        block = self._blocks.get(payload.get("index", -1))
        if block is None:
            return []
        if block.kind == "tool" and not block.got_delta and block.start_input:
            return [StreamEvent.tool_call_delta(block.tool_index, arguments=canonical_json(block.start_input),
                                                model=self.model, response_id=self.response_id)]
        if block.kind == "json":
            tool = self.json_tool or DEFAULT_JSON_TOOL
            raw = "".join(block.buffer) if block.got_delta else canonical_json(block.start_input or {})
            value = parse_tool_arguments(raw, name=tool, provider=self.provider, call_id=block.call_id)
            self._json_answered = True
            return [StreamEvent.text_delta(_json_text(value, tool, self.provider), model=self.model,
                                           response_id=self.response_id)]
        return []


# --------------------------------------------------------------------------- errors and models


def parse_error(status: int, body: dict[str, Any] | bytes | str | None) -> tuple[str, str | None]:
    """``(message, error type)`` from ``{"type": "error", "error": {"type", "message"}}``; text tolerated."""
    fallback = f"HTTP {status}"
    if body is None or body in (b"", ""):
        return fallback, None
    try:
        data = load_json(body, provider=PROVIDER)
    except ResponseFormatError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return (text.strip()[:500] or fallback), None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        kind = err.get("type")
        return str(err.get("message") or fallback), (str(kind) if kind else None)
    if isinstance(err, str):
        return err, None
    return fallback, None


def parse_models(body: dict[str, Any] | bytes | str) -> list[str]:
    """Model ids from ``GET /v1/models`` (``{"data": [{"id": ..., "type": "model"}], ...}``)."""
    data = load_json_object(body, provider=PROVIDER)
    items = data.get("data")
    if not isinstance(items, list):
        raise ResponseFormatError("model list has no 'data' array", provider=PROVIDER)
    return [item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)]


class AnthropicMessagesAPI(_common.WireAPI):
    """``POST {base}/v1/messages``; ``GET {base}/v1/models``. JSON mode through the forced tool."""

    exclusive_sampling = True

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        return _common.HttpCall("/v1/messages", build_request(req, stream=stream))

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return parse_response(body, json_tool=json_tool_name(req), provider=provider)

    def stream_parser(self, req: ChatRequest, *, provider: str) -> StreamParser:
        return StreamParser(json_tool=json_tool_name(req), provider=provider)

    def models_call(self) -> _common.HttpCall:
        return _common.HttpCall("/v1/models", method="GET", params={"limit": "1000"})

    def parse_models(self, body: bytes) -> list[str]:
        return parse_models(body)
