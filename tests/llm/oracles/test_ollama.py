"""Wire oracle, Ollama native API: the official ``ollama`` Python client vs our codec and provider.

Request: ``POST /api/chat``, no auth header on either side, content type, and the body after this
normalisation (every difference, and why):

1. ``tools: []`` — ``ollama`` 0.6.3 always sends the key, empty when there are no tools; absent and
   empty mean the same (no tools).
2. Correlation fields ``ollama`` 0.6.3's ``Message`` model does not declare, which the SDK therefore
   drops and we send: ``tool_calls[].id`` / ``.type`` and ``tool_calls[].function.index`` on replayed
   assistant calls, ``tool_call_id`` on tool results (current Ollama servers emit and read them; Go's JSON
   decoding ignores unknown fields on older ones). They are checked for their values, then removed.

The logical call, not a normalisation: Ollama has no ``tool_choice``. Ours maps ``none`` to no tools and
a named tool to that tool alone (``auto``/``required`` send all), which is what the SDK user writes.
Images: bytes only (Ollama cannot fetch a URL), sent as standard base64 by both.

Reading: ``ollama`` 0.6.3 drops tool-call ids from replies too, so tool calls are compared as
``(name, arguments)`` and our ids are checked against the reply bytes (an ``id`` when present, else
``call_{index}``). ``done_reason`` ``stop`` with tool calls is ``tool_calls``; usage is
``(prompt_eval_count, eval_count)``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy.llm.codecs import ollama as codec
from aixpy.llm.types import fold_stream

from ._oracle import (
    ASK_WEATHER,
    PNG,
    REPORT_SCHEMA,
    SYSTEM,
    TIME_PARAMS,
    TOOL_RESULT,
    WEATHER_PARAMS,
    Outcome,
    WireExpectation,
    calls,
    finish,
    ours,
    run_case,
    scenario,
)
from ._server import RecordingServer, Reply

ollama = pytest.importorskip("ollama")

MODEL = "qwen3:8b"
WANT = WireExpectation("/api/chat", absent=("authorization", "x-api-key", "x-goog-api-key"))
FINISH = {"stop": "stop", "length": "length", "load": "other", "unload": "other"}

OL_WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather of a city.",
                                               "parameters": WEATHER_PARAMS}}
OL_TIME = {"type": "function", "function": {"name": "get_time", "description": "Local time of a timezone.",
                                            "parameters": TIME_PARAMS}}


def sdk_kwargs(name: str) -> dict[str, Any]:
    """``Client.chat`` keyword arguments for the logical call ``name``."""
    user_hi = [{"role": "user", "content": "Hi"}]
    if name == "plain":
        return {"messages": user_hi}
    if name == "system":
        return {"messages": [{"role": "system", "content": SYSTEM}, *user_hi]}
    if name == "multi_turn_tools":
        return {"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ASK_WEATHER},
            {"role": "assistant", "content": "Let me check.",
             "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": TOOL_RESULT, "tool_name": "get_weather"},
        ], "tools": [OL_WEATHER]}
    if name.startswith("tools_"):
        tools = {"auto": [OL_WEATHER, OL_TIME], "required": [OL_WEATHER, OL_TIME], "named": [OL_WEATHER],
                 "none": None}[name.removeprefix("tools_")]
        return {"messages": [{"role": "user", "content": "Weather in Paris, and the time there?"}], "tools": tools}
    if name == "json_object":
        return {"messages": [{"role": "system", "content": "Answer in JSON."},
                             {"role": "user", "content": ASK_WEATHER}], "format": "json"}
    if name == "json_schema":
        return {"messages": [{"role": "user", "content": ASK_WEATHER}], "format": copy.deepcopy(REPORT_SCHEMA)}
    if name == "sampling":
        return {"messages": [{"role": "user", "content": "Count to five."}],
                "options": {"temperature": 0.3, "num_predict": 64, "top_p": 0.9, "stop": ["\n\n", "END"], "seed": 42}}
    if name == "image_bytes":
        return {"messages": [{"role": "user", "content": "What is in this image?", "images": [PNG]}]}
    raise KeyError(name)


def normalize_sdk(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    if body.get("tools") == []:
        body.pop("tools")  # point 1
    return body


def normalize_ours(body: dict[str, Any]) -> dict[str, Any]:
    """Point 1, and point 2 after checking the values of the fields removed."""
    body = normalize_sdk(body)
    call_ids: list[str] = []
    for message in body["messages"]:
        for index, call in enumerate(message.get("tool_calls", [])):
            assert call.pop("type") == "function"
            call_ids.append(call.pop("id"))
            assert call["function"].pop("index") == index
        if message["role"] == "tool":
            assert message.pop("tool_call_id") in call_ids
    return body


def fold(chunks: Iterable[Any]) -> Outcome:
    """``ChatResponse`` s (one, or a stream's lines) as the SDK parsed them."""
    text: list[str] = []
    tool_calls: list[tuple[str | None, str, Any]] = []
    reason = counts = model = None
    for chunk in chunks:
        model = model or chunk.model
        text.append(chunk.message.content or "")
        tool_calls += [(None, c.function.name, dict(c.function.arguments)) for c in chunk.message.tool_calls or []]
        if chunk.done:
            reason = chunk.done_reason or "stop"
            counts = (chunk.prompt_eval_count or 0, chunk.eval_count or 0, 0)
    return Outcome("".join(text), calls(tool_calls), finish(reason, FINISH, bool(tool_calls)), counts, model)


def without_ids(outcome: Outcome) -> Outcome:
    return replace(outcome, tool_calls=tuple(("", name, args) for _, name, args in outcome.tool_calls))


def reply_ids(raw: bytes, stream: bool) -> list[str]:
    """Tool-call ids as our contract reads them from the reply bytes: ``id``, else ``call_{index}``."""
    found: list[str] = []
    for line in raw.splitlines() if stream else [raw]:
        for call in (json.loads(line).get("message") or {}).get("tool_calls") or []:
            found.append(call.get("id") or f"call_{len(found)}")
    return found


def codec_outcome(raw: bytes, stream: bool) -> Outcome:
    if not stream:
        return ours(codec.parse_response(raw))
    parser = codec.StreamParser()
    return ours(fold_stream(e for line in raw.splitlines() if line.strip() for e in parser.feed(line)))


CASES = [  # (scenario, reply, stream)
    ("plain", "ollama_chat_text.json", False),
    ("system", "ollama_chat_text.json", False),
    ("multi_turn_tools", "ollama_chat_text.json", False),
    ("tools_auto", "ollama_chat_tools.json", False),
    ("tools_required", "ollama_chat_tools.json", False),
    ("tools_named", "ollama_chat_tools.json", False),
    ("tools_none", "ollama_chat_text.json", False),
    ("json_object", "ollama_chat_text.json", False),
    ("json_schema", "ollama_chat_text.json", False),
    ("sampling", "ollama_chat_text.json", False),
    ("image_bytes", "ollama_chat_text.json", False),
    ("plain", "ollama_chat_text.ndjson", True),
    ("tools_auto", "ollama_chat_tools.ndjson", True),
    ("multi_turn_tools", "ollama_chat_text.ndjson", True),
]


@pytest.fixture(scope="module")
def sdk(_recording_server: RecordingServer) -> Iterator[Any]:
    client = ollama.Client(host=_recording_server.url)
    yield client
    client._client.close()  # ollama 0.6.3 has no public close()


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = llm.new(f"ollama:{MODEL}", endpoint=server.url, environ={})
    yield model
    model.close()


def sdk_call(client: Any, name: str, stream: bool) -> Outcome:
    if not stream:
        return fold([client.chat(model=MODEL, **sdk_kwargs(name))])
    return fold(client.chat(model=MODEL, stream=True, **sdk_kwargs(name)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'stream' if c[2] else 'json'}")
def test_same_request_and_reading(server: RecordingServer, sdk: Any, provider: llm.ChatModel,
                                  case: tuple[str, str, bool]) -> None:
    name, reply_name, stream = case
    req = scenario(name, MODEL)
    reply = Reply.fixture(reply_name)
    result = run_case(server, reply=reply, req=req, stream=stream, sdk_call=lambda: sdk_call(sdk, name, stream),
                      model=provider,
                      codec_body=codec.build_request(req, stream=stream),
                      codec_parse=lambda raw: codec_outcome(raw, stream), want_sdk=WANT,
                      normalize_sdk=normalize_sdk, normalize_ours=normalize_ours, comparable=without_ids)
    assert [c[0] for c in result.ours.tool_calls] == reply_ids(reply.raw, stream)
    assert [c[0] for c in result.codec.tool_calls] == reply_ids(reply.raw, stream)


ASYNC_CASES = [("multi_turn_tools", "ollama_chat_tools.json", False), ("tools_auto", "ollama_chat_tools.ndjson", True)]


@pytest.mark.parametrize("case", ASYNC_CASES, ids=lambda c: f"{c[0]}-{'stream' if c[2] else 'json'}")
def test_async_provider_sends_and_reads_the_same(server: RecordingServer, sdk: Any,
                                                 case: tuple[str, str, bool]) -> None:
    """The async half of our provider (``achat``/``astream``) against the same SDK oracle."""
    name, reply_name, stream = case
    req = scenario(name, MODEL)
    reply = Reply.fixture(reply_name)
    result = run_case(server, reply=reply, req=req, stream=stream, asynchronous=True,
                      sdk_call=lambda: sdk_call(sdk, name, stream),
                      make_model=lambda: llm.new(f"ollama:{MODEL}", endpoint=server.url, environ={}),
                      codec_body=codec.build_request(req, stream=stream),
                      codec_parse=lambda raw: codec_outcome(raw, stream), want_sdk=WANT,
                      normalize_sdk=normalize_sdk, normalize_ours=normalize_ours, comparable=without_ids)
    assert [c[0] for c in result.ours.tool_calls] == reply_ids(reply.raw, stream)
