"""Sync/async and stream/non-stream parity: for every provider, ``chat``, ``achat``, ``stream`` and
``astream`` against the same vendor-shaped bytes give equal answers (one post-processing path)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from aixpy.llm import ChatModel, ChatResponse, ToolSpec
from aixpy.llm.providers.anthropic import AnthropicModel
from aixpy.llm.providers.gemini import GeminiModel
from aixpy.llm.providers.huggingface import HuggingFaceModel
from aixpy.llm.providers.ollama import OllamaModel
from aixpy.llm.providers.openai import OpenAIModel
from aixpy.llm.providers.openai_compatible import OpenAICompatibleModel
from aixpy.llm.providers.vertexai import VertexAIModel
from aixpy.llm.providers.xai import XAIModel

from .test_provider_server import FIXTURES, Recorded, Reply, ScriptedServer, sse_blocks

TOOLS = [ToolSpec(n, "", {"type": "object", "properties": {}}) for n in
         ("get_weather", "get_time", "get_temperature", "get_conditions")]

Factory = Callable[[str], ChatModel]

CASES: dict[str, tuple[Factory, str, str]] = {
    # name: (factory(server url), non-streamed fixture, streamed fixture)
    "openai": (lambda url: OpenAIModel("gpt-4.1", api_key="sk-x0123456789", endpoint=url + "/v1", environ={}),
               "openai_tools.json", "openai_tools.sse"),
    "openai-text": (lambda url: OpenAIModel("gpt-4.1", api_key="sk-x0123456789", endpoint=url + "/v1", environ={}),
                    "openai_text.json", "openai_text.sse"),
    "xai": (lambda url: XAIModel(api_key="xai-0123456789", endpoint=url + "/v1", environ={}),
            "openai_tools.json", "openai_tools.sse"),
    "huggingface": (lambda url: HuggingFaceModel(endpoint=url, environ={}), "openai_tools.json", "openai_tools.sse"),
    "openai_compatible": (lambda url: OpenAICompatibleModel("m", endpoint=url + "/v1"),
                          "openai_text.json", "openai_text.sse"),
    "anthropic": (lambda url: AnthropicModel(api_key="sk-ant-0123456789", endpoint=url, environ={}),
                  "anthropic_tool_use.json", "anthropic_tool_use.sse"),
    "gemini": (lambda url: GeminiModel(api_key="AIza0123456789", endpoint=url, environ={}),
               "gemini_tools.json", "gemini_tools.sse"),
    "gemini-text": (lambda url: GeminiModel(api_key="AIza0123456789", endpoint=url, environ={}),
                    "gemini_text.json", "gemini_text.sse"),
    "vertexai": (lambda url: VertexAIModel(project_id="p", endpoint=url, token_provider=lambda: "tok", environ={}),
                 "gemini_tools.json", "gemini_tools.sse"),
    "ollama": (lambda url: OllamaModel("qwen3:8b", endpoint=url, environ={}),
               "ollama_chat_tools.json", "ollama_chat_tools.ndjson"),
    "tgi": (lambda url: HuggingFaceModel("tgi", endpoint=url, text_generation=True, environ={}),
            "tgi_generate.json", "tgi_generate_stream.sse"),
}


def _handler(plain: str, streamed: str) -> Callable[[Recorded], Reply]:
    def handle(rec: Recorded) -> Reply:
        body = rec.json if rec.body else {}
        if body.get("stream") or "stream" in rec.path:
            raw = (FIXTURES / streamed).read_bytes()
            if streamed.endswith(".ndjson"):
                return Reply.ndjson(raw.decode().splitlines())
            return Reply.sse(sse_blocks(raw))
        return Reply.raw((FIXTURES / plain).read_bytes())

    return handle


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def _tools(name: str) -> list[ToolSpec]:
    return [] if name in ("tgi", "openai_compatible") else TOOLS


@pytest.mark.parametrize("name", sorted(CASES))
async def test_four_ways_give_one_answer(server: ScriptedServer, name: str) -> None:
    factory, plain, streamed = CASES[name]
    server.handler = _handler(plain, streamed)
    tools = _tools(name)
    answers: dict[str, ChatResponse] = {}
    with factory(server.url) as model:
        answers["chat"] = model.chat("q", tools=tools)
        with model.stream("q", tools=tools) as s:
            events = list(s)
        answers["stream"] = s.response
    async with factory(server.url) as amodel:
        answers["achat"] = await amodel.achat("q", tools=tools)
        async with amodel.astream("q", tools=tools) as a:
            aevents = [e async for e in a]
        answers["astream"] = a.response
    reference = answers["chat"]
    assert reference.provider == model.provider
    for how, answer in answers.items():
        assert answer == reference, how
        assert answer.latency_ms is not None
    assert events == aevents
    assert [e.kind for e in events][-2:] == ["usage", "finish"]
    assert len(server.requests) == 4
