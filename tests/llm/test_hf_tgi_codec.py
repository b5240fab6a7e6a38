"""HuggingFace text-generation codec (TGI ``/generate``, ``/generate_stream``, serverless ``/models/{id}``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aixpy.errors import (
    AuthenticationError,
    InvalidInputError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.llm.codecs import hf_tgi as hf
from aixpy.llm.codecs._common import error_for_code
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

MODEL = "mistralai/Mistral-7B-v0.1"


def stream_events(payloads: list[str]) -> list[StreamEvent]:
    return [e for p in payloads for e in hf.parse_stream_event(p)]


def token(text: str, *, special: bool = False, last: str | None = None,
          details: dict[str, Any] | None = None) -> str:
    return json.dumps({"index": 1, "token": {"id": 7, "text": text, "logprob": -0.1, "special": special},
                       "generated_text": last, "details": details})


# --------------------------------------------------------------------------- endpoints and prompt


def test_paths_urls_and_headers() -> None:
    assert (hf.path(False), hf.path(True)) == ("/generate", "/generate_stream")
    assert hf.serverless_url(MODEL) == "https://router.huggingface.co/hf-inference/models/mistralai/Mistral-7B-v0.1"
    assert hf.serverless_url("gpt2", base_url="https://api-inference.huggingface.co/") == (
        "https://api-inference.huggingface.co/models/gpt2")
    for bad in ("../secrets", "org/name/extra", "org/..", "a b", "org/name?x=1"):
        with pytest.raises(InvalidInputError):
            hf.serverless_url(bad)
    assert hf.headers("hf_abc") == {"content-type": "application/json", "authorization": "Bearer hf_abc"}
    assert hf.headers(None) == {"content-type": "application/json"}
    assert hf.ROUTER_CHAT_URL == "https://router.huggingface.co/v1/chat/completions"


def test_single_user_message_is_sent_as_is() -> None:
    assert hf.render_prompt([UserMessage("My name is Olivier and I")]) == "My name is Olivier and I"
    assert hf.render_prompt([UserMessage([TextPart("a"), TextPart("b")])]) == "a\n\nb"


def test_conversation_is_rendered_as_a_transcript() -> None:
    messages: list[Message] = [SystemMessage("Be brief."), UserMessage("Hi"), AssistantMessage("Hello!"),
                               UserMessage("Capital of France?")]
    assert hf.render_prompt(messages) == (
        "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Capital of France?\n\nAssistant:")


@pytest.mark.parametrize("messages", [
    [UserMessage("hi"), AssistantMessage(tool_calls=[ToolCall("c1", "f")]), ToolMessage("x", "c1")],
    [UserMessage("hi"), ToolMessage("x", "c1")],
    [UserMessage([TextPart("what is this"), ImagePart.from_bytes(b"\x89PNG", "image/png")])],
])
def test_tools_and_images_point_to_the_chat_route(messages: list[Any]) -> None:
    with pytest.raises(InvalidInputError, match=r"router\.huggingface\.co/v1/chat/completions"):
        hf.render_prompt(messages)


# --------------------------------------------------------------------------- request


def test_build_request_every_feature() -> None:
    req = ChatRequest(MODEL, [UserMessage("Deep learning is")], max_tokens=20, temperature=0.7, top_p=0.95,
                      stop=["\n\n"], seed=42, extra={"top_k": 10, "repetition_penalty": 1.03,
                                                     "options": {"use_cache": False}, "truncate": 1000})
    assert hf.build_request(req, stream=False, wait_for_model=True) == {
        "inputs": "Deep learning is",
        "parameters": {"max_new_tokens": 20, "temperature": 0.7, "top_p": 0.95, "stop": ["\n\n"], "seed": 42,
                       "return_full_text": False, "details": True, "top_k": 10, "repetition_penalty": 1.03,
                       "truncate": 1000},
        "options": {"wait_for_model": True, "use_cache": False},
    }


def test_values_tgi_rejects_are_translated() -> None:
    req = ChatRequest(MODEL, [UserMessage("x")], temperature=0.0, top_p=1.0)
    body = hf.build_request(req, stream=True, details=False)
    assert body == {"inputs": "x", "parameters": {"do_sample": False, "return_full_text": False}, "stream": True}


def test_json_mode_uses_the_grammar() -> None:
    schema = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    req = ChatRequest(MODEL, [UserMessage("x")], response_format=ResponseFormat.json_schema("loc", schema))
    assert hf.build_request(req, stream=False)["parameters"]["grammar"] == {"type": "json", "value": schema}
    req = ChatRequest(MODEL, [UserMessage("x")], response_format=ResponseFormat.json_object())
    assert hf.build_request(req, stream=False)["parameters"]["grammar"] == {"type": "json",
                                                                            "value": {"type": "object"}}


def test_tools_are_refused_and_own_prompt_accepted() -> None:
    tool = ToolSpec("get_weather", "", {"type": "object", "properties": {"city": {"type": "string"}}})
    with pytest.raises(InvalidInputError, match="tools"):
        hf.build_request(ChatRequest(MODEL, [UserMessage("x")], tools=[tool]), stream=False)
    own = ChatRequest(MODEL, [UserMessage("ignored")], extra={"inputs": "<s>[INST] Hi [/INST]",
                                                              "parameters": {"details": False}})
    body = hf.build_request(own, stream=False)
    assert body["inputs"] == "<s>[INST] Hi [/INST]"
    assert body["parameters"]["details"] is False


# --------------------------------------------------------------------------- replies


def test_stream_folds_to_the_non_streamed_reply() -> None:
    events = stream_events([data for _event, data in read_sse("tgi_generate_stream.sse")])
    streamed = fold_stream(events, provider="huggingface")
    parsed = hf.parse_response(fixture_bytes("tgi_generate.json"))
    assert streamed == parsed == ChatResponse(
        text=" Deep learning is a subset of machine learning.", finish_reason="stop", usage=Usage(6, 10),
        provider="huggingface", raw_finish_reason="eos_token")
    assert "</s>" not in "".join(e.text for e in events)


def test_serverless_list_reply_and_reply_without_details() -> None:
    body = [{"generated_text": " Paris.", "details": {"finish_reason": "stop_sequence", "generated_tokens": 3,
                                                      "seed": 42, "prefill": [], "tokens": []}}]
    resp = hf.parse_response(json.dumps(body).encode())
    assert (resp.text, resp.finish_reason, resp.raw_finish_reason, resp.usage) == (
        " Paris.", "stop", "stop_sequence", Usage(0, 3))
    bare = hf.parse_response('[{"generated_text": "Paris."}]')
    assert (bare.text, bare.finish_reason, bare.usage) == ("Paris.", "other", None)


@pytest.mark.parametrize(("raw", "expected"), [("eos_token", "stop"), ("stop_sequence", "stop"),
                                               ("length", "length")])
def test_finish_reasons(raw: str, expected: str) -> None:
    details = {"finish_reason": raw, "generated_tokens": 1, "seed": None, "input_length": 4}
    events = stream_events([token("Hi", last="Hi", details=details)])
    assert fold_stream(events).finish_reason == expected
    assert hf.parse_response({"generated_text": "Hi", "details": {**details, "prefill": [], "tokens": []}}
                             ).finish_reason == expected


def test_stream_without_details_still_finishes() -> None:
    events = stream_events([token("Hel"), token("lo"), token("</s>", special=True, last="Hello"), "[DONE]", ""])
    resp = fold_stream(events)
    assert (resp.text, resp.finish_reason, resp.usage) == ("Hello", "other", None)


def test_malformed_bodies_raise_response_format_error() -> None:
    with pytest.raises(ResponseFormatError):
        hf.parse_response(b'{"generated_text": ')
    with pytest.raises(ResponseFormatError, match="generated_text"):
        hf.parse_response({"text": "x"})
    with pytest.raises(ResponseFormatError):
        hf.parse_response("[]")
    with pytest.raises(ResponseFormatError):
        hf.parse_stream_event("{nope")


def test_stream_error_event_raises() -> None:
    error = json.dumps({"error": "Request failed during generation: Server error: CUDA out of memory",
                        "error_type": "generation"})
    with pytest.raises(ServerError, match="CUDA") as info:
        hf.parse_stream_event(error)
    assert info.value.retryable
    assert info.value.provider == "huggingface"


# --------------------------------------------------------------------------- errors

LOADING = {"error": "Model mistralai/Mistral-7B-v0.1 is currently loading", "estimated_time": 20.01}


@pytest.mark.parametrize(("body", "expected", "exc"), [
    (LOADING, ("Model mistralai/Mistral-7B-v0.1 is currently loading", "service_unavailable"), ServerError),
    ({"error": "Model is overloaded", "error_type": "overloaded"}, ("Model is overloaded", "overloaded"),
     ServerError),
    ({"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"},
     ("Input validation error: `temperature` must be strictly positive", "invalid_request"), InvalidRequestError),
    ({"error": ["Error in `parameters.top_p`: ensure this value is less than 1"]},
     ("Error in `parameters.top_p`: ensure this value is less than 1", None), ProviderError),
    (b'{"error":"Rate limit reached. You reached free usage limit (reset hourly)."}',
     ("Rate limit reached. You reached free usage limit (reset hourly).", "rate_limit"), RateLimitError),
    ({"error": "Invalid credentials in Authorization header"},
     ("Invalid credentials in Authorization header", "unauthorized"), AuthenticationError),
    ({"error": "Model org/nope does not exist"}, ("Model org/nope does not exist", "model_not_found"),
     InvalidRequestError),
    (b"<html>Bad Gateway</html>", ("<html>Bad Gateway</html>", None), ProviderError),
    (b"", ("HTTP 503", None), ProviderError),
])
def test_parse_error(body: Any, expected: tuple[str, str | None], exc: type[ProviderError]) -> None:
    assert hf.parse_error(503, body) == expected
    assert type(error_for_code(expected[1], expected[0], provider="huggingface")) is exc


def test_loading_model_is_retryable_with_an_estimate() -> None:
    assert hf.estimated_time(json.dumps(LOADING)) == 20.01
    assert hf.estimated_time({"error": "x"}) is None
    assert hf.estimated_time(b"not json") is None
    with pytest.raises(ServerError, match="currently loading") as info:
        hf.parse_response(LOADING)
    assert info.value.retryable
