"""OpenAI Chat Completions codec, on bodies and SSE streams shaped like OpenAI's and its imitators'."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aixpy.errors import (
    AuthenticationError,
    InvalidRequestError,
    InvalidToolArgumentsError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm.codecs import openai_chat as oc
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

from ._fixtures import fixture_bytes, fixture_json, read_sse

WEATHER = ToolSpec("get_weather", "Get the weather.", {"type": "object", "properties": {"location": {"type": "string"}},
                                                       "required": ["location"]})
TIME = ToolSpec("get_time", "", {"type": "object", "properties": {"timezone": {"type": "string"}}}, strict=True)


def chunk(delta: dict[str, Any] | None = None, *, finish: str | None = None, usage: Any = None,
          choices: Any = ..., **extra: Any) -> str:
    """One ``chat.completion.chunk`` payload."""
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                            **extra}
    body["choices"] = ([{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
                       if choices is ... else choices)
    if usage is not ...:
        body["usage"] = usage
    return json.dumps(body)


def fold(payloads: list[str]) -> ChatResponse:
    return fold_stream([e for p in payloads for e in oc.parse_stream_event(p)], provider="openai")


def fold_fixture(name: str) -> ChatResponse:
    return fold([data for _event, data in read_sse(name)])


# --------------------------------------------------------------------------- build_request


def test_build_request_every_feature() -> None:
    req = ChatRequest(
        model="gpt-4o",
        messages=[
            SystemMessage("You are terse."),
            UserMessage([TextPart("What is in these?"), ImagePart.from_url("https://example.com/a.jpg", detail="high"),
                         ImagePart.from_bytes(b"\x89PNG", "image/png")]),
            AssistantMessage(tool_calls=[ToolCall("call_1", "get_weather", {"location": "Paris"})]),
            ToolMessage('{"temp": 21}', "call_1", name="get_weather"),
            AssistantMessage("It is 21°C."),
            UserMessage("Thanks"),
        ],
        temperature=0.2, max_tokens=256, top_p=0.9, stop=["END"], seed=7,
        tools=[WEATHER, TIME], tool_choice="get_weather",
        response_format=ResponseFormat.json_schema("answer", {"type": "object"}),
        extra={"user": "u-42", "parallel_tool_calls": False},
    )
    body = oc.build_request(req, stream=False)
    assert body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {"role": "assistant", "content": "It is 21°C."},
            {"role": "user", "content": "Thanks"},
        ],
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 256, "stop": ["END"], "seed": 7,
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Get the weather.",
                                              "parameters": WEATHER.parameters}},
            {"type": "function", "function": {"name": "get_time", "parameters": TIME.parameters, "strict": True}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"},
                                                                   "strict": True}},
        "user": "u-42", "parallel_tool_calls": False,
    }


def test_build_request_stream_always_asks_for_usage() -> None:
    body = oc.build_request(ChatRequest("gpt-4o", [UserMessage("hi")]), stream=True)
    assert body == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                    "stream_options": {"include_usage": True}}
    assert "stream" not in oc.build_request(ChatRequest("gpt-4o", [UserMessage("hi")]), stream=False)


@pytest.mark.parametrize(("choice", "wire"), [("auto", "auto"), ("none", "none"), ("required", "required")])
def test_build_request_tool_choice_modes(choice: str, wire: str) -> None:
    body = oc.build_request(ChatRequest("m", [UserMessage("hi")], tools=[WEATHER], tool_choice=choice), stream=False)
    assert body["tool_choice"] == wire


def test_build_request_omits_tool_choice_without_tools_and_text_format() -> None:
    req = ChatRequest("m", [UserMessage("hi")], tool_choice="auto", response_format=ResponseFormat())
    body = oc.build_request(req, stream=False)
    assert "tool_choice" not in body
    assert "response_format" not in body
    req = ChatRequest("m", [UserMessage("hi")], response_format=ResponseFormat.json_object())
    assert oc.build_request(req, stream=False)["response_format"] == {"type": "json_object"}


def test_build_request_assistant_without_content_or_calls_sends_empty_string() -> None:
    body = oc.build_request(ChatRequest("m", [AssistantMessage(), UserMessage("go on")]), stream=False)
    assert body["messages"][0] == {"role": "assistant", "content": ""}


@pytest.mark.parametrize(("model", "field"), [
    ("gpt-4o", "max_tokens"), ("gpt-4.1-mini", "max_tokens"), ("grok-3", "max_tokens"),
    ("meta-llama/Llama-3.1-8B-Instruct", "max_tokens"), ("omni-moderation", "max_tokens"),
    ("o1", "max_completion_tokens"), ("o3-mini", "max_completion_tokens"),
    ("o4-mini-2025-04-16", "max_completion_tokens"),
    ("gpt-5-nano", "max_completion_tokens"), ("openai/o3-mini", "max_completion_tokens"),
])
def test_max_tokens_field(model: str, field: str) -> None:
    assert oc.max_tokens_field(model) == field
    body = oc.build_request(ChatRequest(model, [UserMessage("hi")], max_tokens=5), stream=False)
    assert body[field] == 5


def test_extra_max_tokens_replaces_the_computed_field() -> None:
    req = ChatRequest("o3-mini", [UserMessage("hi")], max_tokens=5, extra={"max_tokens": 9})
    body = oc.build_request(req, stream=False)
    assert body["max_tokens"] == 9
    assert "max_completion_tokens" not in body


# --------------------------------------------------------------------------- non-streamed replies


def test_parse_text_response() -> None:
    resp = oc.parse_response(fixture_bytes("openai_text.json"))
    assert resp == ChatResponse(text="Hello! How can I assist you today?", finish_reason="stop",
                                usage=Usage(19, 10), model="gpt-4o-2024-08-06", provider="openai",
                                id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", raw_finish_reason="stop")


def test_parse_tool_call_response() -> None:
    resp = oc.parse_response(fixture_json("openai_tools.json"))
    assert resp.text == ""
    assert resp.tool_calls == [
        ToolCall("call_8qty38GqEuUFIWGEdRjGpZjS", "get_weather", {"location": "Paris, France", "unit": "celsius"}),
        ToolCall("call_r2JkTd8cwXeShG3JuJqgKg6n", "get_time", {"timezone": "Europe/Paris"}),
    ]
    assert resp.tool_calls[1].raw_arguments == '{"timezone":"Europe/Paris"}'
    assert resp.finish_reason == "tool_calls"
    assert resp.usage == Usage(1117, 52, cached_input_tokens=1024)


def test_forced_tool_with_finish_stop_reports_tool_calls() -> None:
    body = fixture_json("openai_tools.json")
    body["choices"][0]["finish_reason"] = "stop"
    resp = oc.parse_response(body)
    assert (resp.finish_reason, resp.raw_finish_reason) == ("tool_calls", "stop")


def test_parse_response_tolerates_compatible_servers() -> None:
    llama_cpp = {"choices": [{"finish_reason": "length", "index": 0,
                              "message": {"role": "assistant", "content": "Once upon"}}],
                 "created": 1, "model": "gpt-3.5-turbo", "object": "chat.completion",
                 "usage": {"completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7}, "id": "chatcmpl-x",
                 "timings": {"prompt_n": 5, "predicted_per_second": 55.2}}
    resp = oc.parse_response(json.dumps(llama_cpp).encode(), provider="llamacpp")
    assert (resp.text, resp.finish_reason, resp.usage, resp.provider) == ("Once upon", "length", Usage(5, 2),
                                                                          "llamacpp")
    no_usage = {"id": "x", "model": "tgi", "choices": [{"index": 0, "message": {"role": "assistant",
                                                                                 "content": None},
                                                        "finish_reason": "eos_token"}]}
    resp = oc.parse_response(no_usage)
    assert (resp.text, resp.usage, resp.finish_reason) == ("", None, "stop")
    parts = {"choices": [{"index": 0, "message": {"content": [{"type": "text", "text": "a"}, {"type": "text",
                                                                                               "text": "b"}]},
                          "finish_reason": "stop"}]}
    assert oc.parse_response(parts).text == "ab"


def test_parse_response_arguments_as_object_refusal_and_legacy_function_call() -> None:
    obj_args = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}}]}
    assert oc.parse_response(obj_args).tool_calls == [ToolCall("c", "f", {"a": 1})]
    refusal = {"choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"content": None, "refusal": "I can't help with that."}}]}
    assert oc.parse_response(refusal).text == "I can't help with that."
    legacy = {"choices": [{"index": 0, "finish_reason": "function_call",
                           "message": {"content": None, "function_call": {"name": "f", "arguments": "{}"}}}]}
    resp = oc.parse_response(legacy)
    assert (resp.tool_calls, resp.finish_reason) == ([ToolCall("call_0", "f", {})], "tool_calls")


def test_reasoning_tokens_are_part_of_output() -> None:
    openai_o3 = {"prompt_tokens": 10, "completion_tokens": 500, "total_tokens": 510,
                 "completion_tokens_details": {"reasoning_tokens": 448}}
    assert oc.parse_usage(openai_o3) == Usage(10, 500, reasoning_tokens=448)
    xai = {"prompt_tokens": 10, "completion_tokens": 52, "total_tokens": 500,
           "prompt_tokens_details": {"cached_tokens": 6}, "completion_tokens_details": {"reasoning_tokens": 438}}
    assert oc.parse_usage(xai) == Usage(10, 490, cached_input_tokens=6, reasoning_tokens=438)
    assert oc.parse_usage(None) is None


def test_parse_response_errors() -> None:
    with pytest.raises(ResponseFormatError, match="invalid JSON"):
        oc.parse_response(b"<html>502 Bad Gateway</html>")
    with pytest.raises(ResponseFormatError, match="no choices"):
        oc.parse_response({"id": "x", "choices": []})
    bad_args = fixture_json("openai_tools.json")
    bad_args["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"] = '{"timezone": "Eur'
    with pytest.raises(ResponseFormatError, match="get_time"):
        oc.parse_response(bad_args)
    with pytest.raises(ServerError, match="overloaded"):
        oc.parse_response({"error": {"message": "The server is overloaded", "type": "server_error", "code": None}})


# --------------------------------------------------------------------------- streams


def test_stream_text_folds_to_the_non_streamed_response() -> None:
    streamed = fold_fixture("openai_text.sse")
    assert streamed == oc.parse_response(fixture_bytes("openai_text.json"))
    assert streamed.usage == Usage(19, 10)


def test_stream_tool_calls_fold_to_the_non_streamed_response() -> None:
    streamed = fold_fixture("openai_tools.sse")
    assert streamed == oc.parse_response(fixture_bytes("openai_tools.json"))
    assert streamed.tool_calls[0].raw_arguments == '{"location":"Paris, France","unit":"celsius"}'


def test_stream_uses_the_api_index_not_the_position() -> None:
    payloads = [data for _e, data in read_sse("openai_tools.sse")]
    events = oc.parse_stream_event(payloads[3])  # deltas for index 1 then index 0 in one chunk
    assert [(e.index, e.arguments_delta) for e in events] == [(1, '{"timezone":'), (0, ':"Paris, France",')]
    first = oc.parse_stream_event(payloads[0])
    assert [(e.kind, e.index, e.tool_call_id, e.tool_name) for e in first] == [
        ("tool_call", 0, "call_8qty38GqEuUFIWGEdRjGpZjS", "get_weather")]


def test_stream_usage_only_final_chunk() -> None:
    choices: list[Any] | None
    for choices in ([], None):
        events = oc.parse_stream_event(chunk(choices=choices, usage={"prompt_tokens": 3, "completion_tokens": 4,
                                                                      "total_tokens": 7}))
        assert [(e.kind, e.usage) for e in events] == [("usage", Usage(3, 4))]
    no_key = json.dumps({"id": "x", "object": "chat.completion.chunk", "model": "m",
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    assert [e.kind for e in oc.parse_stream_event(no_key)] == ["usage"]


@pytest.mark.parametrize("payload", ["[DONE]", " [DONE]\n", "", b"[DONE]"])
def test_stream_done_and_empty(payload: str | bytes) -> None:
    assert oc.parse_stream_event(payload) == []


def test_stream_role_only_first_chunk_gives_nothing() -> None:
    assert oc.parse_stream_event(chunk({"role": "assistant", "content": ""}, usage=None)) == []


def test_stream_tolerates_repeated_ids_missing_index_and_object_arguments() -> None:
    vllm_like = [
        chunk({"tool_calls": [{"index": 0, "id": "chatcmpl-tool-1", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "chatcmpl-tool-1", "type": "function",
                               "function": {"name": "get_weather", "arguments": '{"location": '}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "", "function": {"name": "", "arguments": '"Oslo"}'}}]}),
        chunk(finish="tool_calls"),
    ]
    assert fold(vllm_like).tool_calls == [ToolCall("chatcmpl-tool-1", "get_weather", {"location": "Oslo"})]
    no_index = [chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {"x": 1}}},
                                      {"id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
                chunk(finish="tool_calls")]
    assert fold(no_index).tool_calls == [ToolCall("a", "f", {"x": 1}), ToolCall("b", "g", {})]


def test_stream_llama_cpp_final_chunk_with_timings() -> None:
    payloads = [chunk({"content": "Hi"}), chunk({}, finish="stop", usage={"completion_tokens": 1, "prompt_tokens": 4,
                                                                         "total_tokens": 5},
                                                timings={"predicted_n": 1, "predicted_ms": 18.3})]
    resp = fold(payloads)
    assert (resp.text, resp.finish_reason, resp.usage) == ("Hi", "stop", Usage(4, 1))


def test_stream_malformed_tool_json_raises_when_folded() -> None:
    payloads = [chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "lookup", "arguments": "{\"q\""}}]}),
                chunk(finish="tool_calls")]
    with pytest.raises(ResponseFormatError, match="lookup"):
        fold(payloads)


def test_stream_malformed_payload() -> None:
    with pytest.raises(ResponseFormatError):
        oc.parse_stream_event('{"id": "chatcmpl-1", "choices": [')


@pytest.mark.parametrize(("error", "exc"), [
    ({"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}, RateLimitError),
    ({"message": "overloaded", "type": "server_error"}, ServerError),
    ({"message": "bad key", "code": "invalid_api_key"}, AuthenticationError),
    ({"message": "too long", "code": "context_length_exceeded"}, InvalidRequestError),
    ({"message": "??"}, ProviderError),
])
def test_stream_error_payload(error: dict[str, Any], exc: type[ProviderError]) -> None:
    with pytest.raises(exc) as info:
        oc.parse_stream_event(json.dumps({"error": error}))
    assert info.value.provider == "openai"


def test_events_carry_model_and_id() -> None:
    (event,) = oc.parse_stream_event(chunk({"content": "x"}))
    assert event == StreamEvent.text_delta("x", model="gpt-4o", response_id="chatcmpl-1")


# --------------------------------------------------------------------------- errors and models


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"error": {"message": "Incorrect API key provided: sk-abc***.", "type": "invalid_request_error", '
     b'"param": null, "code": "invalid_api_key"}}', ("Incorrect API key provided: sk-abc***.", "invalid_api_key")),
    ({"error": {"message": "Model not found", "type": "NotFoundError", "code": 404}}, ("Model not found", "404")),
    ({"error": "Input validation error: `inputs` must have less than 4096 tokens", "error_type": "validation"},
     ("Input validation error: `inputs` must have less than 4096 tokens", "validation")),
    ({"detail": "Not Found"}, ("Not Found", None)),
    ({"detail": [{"loc": ["body", "model"], "msg": "field required", "type": "value_error.missing"}]},
     ("field required", None)),
    ({"message": "Too many requests", "code": 429}, ("Too many requests", "429")),
    (b"upstream connect error", ("upstream connect error", None)),
    (b"", ("HTTP 502", None)),
    (None, ("HTTP 502", None)),
    (b"[1, 2]", ("HTTP 502", None)),
])
def test_parse_error(body: Any, expected: tuple[str, str | None]) -> None:
    assert oc.parse_error(502, body) == expected


def test_parse_models() -> None:
    body = {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "system"},
                                       {"id": "o3-mini", "object": "model", "created": 2, "owned_by": "system"}]}
    assert oc.parse_models(json.dumps(body)) == ["gpt-4o", "o3-mini"]
    assert oc.parse_models({"models": [{"name": "llama3.1:8b"}]}) == ["llama3.1:8b"]
    with pytest.raises(ResponseFormatError):
        oc.parse_models({"data": "nope"})


def test_invalid_tool_arguments_raise_the_typed_error_naming_the_call() -> None:
    bad_args = fixture_json("openai_tools.json")
    call = bad_args["choices"][0]["message"]["tool_calls"][1]
    call["function"]["arguments"] = '{"timezone": "Eur'
    with pytest.raises(InvalidToolArgumentsError) as info:
        oc.parse_response(bad_args)
    assert (info.value.tool_name, info.value.tool_call_id, info.value.provider) == (
        "get_time", call["id"], "openai")
    payloads = [chunk({"tool_calls": [{"index": 0, "id": "c9", "function": {"name": "lookup", "arguments": "[1]"}}]}),
                chunk(finish="tool_calls")]
    with pytest.raises(InvalidToolArgumentsError) as streamed:
        fold(payloads)
    assert (streamed.value.tool_name, streamed.value.tool_call_id) == ("lookup", "c9")
    assert isinstance(streamed.value, ResponseFormatError)
