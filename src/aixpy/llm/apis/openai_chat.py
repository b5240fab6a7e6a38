"""OpenAI Chat Completions (OpenAI, xAI, HuggingFace router, vLLM, TGI, llama.cpp, Ollama ``/v1``)."""

from __future__ import annotations

from typing import Any

from aixpy.llm.apis._base import HttpCall, WireAPI
from aixpy.llm.codecs import openai_chat as codec
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["OpenAIChatAPI"]


class _Decoder:
    __slots__ = ("done", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        if isinstance(data, str):  # strip and check once (parse_stream_event would do both again)
            text = data.strip()
            if text == "[DONE]":
                self.done = True
                return []
            return codec.parse_stream_payload(text, self.provider) if text else []
        return codec.parse_stream_event(data, provider=self.provider)


class OpenAIChatAPI(WireAPI):
    """``POST {base}/chat/completions``; ``GET {base}/models``.

    ``stream_usage=False`` drops ``stream_options`` for old servers that reject it (streams from
    them then end with a ``usage`` event carrying ``None``).
    """

    def __init__(self, *, path: str = "/chat/completions", models_path: str = "/models",
                 stream_usage: bool = True) -> None:
        self.path = path
        self.models_path = models_path
        self.stream_usage = stream_usage

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        body = codec.build_request(req, stream=stream)
        if stream and not self.stream_usage:
            body.pop("stream_options", None)
        return HttpCall(self.path, body)

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return codec.parse_response(body, provider=provider)

    def stream_decoder(self, req: ChatRequest, *, provider: str) -> _Decoder:
        return _Decoder(provider)

    def models_call(self) -> HttpCall:
        return HttpCall(self.models_path, method="GET")

    def parse_models(self, body: bytes) -> list[str]:
        return codec.parse_models(body)
