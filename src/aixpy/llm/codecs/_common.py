"""What every codec shares (no I/O): the stream parser shape, the API adapter base a provider plugs
into :class:`~aixpy.llm._http.HttpChatModel`, and small JSON and error helpers."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aixpy.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    UserError,
)
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["HttpCall", "StreamParser", "WireAPI", "as_int", "canonical_json", "error_for_code", "load_json",
           "load_json_object"]


class StreamParser(ABC):
    """Turns one streamed reply into :class:`StreamEvent` s, whatever its framing. Pure; one per stream.

    :meth:`feed` takes one item as the reader got it: a server-sent event (anything with a ``data``
    attribute, e.g. ``httpx_sse.ServerSentEvent``) or just its data, or one NDJSON line (text, bytes or
    an already decoded object). ``done`` turns true on the format's end marker (``[DONE]``,
    ``message_stop``, ``"done": true``), so the reader can stop; formats without one end at EOF.
    :meth:`end` is called once the input is over and gives the events still owed.
    """

    __slots__ = ("done", "finished", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False
        self.finished = False
        """A finish event was returned."""

    @abstractmethod
    def feed(self, item: Any) -> list[StreamEvent]:
        """The events for one stream item (an SSE event or its data, or an NDJSON line)."""

    def _noting_finish(self, events: list[StreamEvent]) -> list[StreamEvent]:
        if not self.finished:
            for event in events:  # (a loop: any() over a generator costs more for these 1-2 events)
                if event.kind == "finish":
                    self.finished = True
        return events

    def end(self) -> list[StreamEvent]:
        """The input is over. A stream that reached its end marker without a finish reason is complete:
        it finishes with ``"other"``. (Cut short, it owes nothing: the reader reports the cut.)"""
        return [StreamEvent.finish(None)] if self.done and not self.finished else []


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One request to make, relative to the provider's base URL (``path`` may carry a query)."""

    path: str
    json: Any = None
    method: str = "POST"
    params: Mapping[str, str] | None = None


class WireAPI(ABC):
    """One wire format as seen by a provider: where to send a request and how to read the answer.

    Each codec module has its own (xAI, the HuggingFace router and vLLM all use
    :class:`~aixpy.llm.codecs.openai_chat.OpenAIChatAPI`); a provider adds auth and a base URL.
    Everything here is pure; :class:`~aixpy.llm._http.HttpChatModel` does the I/O.
    """

    framing: ClassVar[Literal["sse", "ndjson"]] = "sse"
    exclusive_sampling: ClassVar[bool] = False
    """The API takes ``temperature`` or ``top_p``, not both (the codec sends ``temperature`` when a
    request has both): a request's own ``top_p`` then keeps a provider's default ``temperature`` out."""

    @abstractmethod
    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        """The request for ``req``."""

    @abstractmethod
    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        """The answer in a non-streamed body."""

    @abstractmethod
    def stream_parser(self, req: ChatRequest, *, provider: str) -> StreamParser:
        """A fresh parser for one streamed answer."""

    def models_call(self) -> HttpCall | None:
        """The request listing models, or ``None`` when the API has none."""
        return None

    def parse_models(self, body: bytes) -> list[str]:
        raise UserError(f"{type(self).__name__} cannot list models")

    def refine_error(self, err: ProviderError) -> ProviderError:
        """A chance to add what only this API's error bodies say (e.g. a retry delay)."""
        return err


def load_json(body: dict[str, Any] | bytes | str, *, provider: str) -> Any:
    """Decode a JSON body (a dict passes through). Raises ResponseFormatError on invalid JSON."""
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError as e:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise ResponseFormatError(f"{provider} sent invalid JSON: {e}", provider=provider, body=text) from e


def load_json_object(body: dict[str, Any] | bytes | str, *, provider: str) -> dict[str, Any]:
    """Like :func:`load_json`, but the value must be a JSON object."""
    value = load_json(body, provider=provider)
    if not isinstance(value, dict):
        raise ResponseFormatError(f"{provider} sent a JSON {type(value).__name__}, expected an object",
                                  provider=provider, body=json.dumps(value)[:500])
    return value


def as_int(value: Any) -> int:
    """A token count from the wire: ``None``/missing/garbage -> 0."""
    if value.__class__ is int:  # the common case (bool is a subclass, never this class)
        return value
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def canonical_json(value: Any) -> str:
    """The one JSON encoding codecs use when they must turn an object into text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_RATE = ("rate_limit", "rate_limit_error", "rate_limit_exceeded", "too_many_requests")
_SERVER = ("overloaded_error", "api_error", "server_error", "internal_error", "service_unavailable", "overloaded",
           "timeout", "internal_server_error")
_AUTH = ("authentication_error", "permission_error", "invalid_api_key", "unauthorized", "forbidden")
_INVALID = ("invalid_request_error", "not_found_error", "request_too_large", "invalid_request", "model_not_found",
            "context_length_exceeded", "bad_request", "billing_error")


def error_for_code(code: str | None, message: str, *, provider: str, model: str | None = None,
                   status_code: int | None = None, body: str | None = None) -> ProviderError:
    """The ProviderError subclass for an error that arrived *inside* a body or stream (no HTTP status)."""
    key = (code or "").lower()
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status_code, "body": body}
    if key == "insufficient_quota":  # OpenAI: out of credit; waiting does not help
        return RateLimitError(message, retryable=False, **kw)
    if key in _RATE:
        return RateLimitError(message, **kw)
    if key in _SERVER:
        return ServerError(message, **kw)
    if key in _AUTH:
        return AuthenticationError(message, **kw)
    if key in _INVALID:
        return InvalidRequestError(message, **kw)
    return ProviderError(message, **kw)
