"""Google ``generateContent``: the Gemini API and Vertex AI (same body, different URL and auth)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aixpy.errors import ProviderError, RateLimitError, ResponseFormatError
from aixpy.llm.apis._base import HttpCall, WireAPI
from aixpy.llm.codecs import gemini as codec
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["GeminiAPI", "VertexAPI"]


class _Decoder:
    __slots__ = ("done", "parser")

    def __init__(self, parser: codec.StreamParser) -> None:
        self.parser = parser
        self.done = False

    def feed(self, event: str | None, data: Any) -> list[StreamEvent]:
        return self.parser.feed(data)


class GeminiAPI(WireAPI):
    """``POST {base}/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``)."""

    def __init__(self, *, version: str = codec.API_VERSION) -> None:
        self.version = version

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        return HttpCall(codec.path(req.model, stream, version=self.version), codec.build_request(req))

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return codec.parse_response(body, provider=provider)

    def stream_decoder(self, req: ChatRequest, *, provider: str) -> _Decoder:
        return _Decoder(codec.StreamParser(provider=provider))

    def models_call(self) -> HttpCall:
        return HttpCall(f"/{self.version}/models", method="GET", params={"pageSize": "1000"})

    def parse_models(self, body: bytes) -> list[str]:
        return codec.parse_models(body, method="generateContent")

    def refine_error(self, err: ProviderError) -> ProviderError:
        if isinstance(err, RateLimitError) and err.retry_after is None and err.body:
            err.retry_after = codec.retry_after(err.body)  # google.rpc.RetryInfo "retryDelay"
        return err


class VertexAPI(GeminiAPI):
    """Vertex AI: ``/v1/projects/{project}/locations/{location}/publishers/google/models/{m}:...``."""

    def __init__(self, *, project: str, location: str) -> None:
        super().__init__(version=codec.VERTEX_API_VERSION)
        self.project = project
        self.location = location

    def chat_call(self, req: ChatRequest, *, stream: bool) -> HttpCall:
        parts = urlsplit(codec.vertex_url(self.project, self.location, req.model, stream))
        return HttpCall(parts.path + (f"?{parts.query}" if parts.query else ""), codec.build_request(req))

    def models_call(self) -> HttpCall:
        return HttpCall("/v1beta1/publishers/google/models", method="GET", params={"pageSize": "1000"})

    def parse_models(self, body: bytes) -> list[str]:
        try:
            data = json.loads(body)
        except ValueError as e:
            raise ResponseFormatError(f"Vertex AI sent invalid JSON: {e}", provider="vertexai") from e
        items = data.get("publisherModels") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ResponseFormatError("model list has no 'publisherModels' array", provider="vertexai")
        return [str(m["name"]).rsplit("/", 1)[-1] for m in items if isinstance(m, dict) and m.get("name")]
