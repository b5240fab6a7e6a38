"""Ollama's native API: ``POST /api/chat`` streaming NDJSON, ``GET /api/tags``."""

from __future__ import annotations

from typing import Any

from aixpy.llm.apis._base import HttpCall, WireAPI
from aixpy.llm.codecs import ollama as codec
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["OllamaAPI"]


class _Decoder:
    __slots__ = ("done", "parser")

    def __init__(self, parser: codec.StreamParser) -> None:
        self.parser = parser
        self.done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        events = self.parser.feed(data)
        self.done = self.parser.done
        return events


class OllamaAPI(WireAPI):
    """``POST {base}/api/chat`` (NDJSON when streamed); ``GET {base}/api/tags``."""

    framing = "ndjson"

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        return HttpCall(codec.CHAT_PATH, codec.build_request(req, stream=stream))

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return codec.parse_response(body, provider=provider)

    def stream_decoder(self, req: ChatRequest, *, provider: str) -> _Decoder:
        return _Decoder(codec.StreamParser(provider=provider))

    def models_call(self) -> HttpCall:
        return HttpCall(codec.TAGS_PATH, method="GET")

    def parse_models(self, body: bytes) -> list[str]:
        return codec.parse_models(body)
