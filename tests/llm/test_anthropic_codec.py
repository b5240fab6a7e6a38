"""Anthropic Messages codec, on bodies and SSE streams shaped like the Messages API's."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from aixpy.errors import (
    InvalidInputError,
    InvalidRequestError,
    InvalidToolArgumentsError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm.codecs import anthropic_messages as am
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ImagePart,
    ResponseFormat,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    fold_stream,
)

from ._fixtures import fixture_bytes, read_sse

WEATHER = ToolSpec("get_weather", "Get the current weather in a given location",
                   {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}


def stream(pairs: list[tuple[str | None, str]], *, json_tool: str | None = None) -> list[StreamEvent]:
    parser = am.StreamParser(json_tool=json_tool)
    events = [e for name, data in pairs for e in parser.feed(name, data)]
    assert parser.done
    return events


def sse(*payloads: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(p["type"], json.dumps(p)) for p in payloads]


def message_start(usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage or {"input_tokens": 20, "output_tokens": 1}}}


def message_end(stop_reason: str, output_tokens: int) -> list[dict[str, Any]]:
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
             "usage": {"output_tokens": output_tokens}},
            {"type": "message_stop"}]


def message(content: list[dict[str, Any]], stop_reason: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}


# --------------------------------------------------------------------------- request


def test_headers() -> None:
    assert am.headers("sk-ant-x") == {"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01",
                                      "content-type": "application/json"}
    assert am.headers("k", beta=["a-1", "b-2"])["anthropic-beta"] == "a-1,b-2"


def test_build_request_every_feature() -> None:
    req = ChatRequest(
        model="claude-sonnet-4-20250514",
        messages=[
            SystemMessage("You are a weather bot."),
            UserMessage("Weather in Paris and Oslo?"),
            UserMessage([TextPart("And this photo?"), ImagePart.from_bytes(b"\x89PNG", "image/png"),
                         ImagePart.from_url("https://example.com/sky.jpg"),
                         ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ")]),
            AssistantMessage("Let me check.", [ToolCall("toolu_1", "get_weather", {"location": "Paris"}),
                                               ToolCall("toolu_2", "get_weather", {"location": "Oslo"})]),
            ToolMessage("21°C, sunny", "toolu_1", name="get_weather"),
            ToolMessage("station offline", "toolu_2", is_error=True),
            SystemMessage("Answer in one line."),
            UserMessage("Summarise."),
            AssistantMessage(""),  # empty text is dropped
        ],
        temperature=0.3, top_p=0.8, stop=["\n\nHuman:"], seed=1, tools=[WEATHER], tool_choice="required",
        extra={"metadata": {"user_id": "u-1"}},
    )
    body = am.build_request(req, stream=True)
    assert body == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "You are a weather bot."}, {"type": "text", "text": "Answer in one line."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Oslo?"},
                {"type": "text", "text": "And this photo?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21°C, sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "station offline", "is_error": True},
                {"type": "text", "text": "Summarise."},
            ]},
        ],
        "temperature": 0.3, "stop_sequences": ["\n\nHuman:"],  # top_p is never sent with temperature
        "tools": [{"name": "get_weather", "description": "Get the current weather in a given location",
                   "input_schema": WEATHER.parameters}],
        "tool_choice": {"type": "any"},
        "stream": True,
        "metadata": {"user_id": "u-1"},
    }
    assert "seed" not in body


def test_build_request_minimal_single_system_string_and_max_tokens() -> None:
    req = ChatRequest("claude-3-5-haiku-latest", [SystemMessage("Be brief."), UserMessage("Hi")], max_tokens=50)
    assert am.build_request(req, stream=False) == {
        "model": "claude-3-5-haiku-latest", "max_tokens": 50, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(("model", "accepts"), [
    ("claude-sonnet-4-6", True), ("claude-sonnet-4-5-20250929", True), ("claude-haiku-4-5", True),
    ("claude-opus-4-1-20250805", True), ("claude-opus-4-6", True), ("claude-sonnet-4-20250514", True),
    ("claude-opus-4-20250514", True), ("claude-3-5-haiku-20241022", True), ("claude-3-7-sonnet-latest", True),
    ("claude-mythos-preview", True), ("my-proxy-model", True),
    ("claude-opus-4-7", False), ("claude-opus-4-8", False), ("claude-opus-4-7-20260416", False),
    ("anthropic.claude-opus-4-7-v1:0", False), ("claude-opus-4-7@20260416", False), ("Claude-Opus-4.7", False),
    ("claude-sonnet-5", False), ("claude-sonnet-5-5", False), ("claude-opus-5", False), ("claude-haiku-5-5", False),
    ("claude-fable-5-2", False), ("claude-mythos-5", False), ("claude-opus-10", False),
])
def test_accepts_sampling(model: str, accepts: bool) -> None:
    assert am.accepts_sampling(model) is accepts


@pytest.mark.parametrize(("model", "given", "sent"), [
    ("claude-sonnet-4-6", {"temperature": 0.3, "top_p": 0.9}, {"temperature": 0.3}),
    ("claude-sonnet-4-6", {"temperature": 0.0}, {"temperature": 0.0}),
    ("claude-sonnet-4-6", {"top_p": 0.9}, {"top_p": 0.9}),
    ("claude-sonnet-4-6", {}, {}),
    ("claude-opus-4-7", {"temperature": 0.3, "top_p": 0.9}, {}),
    ("claude-sonnet-5-5", {"top_p": 0.9}, {}),
])
def test_sampling_parameters(model: str, given: dict[str, float], sent: dict[str, float],
                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="aixpy.llm"):
        body = am.build_request(ChatRequest(model, [UserMessage("Hi")], **given), stream=False)
    assert {k: body[k] for k in ("temperature", "top_p", "top_k") if k in body} == sent
    dropped = given.keys() - sent.keys()
    assert bool(caplog.records) is bool(dropped)  # whatever is not sent is said, at debug level
    assert all(r.levelno == logging.DEBUG and model in r.getMessage() for r in caplog.records)
    assert all(name in caplog.text for name in dropped)


def test_extra_still_sends_sampling_parameters_as_given() -> None:
    req = ChatRequest("claude-opus-4-7", [UserMessage("Hi")], temperature=0.3, extra={"top_k": 5})
    body = am.build_request(req, stream=False)
    assert "temperature" not in body
    assert body["top_k"] == 5


def test_tool_results_lead_a_merged_user_turn() -> None:
    req = ChatRequest("m", [AssistantMessage(tool_calls=[ToolCall("t1", "f", {})]), UserMessage("also this"),
                            ToolMessage("done", "t1")])
    turn = am.build_request(req, stream=False)["messages"][1]
    assert [b["type"] for b in turn["content"]] == ["tool_result", "text"]


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ("get_weather", {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice_mapping(choice: str, wire: dict[str, Any]) -> None:
    req = ChatRequest("m", [UserMessage("hi")], tools=[WEATHER], tool_choice=choice)
    assert am.build_request(req, stream=False)["tool_choice"] == wire


def test_json_schema_mode_forces_a_tool() -> None:
    req = ChatRequest("m", [UserMessage("Extract: Ann, 31")], response_format=ResponseFormat.json_schema("person",
                                                                                                      PERSON))
    body = am.build_request(req, stream=False)
    assert am.json_tool_name(req) == "person"
    assert body["tools"] == [{"name": "person", "input_schema": PERSON,
                              "description": "Give your final answer by calling this tool; its input is the answer."}]
    assert body["tool_choice"] == {"type": "tool", "name": "person"}


def test_json_object_mode_and_json_mode_next_to_user_tools() -> None:
    req = ChatRequest("m", [UserMessage("hi")], response_format=ResponseFormat.json_object())
    body = am.build_request(req, stream=False)
    assert body["tools"][0]["name"] == am.DEFAULT_JSON_TOOL == am.json_tool_name(req)
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    with_tools = ChatRequest("m", [UserMessage("hi")], tools=[WEATHER], tool_choice="auto",
                             response_format=ResponseFormat.json_schema("person", PERSON))
    body = am.build_request(with_tools, stream=False)
    assert [t["name"] for t in body["tools"]] == ["get_weather", "person"]
    assert body["tool_choice"] == {"type": "auto"}
    assert am.json_tool_name(ChatRequest("m", [UserMessage("hi")])) is None
    clash = ChatRequest("m", [UserMessage("hi")], tools=[ToolSpec("person")],
                        response_format=ResponseFormat.json_schema("person", PERSON))
    with pytest.raises(InvalidInputError, match="person"):
        am.build_request(clash, stream=False)


# --------------------------------------------------------------------------- non-streamed replies


def test_parse_tool_use_response() -> None:
    resp = am.parse_response(fixture_bytes("anthropic_tool_use.json"))
    assert resp == ChatResponse(
        text="I'll check the weather in San Francisco for you.",
        tool_calls=[ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather",
                             {"location": "San Francisco, CA", "unit": "celsius"})],
        finish_reason="tool_calls", usage=Usage(472, 89), model="claude-sonnet-4-20250514", provider="anthropic",
        id="msg_01Aq9w938a90dw8q", raw_finish_reason="tool_use")


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("refusal", "content_filter"),
    ("pause_turn", "other"),
])
def test_stop_reasons(stop_reason: str, expected: str) -> None:
    body = message([{"type": "text", "text": "x"}], stop_reason, {"input_tokens": 20, "output_tokens": 1})
    assert am.parse_response(body).finish_reason == expected
    events = stream(sse(message_start(), {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": "x"}},
                        {"type": "content_block_stop", "index": 0}, *message_end(stop_reason, 1)))
    assert fold_stream(events, provider="anthropic") == am.parse_response(body)


def test_cache_usage_is_part_of_input() -> None:
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 2048,
             "output_tokens": 142}
    assert am.parse_usage(usage) == Usage(2360, 142, cached_input_tokens=2048, cache_creation_tokens=300)
    assert am.parse_usage("nope") is None


def test_parse_response_errors() -> None:
    with pytest.raises(ResponseFormatError):
        am.parse_response(b"not json")
    with pytest.raises(ResponseFormatError, match="content"):
        am.parse_response({"id": "msg_1", "type": "message"})
    with pytest.raises(ServerError, match="Overloaded"):
        am.parse_response({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})


# --------------------------------------------------------------------------- streams


def test_stream_tool_use_folds_to_the_non_streamed_response() -> None:
    events = stream(read_sse("anthropic_tool_use.sse"))
    streamed = fold_stream(events, provider="anthropic")
    assert streamed == am.parse_response(fixture_bytes("anthropic_tool_use.json"))
    assert streamed.tool_calls[0].raw_arguments == '{"location": "San Francisco, CA", "unit": "celsius"}'
    tool_events = [e for e in events if e.kind == "tool_call"]
    assert {e.index for e in tool_events} == {0}
    assert (tool_events[0].tool_call_id, tool_events[0].tool_name) == ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    assert [e.usage for e in events if e.kind == "usage"] == [Usage(472, 2), Usage(472, 89)]


def test_stream_thinking_then_two_tools_gets_dense_indexes_and_cache_usage() -> None:
    events = stream(read_sse("anthropic_thinking_tools.sse"))
    assert sorted({e.index for e in events if e.kind == "tool_call"}) == [0, 1]
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 2048,
             "output_tokens": 142}
    body = {"id": "msg_01Xz7bQ4kXh3gJ2Yc8m5TQ2r", "type": "message", "role": "assistant",
            "model": "claude-opus-4-1-20250805", "stop_reason": "tool_use", "stop_sequence": None, "usage": usage,
            "content": [
                {"type": "thinking", "thinking": "The user wants two cities; call the tool twice.",
                 "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
                 "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_01QQfSNXQo3iq7tXxnqT2vAw", "name": "get_weather",
                 "input": {"location": "Berlin"}}]}
    streamed = fold_stream(events, provider="anthropic")
    assert streamed == am.parse_response(json.dumps(body))
    assert streamed.text == "Checking both."
    assert [c.arguments for c in streamed.tool_calls] == [{"location": "Paris"}, {"location": "Berlin"}]
    assert streamed.usage == Usage(2360, 142, cached_input_tokens=2048, cache_creation_tokens=300)


def test_json_mode_reply_is_text_in_both_paths() -> None:
    answer = {"name": "Ann", "age": 31}
    body = message([{"type": "tool_use", "id": "toolu_9", "name": "person", "input": answer}], "tool_use",
                   {"input_tokens": 40, "output_tokens": 15})
    parsed = am.parse_response(body, json_tool="person")
    assert (parsed.text, parsed.tool_calls, parsed.finish_reason) == ('{"name":"Ann","age":31}', [], "stop")
    assert parsed.raw_finish_reason == "tool_use"
    fragments = ['{"name": ', '"Ann", "ag', 'e": 31}']
    events = stream(sse(
        message_start({"input_tokens": 40, "output_tokens": 1}),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_9", "name": "person", "input": {}}},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": f}}
          for f in fragments),
        {"type": "content_block_stop", "index": 0},
        *message_end("tool_use", 15)), json_tool="person")
    assert fold_stream(events, provider="anthropic") == parsed
    assert json.loads(parsed.text) == answer


def test_stream_malformed_tool_json_raises_when_folded() -> None:
    events = stream(sse(
        message_start(),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "search", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"q": "a'}},
        {"type": "content_block_stop", "index": 0},
        *message_end("max_tokens", 4096)))
    with pytest.raises(ResponseFormatError, match="search"):
        fold_stream(events, provider="anthropic")
    parser = am.StreamParser(json_tool="person")
    parser.feed("content_block_start", json.dumps({"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "t", "name": "person", "input": {}}}))
    parser.feed("content_block_delta", json.dumps({"type": "content_block_delta", "index": 0, "delta": {
        "type": "input_json_delta", "partial_json": "{"}}))
    with pytest.raises(ResponseFormatError, match="person"):
        parser.feed("content_block_stop", '{"type": "content_block_stop", "index": 0}')


def test_stream_tool_input_given_whole_at_block_start() -> None:
    events = stream(sse(
        message_start(),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}},
        {"type": "content_block_stop", "index": 0}, *message_end("tool_use", 9)))
    assert fold_stream(events).tool_calls == [ToolCall("toolu_1", "f", {"a": 1})]


def test_stream_ping_unknown_events_and_missing_event_names() -> None:
    parser = am.StreamParser()
    assert parser.feed("ping", '{"type": "ping"}') == []
    assert parser.feed("some_future_event", '{"type": "some_future_event", "x": 1}') == []
    parser.feed(None, json.dumps(message_start()))
    parser.feed(None, json.dumps({"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}))
    (event,) = parser.feed(None, json.dumps({"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": "Hi"}}))
    assert event == StreamEvent.text_delta("Hi", model="claude-3-5-haiku-20241022", response_id="msg_1")
    assert parser.feed(None, json.dumps({"type": "content_block_delta", "index": 0, "delta": {
        "type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x"}}})) == []
    assert not parser.done
    assert parser.feed("message_stop", '{"type": "message_stop"}') == []
    assert parser.done


@pytest.mark.parametrize(("kind", "exc", "retryable"), [
    ("overloaded_error", ServerError, True), ("api_error", ServerError, True),
    ("rate_limit_error", RateLimitError, True), ("invalid_request_error", InvalidRequestError, False),
    ("brand_new_error", ProviderError, False),
])
def test_stream_error_event(kind: str, exc: type[ProviderError], retryable: bool) -> None:
    parser = am.StreamParser()
    parser.feed("message_start", json.dumps(message_start()))
    with pytest.raises(exc) as info:
        parser.feed("error", json.dumps({"type": "error", "error": {"type": kind, "message": "Overloaded"}}))
    assert info.value.provider == "anthropic"
    assert info.value.retryable is retryable


# --------------------------------------------------------------------------- errors and models


@pytest.mark.parametrize(("body", "expected"), [
    ({"type": "error", "error": {"type": "not_found_error", "message": "model: claude-9"},
      "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}, ("model: claude-9", "not_found_error")),
    (b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
     ("invalid x-api-key", "authentication_error")),
    (b"<html>Bad gateway</html>", ("<html>Bad gateway</html>", None)),
    (b"", ("HTTP 529", None)),
    ({"unexpected": True}, ("HTTP 529", None)),
])
def test_parse_error(body: Any, expected: tuple[str, str | None]) -> None:
    assert am.parse_error(529, body) == expected


def test_parse_models() -> None:
    body = {"data": [{"type": "model", "id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1",
                      "created_at": "2025-08-05T00:00:00Z"},
                     {"type": "model", "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5",
                      "created_at": "2024-10-22T00:00:00Z"}],
            "has_more": False, "first_id": "claude-opus-4-1-20250805", "last_id": "claude-3-5-haiku-20241022"}
    assert am.parse_models(json.dumps(body).encode()) == ["claude-opus-4-1-20250805", "claude-3-5-haiku-20241022"]
    with pytest.raises(ResponseFormatError):
        am.parse_models({"models": []})


def test_invalid_tool_arguments_raise_the_typed_error_naming_the_call() -> None:
    events = stream(sse(
        message_start(),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_7", "name": "search", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"q": "a'}},
        {"type": "content_block_stop", "index": 0},
        *message_end("tool_use", 12)))
    with pytest.raises(InvalidToolArgumentsError) as info:
        fold_stream(events, provider="anthropic")
    assert (info.value.tool_name, info.value.tool_call_id) == ("search", "toolu_7")
    parser = am.StreamParser(json_tool="person")
    parser.feed("content_block_start", json.dumps({"type": "content_block_start", "index": 0, "content_block": {
        "type": "tool_use", "id": "toolu_8", "name": "person", "input": {}}}))
    parser.feed("content_block_delta", json.dumps({"type": "content_block_delta", "index": 0, "delta": {
        "type": "input_json_delta", "partial_json": "[1, 2]"}}))
    with pytest.raises(InvalidToolArgumentsError) as answer:
        parser.feed("content_block_stop", '{"type": "content_block_stop", "index": 0}')
    assert (answer.value.tool_name, answer.value.tool_call_id) == ("person", "toolu_8")
