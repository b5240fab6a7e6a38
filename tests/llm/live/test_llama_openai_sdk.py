"""llama-server driven by the official ``openai`` and ``anthropic`` SDKs.

These tests prove the server (and our template) work before our own providers are judged against
it, and they document what llama-server answers. Nothing asserts on the text: the model is a base
model. See ``_scenarios.py`` for how finish reasons are made certain.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from . import _scenarios as sc
from ._server import LlamaServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def oai(llama_server: LlamaServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=llama_server.openai_url, api_key=llama_server.api_key, max_retries=0,
                           timeout=60)
    with client:
        yield client


@pytest.fixture(scope="module")
def claude(llama_server: LlamaServer) -> Iterator[anthropic.Anthropic]:
    # the Anthropic SDK appends /v1/messages itself: base URL without /v1. This SDK version has no
    # ``temperature`` argument, so the tests send it with extra_body.
    client = anthropic.Anthropic(base_url=llama_server.base_url, api_key=llama_server.api_key, max_retries=0,
                                 timeout=60)
    with client:
        yield client


# --------------------------------------------------------------------------- OpenAI chat completions


def test_openai_models_list_names_the_alias(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    ids = [m.id for m in oai.models.list().data]
    assert llama_server.model in ids


def test_openai_chat(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    r = oai.chat.completions.create(model=llama_server.model, messages=[{"role": "user", "content": sc.PROMPT}],
                                    max_tokens=12, temperature=0, seed=sc.SEED)
    assert r.object == "chat.completion"
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert not choice.message.tool_calls
    assert choice.finish_reason in ("stop", "length")
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    if choice.finish_reason == "length":
        assert r.usage.completion_tokens == 12


def test_openai_ignore_eos_gives_length(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    r = oai.chat.completions.create(model=llama_server.model, messages=[{"role": "user", "content": sc.PROMPT}],
                                    max_tokens=6, temperature=0, seed=sc.SEED, extra_body={"ignore_eos": True})
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None
    assert r.usage.completion_tokens == 6


def test_openai_json_schema_gives_stop(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    r = oai.chat.completions.create(
        model=llama_server.model, messages=[{"role": "user", "content": "Is the sea blue? Answer in JSON."}],
        max_tokens=32, temperature=0, seed=sc.SEED,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": sc.BOOL_SCHEMA}})
    assert r.choices[0].finish_reason == "stop"
    content = r.choices[0].message.content
    assert content is not None
    data = json.loads(content)  # the grammar guarantees the shape, whatever the model "thinks"
    assert set(data) == {"ok"}
    assert isinstance(data["ok"], bool)


def test_openai_stream_with_usage(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    chunks = list(oai.chat.completions.create(
        model=llama_server.model, messages=[{"role": "user", "content": sc.PROMPT}], max_tokens=10,
        temperature=0, seed=sc.SEED, stream=True, stream_options={"include_usage": True},
        extra_body={"ignore_eos": True}))
    assert chunks
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    # include_usage: one extra final chunk without choices that carries the usage
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens > 0
    assert last.usage.completion_tokens == 10
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["length"]
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text  # ten tokens of something
    assert len({c.id for c in chunks}) == 1


def test_openai_tool_call(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    r = oai.chat.completions.create(model=llama_server.model, messages=sc.openai_tool_history(),
                                    tools=[sc.OPENAI_TOOL], stop=sc.TOOL_STOP, max_tokens=64, temperature=0,
                                    seed=sc.SEED)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id  # llama-server makes up a random id
    assert call.function.name == sc.TOOL_NAME
    assert isinstance(json.loads(call.function.arguments), dict)
    assert r.usage is not None
    assert r.usage.completion_tokens > 0


def test_openai_tool_call_streamed(oai: openai.OpenAI, llama_server: LlamaServer) -> None:
    stream = oai.chat.completions.create(
        model=llama_server.model, messages=sc.openai_tool_history(), tools=[sc.OPENAI_TOOL],
        stop=sc.TOOL_STOP, max_tokens=64, temperature=0, seed=sc.SEED, stream=True,
        stream_options={"include_usage": True})
    calls: dict[int, dict[str, Any]] = {}
    finishes: list[str] = []
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for d in choice.delta.tool_calls or ():
                call = calls.setdefault(d.index, {"id": None, "name": None, "args": ""})
                call["id"] = call["id"] or d.id
                if d.function is not None:
                    call["name"] = call["name"] or d.function.name
                    call["args"] += d.function.arguments or ""
    assert finishes == ["tool_calls"]
    assert list(calls) == [0]
    assert calls[0]["id"]
    assert calls[0]["name"] == sc.TOOL_NAME
    assert isinstance(json.loads(calls[0]["args"]), dict)
    assert usage is not None
    assert usage.completion_tokens > 0


def test_openai_wrong_key_is_401(llama_server: LlamaServer) -> None:
    with openai.OpenAI(base_url=llama_server.openai_url, api_key="wrong", max_retries=0) as bad, \
            pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model=llama_server.model, messages=[{"role": "user", "content": "hi"}],
                                    max_tokens=1)
    assert info.value.status_code == 401


# --------------------------------------------------------------------------- Anthropic messages


def test_anthropic_message(claude: anthropic.Anthropic, llama_server: LlamaServer) -> None:
    m = claude.messages.create(model=llama_server.model, max_tokens=12, extra_body={"temperature": 0},
                               messages=[{"role": "user", "content": sc.PROMPT}])
    assert m.type == "message"
    assert m.role == "assistant"
    assert [b.type for b in m.content] == ["text"]
    assert m.stop_reason in ("end_turn", "max_tokens")
    assert m.usage.input_tokens > 0
    assert 0 < m.usage.output_tokens <= 12
    if m.stop_reason == "max_tokens":
        assert m.usage.output_tokens == 12


def test_anthropic_system_prompt_counts(claude: anthropic.Anthropic, llama_server: LlamaServer) -> None:
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": sc.PROMPT}]
    plain = claude.messages.count_tokens(model=llama_server.model, messages=messages)
    with_system = claude.messages.count_tokens(model=llama_server.model, messages=messages,
                                               system="You are a poet.")
    assert 0 < plain.input_tokens < with_system.input_tokens


def test_anthropic_stream_event_sequence(claude: anthropic.Anthropic, llama_server: LlamaServer) -> None:
    with claude.messages.stream(model=llama_server.model, max_tokens=10, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": sc.PROMPT}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    raw = [k for k in kinds if k in {"message_start", "content_block_start", "content_block_delta",
                                     "content_block_stop", "message_delta", "message_stop"}]
    assert raw[0] == "message_start"
    assert raw[1] == "content_block_start"
    assert raw[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in raw
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert [b.type for b in final.content] == ["text"]
    assert final.usage.input_tokens > 0
    assert final.usage.output_tokens > 0


def test_anthropic_tool_use(claude: anthropic.Anthropic, llama_server: LlamaServer) -> None:
    m = claude.messages.create(model=llama_server.model, max_tokens=64, extra_body={"temperature": 0},
                               messages=sc.anthropic_tool_history(),
                               tools=[sc.ANTHROPIC_TOOL], stop_sequences=sc.TOOL_STOP)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1
    use = uses[0]
    assert use.id
    assert use.name == sc.TOOL_NAME
    assert isinstance(use.input, dict)
    assert m.usage.output_tokens > 0


def test_anthropic_tool_use_streamed(claude: anthropic.Anthropic, llama_server: LlamaServer) -> None:
    with claude.messages.stream(model=llama_server.model, max_tokens=64, extra_body={"temperature": 0},
                                messages=sc.anthropic_tool_history(),
                                tools=[sc.ANTHROPIC_TOOL], stop_sequences=sc.TOOL_STOP) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
    assert len(starts) == 1
    json_deltas = [e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert json_deltas, "the tool input arrives as input_json_delta events"
    assert final.stop_reason == "tool_use"
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 1
    assert uses[0].name == sc.TOOL_NAME
    assert isinstance(uses[0].input, dict)


def test_anthropic_wrong_key_is_401(llama_server: LlamaServer) -> None:
    with anthropic.Anthropic(base_url=llama_server.base_url, api_key="wrong", max_retries=0) as bad, \
            pytest.raises(anthropic.AuthenticationError) as info:
        bad.messages.create(model=llama_server.model, max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401


# --------------------------------------------------------------------------- connection handling


def test_server_closes_the_connection_after_a_stream(llama_server: LlamaServer) -> None:
    """llama-server closes the TCP connection right after every streamed response, although the
    response advertises keep-alive (``Keep-Alive: timeout=5, max=100``, no ``Connection: close``).
    A client that pools that connection and reuses it before the FIN arrives gets "Server
    disconnected without sending a response" — see test_call_right_after_a_stream in
    test_llama_aixpy.py."""
    body = json.dumps({"model": llama_server.model, "max_tokens": 2, "stream": True,
                       "messages": [{"role": "user", "content": sc.PROMPT}]}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {llama_server.api_key}"
            f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    host, port = llama_server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body)
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of the chunked body
            part = sock.recv(65536)
            assert part, "closed before the response was complete"
            data += part
        headers = data.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert "keep-alive: timeout=" in headers
        assert "connection: close" not in headers
        assert b"data: [DONE]" in data
        assert sock.recv(1) == b"", "expected the server to close the connection"
