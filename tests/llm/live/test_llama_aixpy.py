"""Our providers against a real, independent server: llama.cpp's ``llama-server``.

The same scenarios as ``test_llama_openai_sdk.py`` (which shows the server itself behaves), sent
through ``aixpy.llm.new(...)`` with the ``openai_compatible`` and ``openai`` providers (OpenAI chat
completions at ``{base}/v1``) and the ``anthropic`` provider (``{base}/v1/messages``), sync and
async. Asserted: shapes, normalised finish reasons, usage on streamed and non-streamed answers, the
stream contract (text/tool-call deltas, then exactly one usage and one finish event), that a
streamed tool call arrives whole with parsed arguments, that folding a stream gives the response
the stream reports and the shape a non-streamed call gives, and that a wrong key is an
AuthenticationError. Never the text itself: the model is a base model.

Known server quirk these tests run into: llama-server closes the connection right after every
streamed response although it advertises keep-alive; a call that reuses the pooled connection at
that moment fails with "Server disconnected without sending a response" (see
test_call_right_after_a_stream).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy.errors import AuthenticationError
from aixpy.llm import ChatModel, ChatResponse, StreamEvent, Usage, fold_stream

from . import _scenarios as sc
from ._server import LlamaServer

pytestmark = pytest.mark.live

PROVIDERS = ["openai_compatible", "openai", "anthropic"]
OPENAI_FAMILY = ["openai_compatible", "openai"]
FINISHED_BY_MODEL = ("stop", "length")  # the base model may or may not stop by itself


def make(server: LlamaServer, provider: str, *, api_key: str | None = None) -> ChatModel:
    endpoint = server.base_url if provider == "anthropic" else server.openai_url
    return llm.new(f"{provider}:{server.model}", endpoint=endpoint, api_key=api_key or server.api_key, timeout=60)


@pytest.fixture(scope="module", params=PROVIDERS)
def model(request: pytest.FixtureRequest, llama_server: LlamaServer) -> Iterator[ChatModel]:
    with make(llama_server, request.param) as m:
        yield m


@pytest.fixture(scope="module", params=OPENAI_FAMILY)
def oai_model(request: pytest.FixtureRequest, llama_server: LlamaServer) -> Iterator[ChatModel]:
    """The OpenAI-wire providers: only they reach llama.cpp's ``ignore_eos`` and JSON-schema grammar
    (its Anthropic route passes neither on, and Anthropic JSON mode is a forced tool, which
    llama-server does not force)."""
    with make(llama_server, request.param) as m:
        yield m


# --------------------------------------------------------------------------- helpers


def assert_usage(usage: Usage | None, *, max_output: int | None = None) -> Usage:
    assert isinstance(usage, Usage)
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    if max_output is not None:
        assert usage.output_tokens <= max_output
    return usage


def assert_contract(events: list[StreamEvent]) -> None:
    """Deltas first, then exactly one usage event and one finish event, in that order."""
    kinds = [e.kind for e in events]
    assert kinds[-2:] == ["usage", "finish"], kinds
    assert kinds.count("usage") == 1
    assert kinds.count("finish") == 1
    assert set(kinds[:-2]) <= {"text", "tool_call"}


def assert_fold_matches(events: list[StreamEvent], resp: ChatResponse) -> None:
    """Folding the events by hand gives the response the stream reported."""
    folded = fold_stream(events, provider=resp.provider)
    assert (folded.text, folded.tool_calls, folded.finish_reason, folded.raw_finish_reason, folded.usage,
            folded.model, folded.id) == (resp.text, resp.tool_calls, resp.finish_reason, resp.raw_finish_reason,
                                         resp.usage, resp.model, resp.id)
    assert resp.text == "".join(e.text for e in events if e.kind == "text")


def shape(resp: ChatResponse) -> dict[str, Any]:
    """What must be equal between a streamed and a non-streamed answer to the same forced request."""
    assert resp.usage is not None
    return {
        "finish_reason": resp.finish_reason,
        "text_type": type(resp.text),
        "tool_calls": [(c.name, type(c.arguments), bool(c.id)) for c in resp.tool_calls],
        "input_tokens": resp.usage.input_tokens,  # same prompt, same count
        "usage_type": type(resp.usage),
        "provider": resp.provider,
        "model": resp.model,
        "has_id": resp.id is not None,
    }


def assert_one_weather_call(resp: ChatResponse) -> None:
    assert resp.finish_reason == "tool_calls"
    assert len(resp.tool_calls) == 1
    call = resp.tool_calls[0]
    assert call.id
    assert call.name == sc.TOOL_NAME
    assert isinstance(call.arguments, dict)
    assert json.loads(call.raw_arguments) == call.arguments
    assert_usage(resp.usage)


def tool_request() -> dict[str, Any]:
    return {"tools": [sc.aixpy_tool()], "stop": sc.TOOL_STOP, "max_tokens": 64, "temperature": 0}


# --------------------------------------------------------------------------- plain chat


def test_chat(model: ChatModel, llama_server: LlamaServer) -> None:
    r = model.chat(sc.PROMPT, max_tokens=12, temperature=0)
    assert isinstance(r, ChatResponse)
    assert isinstance(r.text, str)
    assert r.tool_calls == []
    assert r.finish_reason in FINISHED_BY_MODEL
    assert r.raw_finish_reason
    usage = assert_usage(r.usage, max_output=12)
    if r.finish_reason == "length":
        assert usage.output_tokens == 12
    assert r.provider == model.provider
    assert r.model
    assert r.latency_ms is not None
    assert r.latency_ms > 0


def test_chat_with_system_prompt(model: ChatModel) -> None:
    plain = model.chat(sc.PROMPT, max_tokens=2, temperature=0)
    with_system = model.chat(sc.PROMPT, system="You are a poet who writes about the sea.", max_tokens=2,
                             temperature=0)
    assert plain.usage is not None
    assert with_system.usage is not None
    assert with_system.usage.input_tokens > plain.usage.input_tokens  # the system prompt reached the model


def test_list_models_names_the_alias(model: ChatModel, llama_server: LlamaServer) -> None:
    assert llama_server.model in model.list_models()


def test_length(oai_model: ChatModel) -> None:
    r = oai_model.chat(sc.PROMPT, max_tokens=6, temperature=0, extra={"ignore_eos": True})
    assert r.finish_reason == "length"
    assert r.raw_finish_reason == "length"
    assert assert_usage(r.usage).output_tokens == 6


def test_json_schema_stops(oai_model: ChatModel) -> None:
    r = oai_model.chat("Is the sea blue? Answer in JSON.", max_tokens=32, temperature=0,
                       response_format=sc.BOOL_SCHEMA)
    assert r.finish_reason == "stop"
    data = json.loads(r.text)
    assert set(data) == {"ok"}
    assert isinstance(data["ok"], bool)
    assert_usage(r.usage)


# --------------------------------------------------------------------------- streaming


def test_stream(model: ChatModel) -> None:
    with model.stream(sc.PROMPT, max_tokens=10, temperature=0) as s:
        events = list(s)
    assert_contract(events)
    assert "text" in [e.kind for e in events]
    resp = s.response
    assert resp.finish_reason in FINISHED_BY_MODEL
    assert resp.tool_calls == []
    usage = assert_usage(resp.usage, max_output=10)
    assert events[-2].usage == usage
    assert events[-1].finish_reason == resp.finish_reason
    assert_fold_matches(events, resp)
    assert resp.provider == model.provider
    assert resp.latency_ms is not None


def test_stream_equals_chat_shape(oai_model: ChatModel) -> None:
    options: dict[str, Any] = {"max_tokens": 8, "temperature": 0, "extra": {"ignore_eos": True}}
    plain = oai_model.chat(sc.PROMPT, **options)
    with oai_model.stream(sc.PROMPT, **options) as s:
        events = list(s)
    assert_contract(events)
    streamed = s.response
    assert shape(streamed) == shape(plain)
    assert streamed.finish_reason == "length"
    assert streamed.usage is not None
    assert plain.usage is not None
    assert streamed.usage.output_tokens == plain.usage.output_tokens == 8  # cached_input_tokens may differ


# --------------------------------------------------------------------------- tool calls


def test_tool_call_streamed_arrives_whole(model: ChatModel) -> None:
    plain = model.chat(sc.aixpy_tool_history(), **tool_request())
    with model.stream(sc.aixpy_tool_history(), **tool_request()) as s:
        events = list(s)
    assert_contract(events)
    deltas = [e for e in events if e.kind == "tool_call"]
    assert deltas
    assert {e.index for e in deltas} == {0}
    assert deltas[0].tool_name == sc.TOOL_NAME
    assert deltas[0].tool_call_id
    resp = s.response
    assert_one_weather_call(resp)
    assert resp.tool_calls[0].id == deltas[0].tool_call_id
    assert resp.tool_calls[0].raw_arguments == "".join(e.arguments_delta for e in deltas).strip()
    assert_fold_matches(events, resp)
    assert shape(resp) == shape(plain)


def test_tool_call_and_its_result_round_trip(model: ChatModel) -> None:
    """One tool call, non-streamed; then the call and its result go back (our message types on the
    wire, as the assistant turn and a tool result) and the server takes the longer conversation."""
    first = model.chat(sc.aixpy_tool_history(), **tool_request())
    assert_one_weather_call(first)
    call = first.tool_calls[0]
    history = [*sc.aixpy_tool_history(), first.message,
               llm.ToolMessage('{"temp_c": 11, "sky": "cloudy"}', tool_call_id=call.id, name=call.name)]
    r = model.chat(history, tools=[sc.aixpy_tool()], max_tokens=8, temperature=0)
    assert r.finish_reason in (*FINISHED_BY_MODEL, "tool_calls")
    assert first.usage is not None
    assert assert_usage(r.usage).input_tokens > first.usage.input_tokens


# --------------------------------------------------------------------------- async


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_async_chat_stream_and_tool_call(llama_server: LlamaServer, provider: str) -> None:
    async with make(llama_server, provider) as m:
        r = await m.achat(sc.PROMPT, max_tokens=6, temperature=0)
        assert r.finish_reason in FINISHED_BY_MODEL
        assert_usage(r.usage, max_output=6)

        async with m.astream(sc.PROMPT, max_tokens=6, temperature=0) as s:
            events = [e async for e in s]
        assert_contract(events)
        assert_usage(s.response.usage, max_output=6)
        assert_fold_matches(events, s.response)

        async with m.astream(sc.aixpy_tool_history(), **tool_request()) as s:
            events = [e async for e in s]
        assert_contract(events)
        assert_one_weather_call(s.response)
        assert_fold_matches(events, s.response)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_key_is_authentication_error(llama_server: LlamaServer, provider: str) -> None:
    with make(llama_server, provider, api_key="wrong-key") as m:
        with pytest.raises(AuthenticationError) as info:
            m.chat("hi", max_tokens=1)
        assert info.value.status_code == 401
        assert info.value.provider == provider
        assert not info.value.retryable
        with pytest.raises(AuthenticationError), m.stream("hi", max_tokens=1) as s:
            list(s)
        assert s.events_delivered == 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_wrong_key_is_authentication_error_async(llama_server: LlamaServer, provider: str) -> None:
    async with make(llama_server, provider, api_key="wrong-key") as m:
        with pytest.raises(AuthenticationError):
            await m.achat("hi", max_tokens=1)


# --------------------------------------------------------------------------- connection reuse


@pytest.mark.parametrize("provider", ["openai_compatible", "anthropic"])
def test_call_right_after_a_stream(llama_server: LlamaServer, provider: str) -> None:
    """A call made right after a stream on the same model must succeed.

    llama-server closes the connection just after each streamed response while advertising
    keep-alive (test_server_closes_the_connection_after_a_stream). If the client puts the
    connection back in its pool and reuses it before the server's FIN arrives, the request fails with
    "Server disconnected without sending a response" (ProviderConnectionError). How often depends on
    scheduling (under CPU load it happened in 1 of 3 to 1 of 10 pairs); on correct code this test
    never fails.
    """
    with make(llama_server, provider) as m:
        for i in range(6):
            with m.stream(f"{sc.PROMPT} ({i})", max_tokens=4, temperature=0) as s:
                list(s)
            r = m.chat("hi", max_tokens=1, temperature=0)
            assert_usage(r.usage)
