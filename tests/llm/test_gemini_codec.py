"""Gemini / Vertex AI ``generateContent`` codec, on bodies and SSE streams shaped like the REST API's."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from aixpy.errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    InvalidToolArgumentsError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm.codecs import gemini as gm
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
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

KEY = "AIzaSyD-test-key-0123456789abcdefghij"
WEATHER = ToolSpec("get_weather", "Get the current weather in a given location",
                   {"type": "object", "properties": {"location": {"type": "string"}},
                    "required": ["location"], "additionalProperties": False})
TIME = ToolSpec("get_time")  # no parameters


def stream(payloads: list[str | dict[str, Any]]) -> list[StreamEvent]:
    parser = gm.StreamParser()
    return [e for p in payloads for e in parser.feed(json.dumps(p) if isinstance(p, dict) else p)]


def sse_payloads(name: str) -> list[str]:
    return [data for _event, data in read_sse(name)]


def candidate(parts: list[dict[str, Any]] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": [{"index": 0, **({"content": {"parts": parts, "role": "model"}}
                                                          if parts is not None else {}),
                                            **({"finishReason": finish} if finish else {})}],
                            "modelVersion": "gemini-2.0-flash", "responseId": "resp-1"}
    body.update(extra)
    return body


# --------------------------------------------------------------------------- endpoints and headers


@pytest.mark.parametrize(("model", "stream", "expected"), [
    ("gemini-2.5-flash", False, "/v1beta/models/gemini-2.5-flash:generateContent"),
    ("models/gemini-2.5-flash", True, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
    ("tunedModels/my-tuned-1", False, "/v1beta/tunedModels/my-tuned-1:generateContent"),
])
def test_path(model: str, stream: bool, expected: str) -> None:
    assert gm.path(model, stream) == expected
    assert gm.path(model, stream, version="v1").startswith("/v1/")


def test_the_api_key_travels_in_a_header_never_in_the_url() -> None:
    assert gm.headers(KEY) == {"x-goog-api-key": KEY, "content-type": "application/json"}
    urls = [gm.BASE_URL + gm.path("gemini-2.5-flash", s) for s in (False, True)]
    urls += [gm.vertex_url("my-proj", loc, "gemini-2.5-pro", s) for loc in ("us-central1", "global")
             for s in (False, True)]
    for url in urls:
        assert KEY not in url
        assert "key=" not in url
    body = json.dumps(gm.build_request(ChatRequest("gemini-2.5-flash", [UserMessage("hi")])))
    assert KEY not in body


def test_vertex_url_and_headers() -> None:
    assert gm.vertex_url("my-proj", "us-central1", "gemini-2.5-flash", False) == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/"
        "publishers/google/models/gemini-2.5-flash:generateContent")
    assert gm.vertex_url("my-proj", "global", "publishers/google/models/gemini-2.5-pro", True) == (
        "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/"
        "publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    assert gm.vertex_headers("ya29.token") == {"authorization": "Bearer ya29.token",
                                               "content-type": "application/json"}


@pytest.mark.parametrize(("call", "args"), [
    (gm.path, ("gemini/../../v1/files", False)),
    (gm.path, ("gemini-2.5-flash:generateContent?key=x#", False)),
    (gm.vertex_url, ("proj", "evil.com/x", "gemini-2.5-flash", False)),
    (gm.vertex_url, ("proj", "us-central1.attacker.net", "gemini-2.5-flash", False)),
    (gm.vertex_url, ("proj/../other", "us-central1", "gemini-2.5-flash", False)),
])
def test_names_that_would_change_the_url_are_refused(call: Any, args: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidInputError):
        call(*args)


# --------------------------------------------------------------------------- request


def test_build_request_every_feature() -> None:
    req = ChatRequest(
        model="gemini-2.0-flash",
        messages=[
            SystemMessage("You are a weather bot."),
            UserMessage("Weather in Paris and Oslo?"),
            UserMessage([TextPart("And this photo?"), ImagePart.from_bytes(b"\x89PNG", "image/png"),
                         ImagePart.from_url("gs://bucket/sky.webp"),
                         ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ")]),
            AssistantMessage("Let me check.", [ToolCall("c1", "get_weather", {"location": "Paris"}),
                                               ToolCall("c2", "get_weather", {"location": "Oslo"})]),
            ToolMessage("21°C, sunny", "c1"),  # name resolved from the call above
            ToolMessage("station offline", "c2", name="get_weather", is_error=True),
            SystemMessage("Answer in one line."),
            UserMessage("Summarise."),
            AssistantMessage(""),  # empty: dropped
        ],
        temperature=0.3, top_p=0.8, max_tokens=256, stop=["\n\n"], seed=7, tools=[WEATHER, TIME],
        tool_choice="required", extra={"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                                           "threshold": "BLOCK_ONLY_HIGH"}]},
    )
    assert gm.build_request(req) == {
        "contents": [
            {"role": "user", "parts": [
                {"text": "Weather in Paris and Oslo?"},
                {"text": "And this photo?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/sky.webp"}},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            ]},
            {"role": "model", "parts": [
                {"text": "Let me check."},
                {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}, "id": "c1"}},
                {"functionCall": {"name": "get_weather", "args": {"location": "Oslo"}, "id": "c2"}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "c1", "name": "get_weather", "response": {"output": "21°C, sunny"}}},
                {"functionResponse": {"id": "c2", "name": "get_weather", "response": {"error": "station offline"}}},
                {"text": "Summarise."},
            ]},
        ],
        "systemInstruction": {"parts": [{"text": "You are a weather bot."}, {"text": "Answer in one line."}]},
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "Get the current weather in a given location",
             "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}},
                            "required": ["location"]}},
            {"name": "get_time"},
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {"temperature": 0.3, "topP": 0.8, "maxOutputTokens": 256, "stopSequences": ["\n\n"],
                             "seed": 7},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    }


def test_minimal_request_has_only_contents() -> None:
    assert gm.build_request(ChatRequest("gemini-2.5-flash", [UserMessage("Hi")])) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_remote_image_without_known_type_defaults_to_jpeg() -> None:
    req = ChatRequest("gemini-2.5-flash", [UserMessage([ImagePart.from_url("https://example.com/photo?id=3")])])
    assert gm.build_request(req)["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo?id=3"}}]


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tool_choice_mapping(choice: str, wire: dict[str, Any]) -> None:
    req = ChatRequest("gemini-2.5-flash", [UserMessage("hi")], tools=[WEATHER], tool_choice=choice)
    assert gm.build_request(req)["toolConfig"] == {"functionCallingConfig": wire}


def test_tool_result_without_a_known_name_is_refused() -> None:
    req = ChatRequest("gemini-2.5-flash", [UserMessage("hi"), ToolMessage("42", "call_from_elsewhere")])
    with pytest.raises(InvalidInputError, match=r"ToolMessage\.name"):
        gm.build_request(req)
    assert gm.tool_call_names([AssistantMessage(tool_calls=[ToolCall("a", "f"), ToolCall("b", "g")])]) == {
        "a": "f", "b": "g"}


@pytest.mark.parametrize(("model", "signed"), [
    ("gemini-3-pro-preview", True), ("gemini-2.5-flash", True), ("models/gemini-flash-latest", True),
    ("gemini-2.0-flash", False), ("gemini-1.5-pro", False), ("gemma-3-27b-it", False),
])
def test_thought_signature_placeholder_on_the_first_call_of_each_model_turn(model: str, signed: bool) -> None:
    history: list[Message] = [UserMessage("Paris and Oslo?"),
               AssistantMessage(tool_calls=[ToolCall("c1", "get_weather", {"location": "Paris"}),
                                            ToolCall("c2", "get_weather", {"location": "Oslo"})]),
               ToolMessage("21", "c1"), ToolMessage("9", "c2"),
               AssistantMessage("Now the time.", [ToolCall("c3", "get_time")]), ToolMessage("noon", "c3")]
    turns = gm.build_request(ChatRequest(model, history))["contents"]
    model_parts = [t["parts"] for t in turns if t["role"] == "model"]
    signatures = [[p.get("thoughtSignature") for p in parts if "functionCall" in p] for parts in model_parts]
    if signed:
        assert signatures == [[gm.SKIP_SIGNATURE, None], [gm.SKIP_SIGNATURE]]
    else:
        assert signatures == [[None, None], [None]]


def test_thought_signatures_go_back_on_their_calls_and_the_placeholder_only_fills_a_gap() -> None:
    history: list[Message] = [
        UserMessage("Paris and Oslo?"),
        AssistantMessage(tool_calls=[ToolCall("c1", "get_weather", {"location": "Paris"}, signature="sig-1"),
                                     ToolCall("c2", "get_weather", {"location": "Oslo"})]),
        ToolMessage("21", "c1"), ToolMessage("9", "c2"),
        AssistantMessage("Now the time.", [ToolCall("c3", "get_time")]), ToolMessage("noon", "c3"),
        AssistantMessage(tool_calls=[ToolCall("c4", "get_time"), ToolCall("c5", "get_date", signature="sig-5")]),
        ToolMessage("1pm", "c4"), ToolMessage("today", "c5"),
    ]
    for model, placeholder in (("gemini-3-pro-preview", gm.SKIP_SIGNATURE), ("gemini-2.0-flash", None)):
        turns = gm.build_request(ChatRequest(model, history))["contents"]
        signatures = [[p.get("thoughtSignature") for p in t["parts"] if "functionCall" in p]
                      for t in turns if t["role"] == "model"]
        # a kept signature always goes back (whatever the model); the placeholder fills a first call without one
        assert signatures == [["sig-1", None], [placeholder], [placeholder, "sig-5"]]
    part = gm.build_request(ChatRequest("gemini-3-pro-preview", history))["contents"][1]["parts"][0]
    assert part == {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}, "id": "c1"},
                    "thoughtSignature": "sig-1"}  # beside functionCall, not inside it


def test_thought_signatures_are_read_in_both_paths_and_survive_a_round_trip() -> None:
    parsed = gm.parse_response(fixture_bytes("gemini_tools.json"))
    streamed = fold_stream(stream(list(sse_payloads("gemini_tools.sse"))), provider="gemini")
    signature = "CiQB0e2Kb1Xq3y7rR8rFf4lJ1rP0GZl0sG3kz2v6o0Y0m0Kk9wQ="
    for reply in (parsed, streamed):
        assert [c.signature for c in reply.tool_calls] == [signature, None, None]
    events = stream([candidate([{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "s-1"},
                                {"functionCall": {"name": "g", "args": {}}, "thoughtSignature": ""},
                                {"functionCall": {"name": "h", "args": {}}, "thoughtSignature": 7}], "STOP")])
    assert [e.signature for e in events if e.kind == "tool_call"] == ["s-1", None, None]
    # the reply appended to the history sends the model's own signature back, not the placeholder
    history: list[Message] = [UserMessage("Paris and Oslo?"), parsed.message]
    history += [ToolMessage("ok", c.id) for c in parsed.tool_calls]
    model_turn = gm.build_request(ChatRequest("gemini-3-flash-preview", history))["contents"][1]
    assert [p.get("thoughtSignature") for p in model_turn["parts"]] == [None, signature, None, None]


def test_a_strict_format_from_a_pydantic_model_is_sent_as_declared() -> None:
    """Gemini has no strict mode: optional fields stay optional, as google-genai sends them."""
    class Pet(BaseModel):
        name: str
        nickname: str | None = None

    strict = ChatRequest("gemini-2.5-flash", [UserMessage("A pet")], response_format=ResponseFormat.from_model(Pet))
    loose = ChatRequest("gemini-2.5-flash", [UserMessage("A pet")],
                        response_format=ResponseFormat.from_model(Pet, strict=False))
    config = gm.build_request(strict)["generationConfig"]
    assert config == gm.build_request(loose)["generationConfig"]
    assert config["responseSchema"]["required"] == ["name"]


def test_json_modes() -> None:
    plain = ChatRequest("gemini-2.5-flash", [UserMessage("JSON please")], response_format=ResponseFormat.json_object())
    assert gm.build_request(plain)["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    typed = ChatRequest("gemini-2.5-flash", [UserMessage("Ann, 31")],
                        response_format=ResponseFormat.json_schema("person", schema))
    assert gm.build_request(typed)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "age": {"type": "INTEGER"}},
                           "required": ["name", "age"], "propertyOrdering": ["name", "age"]}}
    raw = ChatRequest("gemini-2.5-flash", [UserMessage("Ann, 31")], temperature=0.0,
                      response_format=ResponseFormat.json_schema("person", schema),
                      extra={"generationConfig": {"responseJsonSchema": schema,
                                                  "thinkingConfig": {"thinkingBudget": 0}}})
    assert gm.build_request(raw)["generationConfig"] == {
        "temperature": 0.0, "responseMimeType": "application/json", "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingBudget": 0}}


# --------------------------------------------------------------------------- schema conversion


class Address(BaseModel):
    street: str
    city: str = Field(description="City name")


class Person(BaseModel):
    """A person."""

    name: str = Field(title="Full name", min_length=1)
    email: str = Field(json_schema_extra={"format": "email"})
    age: int | None = None
    role: Literal["admin", "user"] = "user"
    level: Literal[1, 2, 3] = 1
    tags: list[str] = []
    home: Address
    previous: list[Address] | None = None
    extra: dict[str, int] = {}


def test_pydantic_schema_is_converted_to_gemini_subset() -> None:
    schema = Person.model_json_schema()
    assert "$defs" in schema
    assert "title" in schema
    address = {"type": "OBJECT", "properties": {"street": {"type": "STRING"},
                                                "city": {"type": "STRING", "description": "City name"}},
               "required": ["street", "city"]}
    assert gm.to_gemini_schema(schema) == {
        "type": "OBJECT",
        "description": "A person.",
        "properties": {
            "name": {"type": "STRING", "minLength": 1},
            "email": {"type": "STRING"},  # format "email" is refused by the API
            "age": {"type": "INTEGER", "nullable": True},
            "role": {"type": "STRING", "enum": ["admin", "user"], "default": "user"},
            "level": {"type": "INTEGER", "default": 1, "description": "Allowed values: 1, 2, 3"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "default": []},
            "home": address,
            "previous": {"type": "ARRAY", "items": address, "nullable": True},
            "extra": {"type": "OBJECT", "default": {}},
        },
        "required": ["name", "email", "home"],
    }


def test_schema_conversion_edge_cases() -> None:
    recursive = {"$defs": {"Node": {"type": "object", "properties": {"value": {"type": "number", "format": "double"},
                                                                     "next": {"$ref": "#/$defs/Node"}}}},
                 "$ref": "#/$defs/Node", "$schema": "https://json-schema.org/draft/2020-12/schema"}
    assert gm.to_gemini_schema(recursive) == {"type": "OBJECT", "properties": {
        "value": {"type": "NUMBER", "format": "double"}, "next": {"type": "OBJECT"}}}
    assert gm.to_gemini_schema({"type": ["string", "null"], "format": "date-time"}) == {
        "type": "STRING", "format": "date-time", "nullable": True}
    assert gm.to_gemini_schema({"description": "id", "type": ["string", "integer"]}) == {
        "description": "id", "anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    assert gm.to_gemini_schema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "ARRAY", "items": {"type": "STRING"}}]}
    assert gm.to_gemini_schema({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}},
                                           "required": ["a"]},
                                          {"properties": {"b": {"const": "x"}}, "required": ["b", "zz"]}]}) == {
        "type": "OBJECT", "properties": {"a": {"type": "STRING"}, "b": {"enum": ["x"]}}, "required": ["a", "b"]}
    assert gm.to_gemini_schema({"type": "integer", "exclusiveMinimum": 0, "multipleOf": 2, "minimum": 1,
                                "format": "int64", "examples": [2]}) == {
        "type": "INTEGER", "minimum": 1, "format": "int64"}
    assert gm.to_gemini_schema({"anyOf": [{"$ref": "#/definitions/Missing"}, {"type": "null"}]}) == {
        "type": "OBJECT", "nullable": True}


def test_tool_parameters_from_a_pydantic_schema() -> None:
    spec = ToolSpec("save_person", "Save a person", Person.model_json_schema())
    declaration = gm.build_request(ChatRequest("gemini-2.5-flash", [UserMessage("hi")], tools=[spec]))["tools"]
    parameters = declaration[0]["functionDeclarations"][0]["parameters"]
    text = json.dumps(parameters)
    for banned in ("$ref", "$defs", "title", "additionalProperties", "$schema", "anyOf"):
        assert banned not in text
    assert "propertyOrdering" not in parameters


# --------------------------------------------------------------------------- replies


def test_text_stream_folds_to_the_non_streamed_response() -> None:
    events = stream(list(sse_payloads("gemini_text.sse")))
    streamed = fold_stream(events, provider="gemini")
    assert streamed == gm.parse_response(fixture_bytes("gemini_text.json"))
    assert streamed == ChatResponse(
        text="The sky looks blue because air scatters short (blue) wavelengths most.", finish_reason="stop",
        usage=Usage(9, 402, reasoning_tokens=388), model="gemini-2.5-flash", provider="gemini",
        id="Xd5kaP-aBLmvz7IPi8rn6QU", raw_finish_reason="STOP")
    assert [e.usage for e in events if e.kind == "usage"] == [Usage(9, 0), Usage(9, 0), Usage(9, 402, 0, 0, 388)]
    assert [e.text for e in events if e.kind == "text"] == [
        "The sky looks blue", " because air scatters short", " (blue) wavelengths most."]


def test_parallel_function_calls_stream_and_body_agree() -> None:
    events = stream(list(sse_payloads("gemini_tools.sse")))
    streamed = fold_stream(events, provider="gemini")
    parsed = gm.parse_response(fixture_bytes("gemini_tools.json"))
    assert streamed == parsed
    assert parsed.tool_calls == [ToolCall("call_0", "get_weather", {"location": "Paris", "unit": "celsius"}),
                                 ToolCall("call_1", "get_weather", {"location": "Oslo", "unit": "celsius"}),
                                 ToolCall("call_2", "get_time", {})]
    assert parsed.tool_calls[0].raw_arguments == '{"location":"Paris","unit":"celsius"}'
    assert (parsed.text, parsed.finish_reason, parsed.raw_finish_reason) == ("Checking both cities.", "tool_calls",
                                                                             "STOP")
    # prompt 1250 includes the 1024 cached tokens; output = 42 candidates + 64 thoughts
    assert parsed.usage == Usage(1250, 106, cached_input_tokens=1024, reasoning_tokens=64)
    calls = [e for e in events if e.kind == "tool_call"]
    assert [(e.index, e.tool_call_id, e.tool_name) for e in calls] == [
        (0, "call_0", "get_weather"), (1, "call_1", "get_weather"), (2, "call_2", "get_time")]


def test_function_call_ids_from_the_api_are_kept_never_the_name() -> None:
    body = candidate([{"functionCall": {"id": "fc-9f2", "name": "get_weather", "args": {"location": "Rome"}}},
                      {"functionCall": {"name": "get_weather", "args": {"location": "Bari"}}}], "STOP")
    calls = gm.parse_response(body).tool_calls
    assert [c.id for c in calls] == ["fc-9f2", "call_1"]
    assert all(c.id != c.name for c in calls)


def test_thoughts_code_and_other_candidates_are_skipped() -> None:
    body = candidate([{"text": "Let me think about it", "thought": True},
                      {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                      {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
                      {"text": "Answer: 1"}], "STOP")
    body["candidates"].append({"index": 1, "content": {"parts": [{"text": "other"}], "role": "model"},
                               "finishReason": "STOP"})
    assert gm.parse_response(body).text == "Answer: 1"


def test_usage_includes_tool_use_prompt_tokens() -> None:
    meta = {"promptTokenCount": 100, "toolUsePromptTokenCount": 20, "candidatesTokenCount": 30,
            "thoughtsTokenCount": 5, "cachedContentTokenCount": 60, "totalTokenCount": 155}
    usage = gm.parse_usage(meta)
    assert usage == Usage(120, 35, cached_input_tokens=60, reasoning_tokens=5)
    assert usage is not None
    assert usage.total_tokens == meta["totalTokenCount"]
    assert gm.parse_usage(None) is None


def test_safety_block_of_the_prompt_and_of_the_reply() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-2.0-flash"}
    resp = gm.parse_response(json.dumps(blocked))
    assert (resp.text, resp.finish_reason, resp.raw_finish_reason, resp.usage) == (
        "", "content_filter", "SAFETY", Usage(8, 0))
    assert fold_stream(stream([blocked]), provider="gemini") == resp
    reply = candidate(None, "SAFETY", usageMetadata={"promptTokenCount": 5, "totalTokenCount": 5})
    reply["candidates"][0]["safetyRatings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH",
                                                "blocked": True}]
    assert gm.parse_response(reply).finish_reason == "content_filter"


@pytest.mark.parametrize(("raw", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("RECITATION", "content_filter"), ("PROHIBITED_CONTENT",
                                                                                      "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("MISSING_THOUGHT_SIGNATURE", "error"), ("OTHER", "other"),
    ("SOMETHING_NEW", "other"),
])
def test_finish_reasons(raw: str, expected: str) -> None:
    resp = gm.parse_response(candidate([{"text": "x"}], raw))
    assert (resp.finish_reason, resp.raw_finish_reason) == (expected, raw)


def test_non_sse_stream_array_is_accepted() -> None:
    chunks = [json.loads(p) for p in sse_payloads("gemini_text.sse")]
    assert gm.parse_response(json.dumps(chunks)) == gm.parse_response(fixture_bytes("gemini_text.json"))


def test_malformed_bodies_raise_response_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        gm.parse_response(b'{"candidates": [')
    with pytest.raises(ResponseFormatError, match="candidates"):
        gm.parse_response({"usageMetadata": {"promptTokenCount": 3}})
    with pytest.raises(ResponseFormatError):
        gm.parse_response("[1, 2]")
    with pytest.raises(ResponseFormatError):
        gm.StreamParser().feed("data: not-json")
    assert gm.StreamParser().feed("") == []
    assert gm.StreamParser().feed(b"  ") == []


def test_stream_error_payload_raises() -> None:
    parser = gm.StreamParser()
    parser.feed(json.dumps(candidate([{"text": "Hel"}])))
    with pytest.raises(ServerError, match="overloaded") as info:
        parser.feed(json.dumps({"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                          "status": "UNAVAILABLE"}}))
    assert info.value.retryable
    assert info.value.status_code == 503


# --------------------------------------------------------------------------- errors and models

QUOTA = {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                   "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}


@pytest.mark.parametrize(("body", "expected"), [
    (QUOTA, ("You exceeded your current quota.", "rate_limit")),
    (b'{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", '
     b'"status": "INVALID_ARGUMENT"}}', ("API key not valid. Please pass a valid API key.", "invalid_request")),
    ([{"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED"}}],
     ("Permission denied", "forbidden")),
    ({"error": {"code": 499, "message": "cancelled", "status": "CANCELLED"}}, ("cancelled", "cancelled")),
    (b"<html>502 Bad Gateway</html>", ("<html>502 Bad Gateway</html>", None)),
    (b"", ("HTTP 500", None)),
    ({"unexpected": 1}, ("HTTP 500", None)),
])
def test_parse_error(body: Any, expected: tuple[str, str | None]) -> None:
    assert gm.parse_error(500, body) == expected


def test_error_codes_map_to_the_error_tree_and_retry_delay() -> None:
    from aixpy.llm.codecs._common import error_for_code

    kinds = {"RESOURCE_EXHAUSTED": RateLimitError, "UNAVAILABLE": ServerError, "UNAUTHENTICATED": AuthenticationError,
             "NOT_FOUND": InvalidRequestError, "CANCELLED": ProviderError}
    for status, exc in kinds.items():
        _message, code = gm.parse_error(400, {"error": {"message": "m", "status": status}})
        assert type(error_for_code(code, "m", provider="gemini")) is exc
    assert gm.retry_after(json.dumps(QUOTA)) == 37.0
    assert gm.retry_after(b"nope") is None
    assert gm.retry_after(None) is None


def test_parse_models() -> None:
    body = {"models": [
        {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "inputTokenLimit": 1048576,
         "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"]},
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}],
        "nextPageToken": "Ch1tb2RlbHMvdGV4dC1lbWJlZGRpbmctMDA0"}
    assert gm.parse_models(json.dumps(body)) == ["gemini-2.5-flash", "text-embedding-004"]
    assert gm.parse_models(body, method="generateContent") == ["gemini-2.5-flash"]
    with pytest.raises(ResponseFormatError):
        gm.parse_models({"data": []})


def test_invalid_tool_arguments_raise_the_typed_error_naming_the_call() -> None:
    body = candidate([{"functionCall": {"id": "fc-1", "name": "get_weather", "args": ["Rome"]}}], "STOP")
    with pytest.raises(InvalidToolArgumentsError) as info:
        gm.parse_response(body)
    assert (info.value.tool_name, info.value.tool_call_id) == ("get_weather", "fc-1")
    assert "not an object" in str(info.value)
