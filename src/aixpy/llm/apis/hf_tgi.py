"""HuggingFace TGI: text generation (a TGI server's ``/generate`` or the serverless ``/models/{model}``)
and the chat route of a TGI server (``/v1/chat/completions``, OpenAI's format but for structured output)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aixpy.llm.apis._base import HttpCall, WireAPI
from aixpy.llm.apis.openai_chat import OpenAIChatAPI
from aixpy.llm.codecs import hf_tgi as codec
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["TGIChatAPI", "TextGenerationAPI"]


class _Decoder:
    __slots__ = ("done", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        return codec.parse_stream_event(data, provider=self.provider)


class TextGenerationAPI(WireAPI):
    """TGI ``POST /generate`` / ``/generate_stream`` or, with ``serverless=True``, the serverless
    Inference API ``POST /models/{model}`` (same body, ``stream: true`` for SSE). No tools."""

    def __init__(self, *, serverless: bool = False, details: bool = True, wait_for_model: bool | None = None) -> None:
        self.serverless = serverless
        self.details = details
        self.wait_for_model = wait_for_model

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        path = codec.serverless_url(req.model, base_url="") if self.serverless else codec.path(stream)
        body = codec.build_request(req, stream=stream, wait_for_model=self.wait_for_model, details=self.details)
        return HttpCall(path, body)

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return codec.parse_response(body, provider=provider)

    def stream_decoder(self, req: ChatRequest, *, provider: str) -> _Decoder:
        return _Decoder(provider)


class TGIChatAPI(OpenAIChatAPI):
    """A TGI server's OpenAI-compatible chat route (HuggingFace Inference Endpoints, self-hosted TGI).

    The body is OpenAI's (:class:`OpenAIChatAPI`) except a ``json_schema`` response format: TGI reads
    ``response_format`` as its grammar, ``{"type": "json" | "json_object" | "json_schema", "value": ...}``,
    and ignores OpenAI's ``json_schema`` envelope, so the schema is sent as ``{"type": "json_object",
    "value": schema}``, as ``huggingface_hub`` sends it to an endpoint. A ``response_format`` in
    ``req.extra`` is sent as given.
    """

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        call = super().chat_call(req, stream=stream)
        rf = req.response_format
        if rf is None or rf.type != "json_schema" or rf.schema is None or "response_format" in req.extra:
            return call
        return replace(call, json={**call.json, "response_format": {"type": "json_object", "value": rf.schema}})
