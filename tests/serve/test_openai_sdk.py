"""The official ``openai`` SDK against ``aixpy serve`` (a stub upstream behind it): sync, async, stream, tools,
embeddings, models; and aixpy's own ``openai_compatible`` provider in front of it (a gateway of a gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from tests._services.loopback_http import LoopbackHTTPServer
from tests.serve.conftest import KEY, UPSTREAM_KEY, RunningServer

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


_clients: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def client(gateway: RunningServer, key: str = KEY) -> openai.OpenAI:
    _clients.append(openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0))
    return _clients[-1]


def test_sync_chat_goes_through_the_agent_to_the_upstream(gateway: RunningServer,
                                                          upstream: LoopbackHTTPServer) -> None:
    resp = client(gateway).chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}],
                                                   temperature=0.5, max_tokens=20)
    assert resp.choices[0].message.content == "echo: hi"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "assistant"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (7, 3, 10)
    rec = upstream.take_one()
    assert rec.json["model"] == "stub-model"
    assert rec.json["temperature"] == 0.5
    assert rec.json["max_tokens"] == 20
    assert rec.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the server's key, never the client's


def test_async_chat(gateway: RunningServer) -> None:
    async def go() -> str | None:
        async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0) as c:
            r = await c.chat.completions.create(model="assistant", messages=[{"role": "user", "content": "async"}])
            return r.choices[0].message.content

    assert asyncio.run(go()) == "echo: async"


def test_stream_with_usage(gateway: RunningServer) -> None:
    chunks = list(client(gateway).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "streamed"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: streamed"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 10
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_has_no_usage_chunk(gateway: RunningServer) -> None:
    chunks = list(client(gateway).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "x"}], stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def test_async_stream(gateway: RunningServer) -> None:
    async def go() -> str:
        async with openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0) as c:
            s = await c.chat.completions.create(model="assistant", stream=True,
                                                messages=[{"role": "user", "content": "a-stream"}])
            return "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])

    assert asyncio.run(go()) == "echo: a-stream"


def test_tools_non_stream_and_stream(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    c = client(gateway)
    msgs = [{"role": "user", "content": "weather in Paris?"}]
    resp = c.chat.completions.create(model="assistant", messages=msgs, tools=[WEATHER], tool_choice="auto")
    call = resp.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "get_weather", '{"city": "Paris"}')
    assert resp.choices[0].finish_reason == "tool_calls"
    assert upstream.take()[0].json["tools"][0]["function"]["name"] == "get_weather"
    with c.chat.completions.stream(model="assistant", messages=msgs, tools=[WEATHER]) as s:
        final = s.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert (streamed.id, streamed.function.name, streamed.function.arguments) == \
        ("call_1", "get_weather", '{"city": "Paris"}')
    # the tool result goes back through the gateway as a tool message
    follow = c.chat.completions.create(model="assistant", tools=[WEATHER], messages=[
        *msgs, resp.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])
    assert follow.choices[0].message.content == "echo: sunny"
    sent = upstream.take()[-1].json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1",
                                                                      "content": "sunny"}


def test_response_format_reaches_the_upstream(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    client(gateway).chat.completions.create(model="assistant", messages=[{"role": "user", "content": "j"}],
                                            response_format={"type": "json_schema", "json_schema": {
                                                "name": "A", "schema": schema, "strict": True}})
    assert upstream.take_one().json["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "A", "schema": schema, "strict": True}}


def test_embeddings_float_and_base64(gateway: RunningServer) -> None:
    from aixpy import embeddings

    texts = ["alpha beta gamma", "a different sentence entirely"]
    expected = embeddings.new({"provider": "hash", "hash": {"dimensions": 64}}).embed_batch(texts)
    assert expected[0] != expected[1]
    c = client(gateway)
    default = c.embeddings.create(model="hash-bow", input=texts)  # the SDK asks for base64
    as_floats = c.embeddings.create(model="hash-bow", input=texts, encoding_format="float")
    for resp in (default, as_floats):
        assert [d.index for d in resp.data] == [0, 1]
        for got, want in zip(resp.data, expected, strict=True):
            assert got.embedding == pytest.approx(want, abs=1e-6)
    assert default.usage.prompt_tokens > 0


def test_models_lists_what_the_key_may_use(gateway: RunningServer) -> None:
    from tests.serve.conftest import LIMITED_KEY

    assert [m.id for m in client(gateway).models.list()] == ["assistant", "other", "hash-bow"]
    assert [m.id for m in client(gateway, LIMITED_KEY).models.list()] == ["other"]


def test_aixpy_openai_compatible_provider_in_front_of_the_gateway(gateway: RunningServer) -> None:
    from aixpy import llm

    with llm.new("openai_compatible:assistant", endpoint=gateway.url + "/v1", api_key=KEY) as model:
        assert model.chat("front").text == "echo: front"
        with model.stream("front-stream") as s:
            events = list(s)
        listed = model.list_models()
    resp = s.get_response()
    assert resp.text == "echo: front-stream"
    assert resp.usage is not None
    assert resp.usage.total_tokens == 10
    assert events[-1].kind in ("finish", "usage")
    assert listed == ["assistant", "other", "hash-bow"]
