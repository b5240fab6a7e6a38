"""What a wire API adapter is: the I/O-free glue between a codec and :class:`HttpChatModel`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from aixpy.errors import ProviderError, UserError
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["HttpCall", "StreamDecoder", "WireAPI"]


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One request to make, relative to the provider's base URL (``path`` may carry a query)."""

    path: str
    json: Any = None
    method: str = "POST"
    params: Mapping[str, str] | None = None


class StreamDecoder(Protocol):
    """Turns one stream item into events. ``event`` is the SSE event name (``None`` for NDJSON);
    ``data`` is the SSE ``data`` text or the decoded NDJSON object. ``done`` turns true on the
    format's end marker (``[DONE]``, ``message_stop``...) so the reader can stop."""

    done: bool

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]: ...


class WireAPI(ABC):
    """One wire format as seen by a provider: where to send a request and how to read the answer.

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
    def stream_decoder(self, req: ChatRequest, *, provider: str) -> StreamDecoder:
        """A fresh decoder for one stream."""

    def models_call(self) -> HttpCall | None:
        """The request listing models, or ``None`` when the API has none."""
        return None

    def parse_models(self, body: bytes) -> list[str]:
        raise UserError(f"{type(self).__name__} cannot list models")

    def refine_error(self, err: ProviderError) -> ProviderError:
        """A chance to add what only this API's error bodies say (e.g. a retry delay)."""
        return err
