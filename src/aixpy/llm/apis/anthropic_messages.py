"""Anthropic Messages (``POST /v1/messages``), JSON mode through the codec's forced tool."""

from __future__ import annotations

from typing import Any

from aixpy.llm.apis._base import HttpCall, WireAPI
from aixpy.llm.codecs import anthropic_messages as codec
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["AnthropicMessagesAPI"]


class _Decoder:
    __slots__ = ("done", "parser")

    def __init__(self, parser: codec.StreamParser) -> None:
        self.parser = parser
        self.done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        events = self.parser.feed(event, data)
        self.done = self.parser.done
        return events


class AnthropicMessagesAPI(WireAPI):
    """``POST {base}/v1/messages``; ``GET {base}/v1/models``."""

    exclusive_sampling = True

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        return HttpCall("/v1/messages", codec.build_request(req, stream=stream))

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return codec.parse_response(body, json_tool=codec.json_tool_name(req), provider=provider)

    def stream_decoder(self, req: ChatRequest, *, provider: str) -> _Decoder:
        return _Decoder(codec.StreamParser(json_tool=codec.json_tool_name(req), provider=provider))

    def models_call(self) -> HttpCall:
        return HttpCall("/v1/models", method="GET", params={"limit": "1000"})

    def parse_models(self, body: bytes) -> list[str]:
        return codec.parse_models(body)
