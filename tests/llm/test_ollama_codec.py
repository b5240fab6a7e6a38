"""Ollama native API codec (``/api/chat``, ``/api/generate``, ``/api/tags``), on NDJSON shaped like Ollama's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aixpy.errors import (
    InvalidInputError,
    InvalidRequestError,
    InvalidToolArgumentsError,
    ProviderError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm.codecs import ollama as ol
from aixpy.llm.codecs._common import error_for_code
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

from ._fixtures import fixture_bytes

WEATHER = ToolSpec("get_weather", "Get the weather in a given city",
                   {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                    "required": ["city"]})
TIME = ToolSpec("get_time", "", {"type": "object", "properties": {}})
PERSON = {"type": "object", "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
          "required": ["age", "available"]}


def lines(name: str) -> list[bytes]:
    return fixture_bytes(name).splitlines()


def feed_all(payloads: list[Any]) -> list[StreamEvent]:
    parser = ol.StreamParser()
    events = [e for p in payloads for e in parser.feed(p if isinstance(p, (str, bytes)) else json.dumps(p))]
    assert parser.done
    return events


def final(**extra: Any) -> dict[str, Any]:
    return {"model": "llama3.2", "created_at": "2024-07-22T20:33:28.123648Z", "message": {"role": "assistant",
            "content": ""}, "done": True, "total_duration": 885095291, "load_duration": 3753500,
            "prompt_eval_count": 26, "prompt_eval_duration": 328493000, "eval_count": 3, "eval_duration": 552222000,
            **extra}


# --------------------------------------------------------------------------- /api/chat request


def test_build_chat_request_every_feature() -> None:
    req = ChatRequest(
        model="llava:13b",
        messages=[
            SystemMessage("You are a weather bot."),
            UserMessage([TextPart("What is in this image?"), ImagePart.from_bytes(b"\x89PNG", "image/png"),
                         TextPart("And the weather?"), ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ")]),
            AssistantMessage(None, [ToolCall("call_ab12", "get_weather", {"city": "Toronto"}),
                                    ToolCall("call_cd34", "get_time", {})]),
            ToolMessage("11 degrees celsius", "call_ab12"),
            ToolMessage("noon", "call_cd34", name="get_time"),
            AssistantMessage("It is 11°C."),
        ],
        temperature=0.2, top_p=0.9, max_tokens=128, stop=["user:"], seed=42, tools=[WEATHER, TIME],
        tool_choice="auto", response_format=ResponseFormat.json_schema("person", PERSON),
        extra={"num_ctx": 8192, "top_k": 20, "keep_alive": "10m", "think": False, "options": {"min_p": 0.05}},
    )
    assert ol.build_request(req, stream=True) == {
        "model": "llava:13b",
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "What is in this image?\n\nAnd the weather?",
             "images": ["iVBORw==", "/9j/4AAQ"]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_ab12", "type": "function",
                 "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Toronto"}}},
                {"id": "call_cd34", "type": "function", "function": {"index": 1, "name": "get_time", "arguments": {}}},
            ]},
            {"role": "tool", "content": "11 degrees celsius", "tool_name": "get_weather", "tool_call_id": "call_ab12"},
            {"role": "tool", "content": "noon", "tool_name": "get_time", "tool_call_id": "call_cd34"},
            {"role": "assistant", "content": "It is 11°C."},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a given city",
                                              "parameters": WEATHER.parameters}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
        ],
        "format": PERSON,
        "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 128, "stop": ["user:"], "seed": 42,
                    "num_ctx": 8192, "top_k": 20, "min_p": 0.05},
        "stream": True,
        "keep_alive": "10m",
        "think": False,
    }


def test_minimal_chat_request_always_says_stream() -> None:
    body = ol.build_request(ChatRequest("llama3.2", [UserMessage("why is the sky blue?")]), stream=False)
    assert body == {"model": "llama3.2", "messages": [{"role": "user", "content": "why is the sky blue?"}],
                    "stream": False}


def test_json_mode_and_tool_choice() -> None:
    req = ChatRequest("llama3.2", [UserMessage("JSON")], response_format=ResponseFormat.json_object())
    assert ol.build_request(req, stream=False)["format"] == "json"
    named = ChatRequest("llama3.2", [UserMessage("hi")], tools=[WEATHER, TIME], tool_choice="get_time")
    assert [t["function"]["name"] for t in ol.build_request(named, stream=False)["tools"]] == ["get_time"]
    none = ChatRequest("llama3.2", [UserMessage("hi")], tools=[WEATHER], tool_choice="none")
    assert "tools" not in ol.build_request(none, stream=False)


def test_remote_image_urls_are_refused() -> None:
    req = ChatRequest("llava", [UserMessage([ImagePart.from_url("https://example.com/cat.png")])])
    with pytest.raises(InvalidInputError, match="from_bytes"):
        ol.build_request(req, stream=False)


# --------------------------------------------------------------------------- /api/generate request


def test_build_generate_request() -> None:
    req = ChatRequest("llama3.1:8b", [SystemMessage("Answer briefly."),
                                      UserMessage([TextPart("Ollama is 22 years old. Respond using JSON"),
                                                   ImagePart.from_bytes(b"GIF8", "image/gif")])],
                      max_tokens=100, response_format=ResponseFormat.json_schema("p", PERSON),
                      extra={"raw": False, "suffix": "", "options": {"num_ctx": 2048}})
    assert ol.build_generate_request(req, stream=False) == {
        "model": "llama3.1:8b", "prompt": "Ollama is 22 years old. Respond using JSON", "system": "Answer briefly.",
        "images": ["R0lGOA=="], "format": PERSON, "options": {"num_predict": 100, "num_ctx": 2048}, "stream": False,
        "raw": False, "suffix": ""}


def test_generate_refuses_chat_only_features() -> None:
    with pytest.raises(InvalidInputError, match="assistant"):
        ol.build_generate_request(ChatRequest("m", [UserMessage("a"), AssistantMessage("b")]), stream=False)
    with pytest.raises(InvalidInputError, match="tools"):
        ol.build_generate_request(ChatRequest("m", [UserMessage("a")], tools=[WEATHER]), stream=False)


# --------------------------------------------------------------------------- replies


def test_chat_stream_with_tool_calls_folds_to_the_non_streamed_reply() -> None:
    parser = ol.StreamParser()
    events = [e for line in lines("ollama_chat_tools.ndjson") for e in parser.feed(line)]
    streamed = fold_stream(events, provider="ollama")
    parsed = ol.parse_response(fixture_bytes("ollama_chat_tools.json"))
    assert streamed == parsed
    assert parsed == ChatResponse(
        text="Checking now.",
        tool_calls=[ToolCall("call_ab12cd34", "get_temperature", {"city": "New York"}),
                    ToolCall("call_1", "get_conditions", {"city": "New York", "detail": {"hourly": True}})],
        finish_reason="tool_calls", usage=Usage(169, 15), model="qwen3:8b", provider="ollama",
        raw_finish_reason="stop")
    assert parsed.tool_calls[1].raw_arguments == '{"city":"New York","detail":{"hourly":true}}'
    assert [(e.index, e.tool_call_id) for e in events if e.kind == "tool_call"] == [(0, "call_ab12cd34"),
                                                                                   (1, "call_1")]
    assert parser.done
    assert parser.metrics == {"total_duration": 182242375, "load_duration": 41295167,
                              "prompt_eval_duration": 24573166, "eval_duration": 115959084}


def test_generate_stream_and_body() -> None:
    chunks = [{"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00", "response": "The",
               "done": False},
              {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00", "response": " sky",
               "done": False},
              {"model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z", "response": "", "done": True,
               "done_reason": "length", "context": [1, 2, 3], "total_duration": 10706818083,
               "load_duration": 6338219291, "prompt_eval_count": 26, "prompt_eval_duration": 130079000,
               "eval_count": 2, "eval_duration": 4232710000}]
    streamed = fold_stream(feed_all(chunks), provider="ollama")
    body = {**chunks[-1], "response": "The sky"}
    assert streamed == ol.parse_response(json.dumps(body)) == ChatResponse(
        text="The sky", finish_reason="length", usage=Usage(26, 2), model="llama3.2", provider="ollama",
        raw_finish_reason="length")


def test_whole_ndjson_stream_given_to_parse_response() -> None:
    assert ol.parse_response(fixture_bytes("ollama_chat_tools.ndjson")) == ol.parse_response(
        fixture_bytes("ollama_chat_tools.json"))


def test_old_servers_without_done_reason_or_prompt_count() -> None:
    # before done_reason existed; prompt_eval_count is omitted when the whole prompt was cached
    body = {"model": "llama3.2", "created_at": "2023-12-12T14:13:43.416799Z",
            "message": {"role": "assistant", "content": "Hello! How are you today?"}, "done": True,
            "total_duration": 5191566416, "load_duration": 2154458, "eval_count": 298, "eval_duration": 4799921000}
    resp = ol.parse_response(body)
    assert (resp.finish_reason, resp.raw_finish_reason, resp.usage) == ("stop", "stop", Usage(0, 298))
    unloaded = ol.parse_response({"model": "llama3.2", "created_at": "2024-09-12T21:33:17.547535Z",
                                  "message": {"role": "assistant", "content": ""}, "done_reason": "unload",
                                  "done": True})
    assert (unloaded.finish_reason, unloaded.usage) == ("other", None)


def test_arguments_sent_as_text_are_tolerated() -> None:
    events = feed_all([{"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_time", "arguments": '{"tz": "UTC"}'}}]}, "done": False}, final()])
    assert fold_stream(events).tool_calls == [ToolCall("call_0", "get_time", {"tz": "UTC"})]


def test_malformed_lines_raise_response_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        ol.parse_response(b'{"model": "llama3.2", "message": {')
    with pytest.raises(ResponseFormatError):
        ol.parse_response(b'{"model": "m", "done": false}\n{oops}\n')
    with pytest.raises(ResponseFormatError):
        ol.StreamParser().feed("[1, 2]")
    events = feed_all([{"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": "{bad"}}]}, "done": False}, final()])
    with pytest.raises(ResponseFormatError, match="'f'"):
        fold_stream(events)
    assert ol.StreamParser().feed(b"\n") == []


def test_error_line_mid_stream_raises() -> None:
    parser = ol.StreamParser()
    parser.feed(b'{"model":"gemma3","created_at":"2025-10-26T17:21:21.196249Z","response":" Yes","done":false}')
    with pytest.raises(ProviderError, match="error was encountered") as info:
        parser.feed(b'{"error":"an error was encountered while running the model"}')
    assert info.value.provider == "ollama"
    assert info.value.model == "gemma3"
    with pytest.raises(InvalidRequestError, match="not found"):
        ol.parse_response({"error": 'model "llama9" not found, try pulling it first'})


# --------------------------------------------------------------------------- errors and tags


@pytest.mark.parametrize(("body", "expected", "exc"), [
    ({"error": 'model "llama9" not found, try pulling it first'},
     ('model "llama9" not found, try pulling it first', "model_not_found"), InvalidRequestError),
    (b"{\"error\":\"model 'x' not found\"}", ("model 'x' not found", "model_not_found"), InvalidRequestError),
    ({"error": "registry.ollama.ai/library/gemma:2b does not support tools"},
     ("registry.ollama.ai/library/gemma:2b does not support tools", "invalid_request"), InvalidRequestError),
    ({"error": "server busy, please try again.  maximum pending requests exceeded"},
     ("server busy, please try again.  maximum pending requests exceeded", "overloaded"), ServerError),
    ({"error": "the model failed to generate a response"}, ("the model failed to generate a response", None),
     ProviderError),
    (b"404 page not found", ("404 page not found", None), ProviderError),
    (b"", ("HTTP 500", None), ProviderError),
])
def test_parse_error(body: Any, expected: tuple[str, str | None], exc: type[ProviderError]) -> None:
    assert ol.parse_error(500, body) == expected
    assert type(error_for_code(expected[1], expected[0], provider="ollama")) is exc


def test_parse_tags() -> None:
    body = {"models": [
        {"name": "deepseek-r1:latest", "model": "deepseek-r1:latest",
         "modified_at": "2025-05-10T08:06:48.639712648-07:00", "size": 4683075271,
         "digest": "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163",
         "details": {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2"],
                     "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}},
        {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2025-05-04T17:37:44.706015396-07:00",
         "size": 2019393189, "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
         "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                     "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}]}
    models = ol.parse_tags(json.dumps(body).encode())
    assert [(m.name, m.size) for m in models] == [("deepseek-r1:latest", 4683075271), ("llama3.2:latest", 2019393189)]
    assert models[0] == ol.LocalModel("deepseek-r1:latest", 4683075271,
                                      "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163",
                                      "2025-05-10T08:06:48.639712648-07:00", "qwen2", "7.6B", "Q4_K_M")
    assert ol.parse_models(body) == ["deepseek-r1:latest", "llama3.2:latest"]
    assert ol.parse_tags({"models": []}) == []
    with pytest.raises(ResponseFormatError):
        ol.parse_tags({"data": []})


def test_invalid_tool_arguments_raise_the_typed_error_naming_the_call() -> None:
    events = feed_all([{"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_time", "arguments": {"tz": "UTC"}}},
        {"function": {"name": "f", "arguments": "{bad"}}]}, "done": False}, final()])
    with pytest.raises(InvalidToolArgumentsError) as info:
        fold_stream(events, provider="ollama")
    assert (info.value.tool_name, info.value.tool_call_id, info.value.provider) == ("f", "call_1", "ollama")
