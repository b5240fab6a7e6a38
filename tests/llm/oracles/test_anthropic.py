"""Wire oracle, Anthropic Messages: the official ``anthropic`` SDK vs our codec and provider.

Allowed differences, each explicit:

* **Auth header.** ``anthropic`` 2.12 sends the API key as ``Authorization: Bearer <key>``; we send
  the documented ``x-api-key: <key>`` (docs.anthropic.com, "API overview"). The same key must travel,
  and we must not send an ``Authorization`` header at all.
* **anthropic-version.** The SDK pins its own release's version (``anthropic._constants
  .ANTHROPIC_API_VERSION``, 2026-10-21 in 2.12); we pin ``2023-06-01``, the version whose request and
  stream shapes our codec implements (codec ``API_VERSION``). Both sides must send one.
* **max_tokens.** Required by the API; a logical call without one is ours with
  ``DEFAULT_MAX_TOKENS`` (4096), so the SDK user passes 4096 explicitly.
* **seed.** The Messages API has none; ours drops ``ChatRequest.seed`` (documented in the codec), the
  SDK user cannot pass it.
* **temperature / top_p.** ``anthropic`` 2.12 (API 2026-10-21) has no sampling parameters at all in
  ``messages.create`` (Claude Opus 4.7 and later reject them; Sonnet/Haiku 4.5, Opus 4.1 and Sonnet 4.6
  reject ``temperature`` and ``top_p`` together). The SDK user sends ``temperature`` through
  ``extra_body``, and the logical "sampling" call here sets ``temperature`` only. Our codec's handling of
  both together and of sampling on Opus 4.7+ is pinned by the tests at the bottom.
* **JSON mode** is a forced tool (documented in the codec): the SDK user declares the same tool and
  forces it. Reading the reply, that tool's input is the answer *text* (compact JSON) with finish
  ``stop``, not a tool call.
* **Reading:** ``thinking`` blocks are not part of the text (ours skips them); usage input is
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` (our usage contract),
  cached = ``cache_read_input_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy.llm.codecs import anthropic_messages as codec
from aixpy.llm.types import fold_stream

from ._oracle import (
    ASK_WEATHER,
    IMAGE_URL,
    PNG_B64,
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
    sse_events,
)
from ._server import RecordingServer, Reply

anthropic = pytest.importorskip("anthropic")
from anthropic._constants import ANTHROPIC_API_VERSION as SDK_API_VERSION  # noqa: E402

KEY = "sk-ant-api03-oracle-0123456789abcdefghijklmnopqrstuv"
MODEL = "claude-sonnet-4-6"
JSON_TOOL_DESCRIPTION = "Give your final answer by calling this tool; its input is the answer."

WANT_SDK = WireExpectation("/v1/messages", headers={"anthropic-version": SDK_API_VERSION})
WANT_OURS = WireExpectation("/v1/messages", headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
                            absent=("authorization",))

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "refusal": "content_filter", "pause_turn": "other", "model_context_window_exceeded": "length"}

AN_WEATHER = {"name": "get_weather", "description": "Current weather of a city.", "input_schema": WEATHER_PARAMS}
AN_TIME = {"name": "get_time", "description": "Local time of a timezone.", "input_schema": TIME_PARAMS}


def sdk_kwargs(name: str) -> dict[str, Any]:
    """``messages.create`` keyword arguments for the logical call ``name``."""
    base: dict[str, Any] = {"max_tokens": codec.DEFAULT_MAX_TOKENS}
    if name == "plain":
        return {**base, "messages": [{"role": "user", "content": "Hi"}]}
    if name == "system":
        return {**base, "system": SYSTEM, "messages": [{"role": "user", "content": "Hi"}]}
    if name == "multi_turn_tools":
        return {**base, "system": SYSTEM, "tools": [AN_WEATHER], "messages": [
            {"role": "user", "content": ASK_WEATHER},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": TOOL_RESULT}]},
        ]}
    if name.startswith("tools_"):
        choice = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"},
                  "named": {"type": "tool", "name": "get_weather"}}[name.removeprefix("tools_")]
        return {**base, "tools": [AN_WEATHER, AN_TIME], "tool_choice": choice,
                "messages": [{"role": "user", "content": "Weather in Paris, and the time there?"}]}
    if name == "json_object":
        return {**base, "system": "Answer in JSON.", "messages": [{"role": "user", "content": ASK_WEATHER}],
                "tools": [{"name": "json_response", "input_schema": {"type": "object"},
                           "description": JSON_TOOL_DESCRIPTION}],
                "tool_choice": {"type": "tool", "name": "json_response"}}
    if name == "json_schema":
        return {**base, "messages": [{"role": "user", "content": ASK_WEATHER}],
                "tools": [{"name": "weather_report", "input_schema": REPORT_SCHEMA,
                           "description": JSON_TOOL_DESCRIPTION}],
                "tool_choice": {"type": "tool", "name": "weather_report"}}
    if name == "sampling":  # no seed (the API has none); temperature only through extra_body (see above)
        return {"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": 64,
                "stop_sequences": ["\n\n", "END"], "extra_body": {"temperature": 0.3}}
    if name == "image":
        return {**base, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        ]}]}
    raise KeyError(name)


def request(name: str) -> llm.ChatRequest:
    """Our side of the logical call ``name`` (``sampling`` without ``top_p``, see the module docstring)."""
    if name == "sampling":
        return llm.ChatRequest(MODEL, [llm.UserMessage("Count to five.")], temperature=0.3, max_tokens=64,
                               stop=["\n\n", "END"], seed=42)
    return scenario(name, MODEL)


def message_outcome(message: Any, json_tool: str | None) -> Outcome:
    """An SDK ``Message`` under the reading rules of the module docstring."""
    text: list[str] = []
    tool_calls: list[tuple[str | None, str, Any]] = []
    json_answered = False
    for block in message.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "tool_use" and block.name == json_tool:
            text.append(json.dumps(block.input, separators=(",", ":"), ensure_ascii=False))
            json_answered = True
        elif block.type == "tool_use":
            tool_calls.append((block.id, block.name, block.input))
    reason = finish(message.stop_reason, FINISH, bool(tool_calls))
    if json_answered and not tool_calls and reason == "tool_calls":
        reason = "stop"
    u = message.usage
    read, created = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
    return Outcome("".join(text), calls(tool_calls), reason, (u.input_tokens + read + created, u.output_tokens, read),
                   message.model)


@dataclass(frozen=True)
class Case:
    scenario: str
    reply: str
    stream: bool = False

    @property
    def id(self) -> str:
        return f"{self.scenario}-{'stream' if self.stream else 'json'}-{self.reply.split('.')[0]}"


CASES = [
    Case("plain", "anthropic_text.json"),
    Case("system", "anthropic_text.json"),
    Case("multi_turn_tools", "anthropic_text.json"),
    Case("tools_auto", "anthropic_tool_use.json"),
    Case("tools_required", "anthropic_tool_use.json"),
    Case("tools_named", "anthropic_tool_use.json"),
    Case("tools_none", "anthropic_text.json"),
    Case("json_object", "anthropic_text.json"),
    Case("json_schema", "anthropic_json.json"),
    Case("sampling", "anthropic_text.json"),
    Case("image", "anthropic_text.json"),
    Case("plain", "anthropic_text.sse", stream=True),
    Case("tools_auto", "anthropic_tool_use.sse", stream=True),
    Case("tools_auto", "anthropic_thinking_tools.sse", stream=True),
    Case("json_schema", "anthropic_json.sse", stream=True),
]


@pytest.fixture(scope="module")
def sdk(_recording_server: RecordingServer) -> Iterator[Any]:
    client = anthropic.Anthropic(api_key=KEY, base_url=_recording_server.url, max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = llm.new(f"anthropic:{MODEL}", api_key=KEY, endpoint=server.url, environ={})
    yield model
    model.close()


def sdk_call(client: Any, kwargs: dict[str, Any], stream: bool, json_tool: str | None) -> Outcome:
    """Non-streamed: ``messages.create``. Streamed: the SDK's accumulator (``get_final_message``)."""
    if not stream:
        return message_outcome(client.messages.create(model=MODEL, **kwargs), json_tool)
    with client.messages.stream(model=MODEL, **kwargs) as s:
        return message_outcome(s.get_final_message(), json_tool)


def codec_outcome(raw: bytes, stream: bool, json_tool: str | None) -> Outcome:
    if not stream:
        return ours(codec.parse_response(raw, json_tool=json_tool))
    parser = codec.StreamParser(json_tool=json_tool)
    return ours(fold_stream(e for event, data in sse_events(raw) for e in parser.feed(event, data)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_request_and_reading(server: RecordingServer, sdk: Any, provider: llm.ChatModel, case: Case) -> None:
    req = request(case.scenario)
    json_tool = codec.json_tool_name(req)
    result = run_case(
        server, reply=Reply.fixture(case.reply), req=req, stream=case.stream,
        sdk_call=lambda: sdk_call(sdk, sdk_kwargs(case.scenario), case.stream, json_tool),
        model=provider,
        codec_body=codec.build_request(req, stream=case.stream),
        codec_parse=lambda raw: codec_outcome(raw, case.stream, json_tool),
        want_sdk=WANT_SDK, want_ours=WANT_OURS)
    # the same key travels on both sides, each in its own header (see the module docstring)
    sdk_auth = result.sdk_request.headers
    assert sdk_auth.get("x-api-key") == KEY or sdk_auth.get("authorization") == f"Bearer {KEY}"
    if case.scenario == "json_schema":
        assert json.loads(result.response.text)["city"] == "Paris"
        assert result.response.tool_calls == []


ASYNC_CASES = [Case("multi_turn_tools", "anthropic_tool_use.json"),
               Case("tools_auto", "anthropic_thinking_tools.sse", stream=True)]


@pytest.mark.parametrize("case", ASYNC_CASES, ids=lambda c: c.id)
def test_async_provider_sends_and_reads_the_same(server: RecordingServer, sdk: Any, case: Case) -> None:
    """The async half of our provider (``achat``/``astream``) against the same SDK oracle."""
    req = request(case.scenario)
    json_tool = codec.json_tool_name(req)
    run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream, asynchronous=True,
             sdk_call=lambda: sdk_call(sdk, sdk_kwargs(case.scenario), case.stream, json_tool),
             make_model=lambda: llm.new(f"anthropic:{MODEL}", api_key=KEY, endpoint=server.url, environ={}),
             codec_body=codec.build_request(req, stream=case.stream),
             codec_parse=lambda raw: codec_outcome(raw, case.stream, json_tool),
             want_sdk=WANT_SDK, want_ours=WANT_OURS)


# --------------------------------------------------------------------------- sampling parameters the API rejects


def _body_or_refusal(req: llm.ChatRequest) -> dict[str, Any] | None:
    """Our body, or ``None`` when the codec refuses the request up front (an equally good fix)."""
    from aixpy.errors import InvalidInputError

    try:
        return codec.build_request(req, stream=False)
    except InvalidInputError:
        return None


def test_temperature_and_top_p_are_never_sent_together() -> None:
    """Current Claude models answer 400 '`temperature` and `top_p` cannot both be specified for this model'."""
    body = _body_or_refusal(llm.ChatRequest(MODEL, [llm.UserMessage("Hi")], temperature=0.3, top_p=0.9))
    assert body is None or not ("temperature" in body and "top_p" in body)


def test_no_sampling_parameters_for_models_that_removed_them() -> None:
    """Claude Opus 4.7+ removed sampling parameters (400 '`temperature` is deprecated for this model');
    ``anthropic`` 2.12 has none."""
    body = _body_or_refusal(llm.ChatRequest("claude-opus-4-7", [llm.UserMessage("Hi")], temperature=0.3))
    assert body is None or "temperature" not in body
