"""Every wire format read the same way: one stream-parser shape, one decoder for sync and async, and
errors that name the provider and model whichever codec found them (over the loopback server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from httpx_sse import ServerSentEvent

from aixpy.errors import AllProvidersFailedError, RateLimitError, ResponseFormatError
from aixpy.llm import ChatModel, FallbackModel, StreamEvent
from aixpy.llm.codecs import _common, anthropic_messages, gemini, hf_tgi, ollama, openai_chat
from aixpy.llm.providers.anthropic import AnthropicModel
from aixpy.llm.providers.gemini import GeminiModel
from aixpy.llm.providers.huggingface import HuggingFaceModel
from aixpy.llm.providers.ollama import OllamaModel
from aixpy.llm.providers.openai import OpenAIModel

from .test_provider_server import Reply, ScriptedServer, servers

OLLAMA_TEXT = {"model": "qwen3:8b", "message": {"role": "assistant", "content": "Hi"}, "done": False}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


@pytest.fixture
def pair() -> Iterator[list[ScriptedServer]]:
    yield from servers(2)


def ollama_model(server: ScriptedServer, model: str = "qwen3:8b") -> OllamaModel:
    return OllamaModel(model, endpoint=server.url, environ={})


# --------------------------------------------------------------------------- stream decode errors

# (provider, a model on the server, a streamed reply whose first item cannot be decoded)
BROKEN: list[tuple[str, Callable[[str], ChatModel], Reply]] = [
    ("openai", lambda url: OpenAIModel("gpt-4o-mini", api_key="sk-test-0123456789abcdef", endpoint=url + "/v1",
                                       environ={}), Reply.sse_data(["{not json"])),
    ("anthropic", lambda url: AnthropicModel("claude-sonnet-4-6", api_key="sk-ant-api03-Test0123456789",
                                             endpoint=url, environ={}),
     Reply.sse(["event: message_start\ndata: {not json\n\n"])),
    ("gemini", lambda url: GeminiModel("gemini-2.5-flash", api_key="AIzaTest0123456789", endpoint=url, environ={}),
     Reply.sse_data(["{not json"], done=False)),
    ("huggingface", lambda url: HuggingFaceModel("tgi", endpoint=url, text_generation=True, environ={}),
     Reply.sse_data(["{not json"], done=False)),
    ("ollama", lambda url: OllamaModel("qwen3:8b", endpoint=url, environ={}), Reply.ndjson(["{not json"])),
]


@pytest.mark.parametrize(("provider", "make", "reply"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_malformed_stream_item_names_provider_and_model(server: ScriptedServer, provider: str,
                                                           make: Callable[[str], ChatModel], reply: Reply) -> None:
    server.push(reply)
    with make(server.url) as model, pytest.raises(ResponseFormatError) as info, model.stream("hi") as s:
        list(s)
    assert (info.value.provider, info.value.model) == (provider, model.model)


@pytest.mark.parametrize(("provider", "make", "reply"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_a_malformed_stream_item_names_provider_and_model_async(
        server: ScriptedServer, provider: str, make: Callable[[str], ChatModel], reply: Reply) -> None:
    server.push(reply)
    async with make(server.url) as model, model.astream("hi") as s:
        with pytest.raises(ResponseFormatError) as info:
            await s.get_response()
    assert (info.value.provider, info.value.model) == (provider, model.model)


def test_ollama_malformed_ndjson_line_names_provider_and_model(server: ScriptedServer) -> None:
    """Regression (hardening item 7): the NDJSON reader raised ``provider=None, model=None``."""
    server.push(Reply.ndjson(['{"model": "qwen3:8b", "message": {', json.dumps(OLLAMA_TEXT)]))
    with ollama_model(server) as model, pytest.raises(ResponseFormatError) as info, model.stream("hi") as s:
        list(s)
    assert info.value.provider == "ollama"
    assert info.value.model == "qwen3:8b"


def test_ollama_malformed_lines_in_a_fallback_chain_name_each_provider(pair: list[ScriptedServer]) -> None:
    for srv in pair:
        srv.push(Reply.ndjson(["{oops"]))
    first, second = ollama_model(pair[0], "qwen3:8b"), ollama_model(pair[1], "llama3.2:3b")
    chain = FallbackModel([first, second])
    try:
        with pytest.raises(AllProvidersFailedError) as info, chain.stream("hi") as s:
            list(s)
    finally:
        first.close()
        second.close()
    assert [(type(e), getattr(e, "provider", None), getattr(e, "model", None)) for e in info.value.errors] == [
        (ResponseFormatError, "ollama", "qwen3:8b"), (ResponseFormatError, "ollama", "llama3.2:3b")]


async def test_sync_and_async_streams_decode_alike(server: ScriptedServer) -> None:
    """The same bytes give the same events through the sync and the async reader."""
    lines = [OLLAMA_TEXT, {**OLLAMA_TEXT, "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {"a": 1}}}]}},
        {"model": "qwen3:8b", "message": {"role": "assistant", "content": ""}, "done": True,
         "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2}]
    server.push(Reply.ndjson(lines), Reply.ndjson(lines))
    with ollama_model(server) as model, model.stream("hi") as s:
        sync_events = list(s)
    async with ollama_model(server) as amodel, amodel.astream("hi") as a:
        async_events = [e async for e in a]
    assert async_events == sync_events
    assert [e.kind for e in sync_events] == ["text", "tool_call", "usage", "finish"]


# --------------------------------------------------------------------------- list_models errors


def gemini_model(server: ScriptedServer) -> GeminiModel:
    return GeminiModel("gemini-2.5-flash", api_key="AIzaTest0123456789", endpoint=server.url, environ={})


QUOTA = {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED",
                   "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}


def test_a_list_models_error_is_refined_like_a_chat_error(server: ScriptedServer) -> None:
    server.push(Reply.json(QUOTA, status=429), Reply.json(QUOTA, status=429))
    with gemini_model(server) as model:
        with pytest.raises(RateLimitError) as chat:
            model.chat("x")
        with pytest.raises(RateLimitError) as listing:
            model.list_models()
    assert chat.value.retry_after == listing.value.retry_after == 37.0
    assert listing.value.provider == "gemini"


async def test_a_list_models_error_is_refined_like_a_chat_error_async(server: ScriptedServer) -> None:
    server.push(Reply.json(QUOTA, status=429))
    async with gemini_model(server) as model:
        with pytest.raises(RateLimitError) as listing:
            await model.alist_models()
    assert listing.value.retry_after == 37.0


# --------------------------------------------------------------------------- one parser shape


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


# (a fresh parser, the items of a short stream, whether the format has an end marker)
STREAMS: list[tuple[Callable[[], _common.StreamParser], list[str], bool]] = [
    (openai_chat.StreamParser, [openai_chunk({"content": "Hi"}), openai_chunk({}, "stop"), "[DONE]"], True),
    (anthropic_messages.StreamParser, [
        json.dumps({"type": "message_start", "message": {"id": "msg", "model": "m", "usage": {"input_tokens": 1}}}),
        json.dumps({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
        json.dumps({"type": "message_stop"})], True),
    (gemini.StreamParser, [json.dumps({"candidates": [{"content": {"parts": [{"text": "Hi"}]},
                                                       "finishReason": "STOP"}]})], False),
    (hf_tgi.StreamParser, [json.dumps({"token": {"text": "Hi", "special": False}, "generated_text": "Hi"})], False),
    (ollama.StreamParser, [json.dumps(OLLAMA_TEXT), json.dumps({"model": "qwen3:8b", "done": True})], True),
]


@pytest.mark.parametrize(("make", "items", "marker"), STREAMS,
                         ids=["openai_chat", "anthropic_messages", "gemini", "hf_tgi", "ollama"])
def test_every_parser_reads_items_as_given_and_ends_alike(make: Callable[[], _common.StreamParser],
                                                          items: list[str], marker: bool) -> None:
    plain, framed = make(), make()
    assert isinstance(plain, _common.StreamParser)
    from_data = [e for item in items for e in plain.feed(item)]
    # as the reader gets them: a server-sent event, an NDJSON line as bytes
    ndjson = make is ollama.StreamParser
    as_read: Callable[[str], Any] = (lambda i: i.encode()) if ndjson else (lambda i: ServerSentEvent(data=i))
    from_reader = [e for item in items for e in framed.feed(as_read(item))]
    assert from_data == from_reader
    assert [e.kind for e in from_data if e.kind == "text"] == ["text"]
    assert plain.done is marker
    assert plain.finished
    assert plain.end() == []  # a finish came: nothing owed


@pytest.mark.parametrize(("make", "items"), [
    (openai_chat.StreamParser, [openai_chunk({"content": "Hi"}), "[DONE]"]),
    (anthropic_messages.StreamParser, [json.dumps({"type": "message_stop"})]),
])
def test_end_marker_without_a_finish_reason_finishes_other(make: Callable[[], _common.StreamParser],
                                                           items: list[str]) -> None:
    parser = make()
    for item in items:
        parser.feed(item)
    assert parser.done
    assert not parser.finished
    assert parser.end() == [StreamEvent.finish(None)]


def test_a_cut_stream_owes_nothing() -> None:
    parser = openai_chat.StreamParser()
    parser.feed(openai_chunk({"content": "Hi"}))
    assert parser.end() == []

