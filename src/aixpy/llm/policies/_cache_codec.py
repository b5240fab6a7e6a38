"""What the LLM response cache stores and how it names it (no I/O).

Key
    ``"llm:v1:" + sha256(canonical JSON)`` of everything that changes the answer: the target (each
    provider, model, base URL and the provider's default temperature/max_tokens, down a fallback
    chain) and the whole :class:`~aixpy.llm.types.ChatRequest` — messages (typed: a system message is
    never a user message), tools, tool choice, response format (its schema included), temperature,
    top_p, max_tokens, stop, seed and ``extra``. Canonical JSON: sorted keys, no spaces, UTF-8, bytes
    as base64, every dataclass tagged with its type name.

Entry
    JSON: who served it (provider, model) and either the answer (a non-streamed call filled it) or the
    stream events in order (a streamed call filled it). A stream entry is replayed as the very same
    events; an answer entry is replayed as one text delta, one delta per tool call, ``usage`` and
    ``finish``. A chat call served from a stream entry folds its events, as every stream is folded.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from aixpy.llm.model import CallContext, ChatModel
from aixpy.llm.types import ChatRequest, ChatResponse, StreamAccumulator, StreamEvent, ToolCall, Usage

__all__ = ["KEY_VERSION", "Entry", "cache_key", "encode_events", "encode_response", "target_of"]

KEY_VERSION = "llm:v1"


_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}  # field names per dataclass type, read once


def _canon(obj: Any) -> Any:
    t = type(obj)
    if t in _SCALARS:
        return obj
    if t is list or t is tuple:
        return [_canon(v) for v in obj]
    if t is dict:
        return {str(k): _canon(v) for k, v in obj.items()}
    names = _FIELDS.get(t)
    if names is None and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS.setdefault(t, tuple(f.name for f in dataclasses.fields(obj)))
    if names is not None:
        out = {name: _canon(getattr(obj, name)) for name in names}
        out["~type"] = t.__name__
        return out
    return _canon_other(obj)


def _canon_other(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canon(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_canon(v) for v in obj]
    if isinstance(obj, bytes | bytearray):
        return {"~bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, str | int | float | bool):  # subclasses (enums...): their plain value
        return obj
    return {"~repr": repr(obj)}


def target_of(model: ChatModel, depth: int = 0) -> Any:
    """What answers a request sent to ``model``: its providers, models, endpoints and defaults."""
    models = getattr(model, "models", None)
    if isinstance(models, list | tuple) and depth < 16:
        return [target_of(m, depth + 1) for m in models]
    inner = getattr(model, "inner", None)
    if isinstance(inner, ChatModel) and depth < 16:
        return target_of(inner, depth + 1)
    return {"provider": model.provider, "model": model.model, "base_url": getattr(model, "base_url", None),
            "temperature": getattr(model, "temperature", None), "max_tokens": getattr(model, "max_tokens", None)}


def cache_key(target: Any, req: ChatRequest) -> str:
    """The cache key of ``req`` sent to ``target`` (see the module docstring)."""
    text = json.dumps({"target": target, "request": _canon(req)}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=True)
    return f"{KEY_VERSION}:{hashlib.sha256(text.encode()).hexdigest()}"


# --------------------------------------------------------------------------- entries

_USAGE_FIELDS = tuple(f.name for f in dataclasses.fields(Usage))
_EVENT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(StreamEvent)}


def _usage(u: Usage | None) -> list[int] | None:
    return None if u is None else [getattr(u, n) for n in _USAGE_FIELDS]


def _unusage(data: list[int] | None) -> Usage | None:
    return None if data is None else Usage(*data)


def _event(e: StreamEvent) -> dict[str, Any]:
    out = {n: v for n, d in _EVENT_DEFAULTS.items() if n != "usage" and (v := getattr(e, n)) != d}
    out["kind"] = e.kind
    if e.usage is not None:
        out["usage"] = _usage(e.usage)
    return out


def _unevent(d: dict[str, Any]) -> StreamEvent:
    usage = d.pop("usage", None)
    return StreamEvent(**d, usage=_unusage(usage))


def _dump(ctx: CallContext, body: dict[str, Any]) -> bytes:
    return json.dumps({"provider": ctx.provider, "model": ctx.model, **body}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def encode_response(resp: ChatResponse, ctx: CallContext) -> bytes:
    """The entry of a non-streamed answer (served by ``ctx.provider``/``ctx.model``)."""
    return _dump(ctx, {"response": {
        "text": resp.text, "finish_reason": resp.finish_reason, "usage": _usage(resp.usage), "model": resp.model,
        "id": resp.id, "raw_finish_reason": resp.raw_finish_reason,
        "tool_calls": [[t.id, t.name, t.arguments, t.raw_arguments, t.signature] for t in resp.tool_calls]}})


def encode_events(events: Iterable[StreamEvent], ctx: CallContext) -> bytes:
    """The entry of a streamed answer: its events in order."""
    return _dump(ctx, {"events": [_event(e) for e in events]})


class Entry:
    """A decoded cache entry (see the module docstring)."""

    __slots__ = ("_data", "model", "provider")

    def __init__(self, raw: bytes) -> None:
        data = json.loads(raw)
        self.provider: str = data.get("provider") or ""
        self.model: str = data.get("model") or ""
        self._data = data

    def serve(self, ctx: CallContext) -> None:
        """Mark ``ctx`` as answered from the cache, by the provider that filled it (no request made)."""
        ctx.cached = True
        ctx.provider, ctx.model = self.provider or ctx.provider, self.model or ctx.model

    def response(self) -> ChatResponse:
        r = self._data.get("response")
        if r is None:
            acc = StreamAccumulator()
            acc.extend(self.events())
            return acc.result()
        return ChatResponse(text=r["text"], finish_reason=r["finish_reason"], usage=_unusage(r["usage"]),
                            model=r["model"], id=r["id"], raw_finish_reason=r["raw_finish_reason"],
                            tool_calls=[ToolCall(*t) for t in r["tool_calls"]])

    def events(self) -> list[StreamEvent]:
        events = self._data.get("events")
        if events is not None:
            return [_unevent(dict(e)) for e in events]
        resp = self.response()
        model, rid = resp.model or None, resp.id
        out: list[StreamEvent] = []
        if resp.text:
            out.append(StreamEvent.text_delta(resp.text, model=model, response_id=rid))
        out += [StreamEvent.tool_call_delta(i, id=t.id, name=t.name, arguments=t.arguments_json, model=model,
                                            response_id=rid, signature=t.signature)
                for i, t in enumerate(resp.tool_calls)]
        out.append(StreamEvent("usage", usage=resp.usage, model=model, response_id=rid))
        out.append(StreamEvent.finish(resp.raw_finish_reason, reason=resp.finish_reason, model=model,
                                      response_id=rid))
        return out
