"""OpenAI-format providers (OpenAI, xAI, HuggingFace router, any OpenAI-compatible server) on real
loopback HTTP: the bytes they send, what they make of the bytes they get, keys and endpoints."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aixpy.errors import AuthenticationError, BlockedURLError, ConfigError, InvalidRequestError
from aixpy.llm import ChatRequest, ChatResponse, ResponseFormat, ToolSpec, UserMessage
from aixpy.llm.providers.huggingface import HuggingFaceModel
from aixpy.llm.providers.openai import OpenAIModel
from aixpy.llm.providers.openai_compatible import OpenAICompatibleModel
from aixpy.llm.providers.xai import XAIModel

from .test_provider_server import WEATHER_CALL, Reply, ScriptedServer, oa_completion, oa_text_stream

KEY = "sk-proj-TestKey0123456789abcdefXYZ"
WEATHER = ToolSpec("get_weather", "Weather of a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def openai(server: ScriptedServer, **kw: object) -> OpenAIModel:
    return OpenAIModel("gpt-4o-mini", api_key=KEY, endpoint=server.url + "/v1", environ={}, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- chat


def test_chat_request_bytes_and_answer(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion("Hello!")))
    with openai(server) as model:
        reply = model.chat("Hi", system="Be brief.", temperature=0.2, max_tokens=50)
    req = server.last
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"] == "application/json"
    assert req.json == {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50,
                        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    assert reply.text == "Hello!"
    assert reply.provider == "openai"
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (10, 5)
    assert reply.cost_usd == pytest.approx((10 * 0.15 + 5 * 0.60) / 1e6)
    assert reply.latency_ms is not None
    assert reply.latency_ms > 0


def test_model_defaults_apply_when_the_request_has_none(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion()), Reply.json(oa_completion()), Reply.json(oa_completion()))
    with openai(server, temperature=0.7, max_tokens=1000) as model:
        model.chat("a")
        assert server.last.json["temperature"] == 0.7
        assert server.last.json["max_tokens"] == 1000
        model.chat("b", temperature=0.0)
        assert server.last.json["temperature"] == 0.0
        model.chat("c", top_p=0.9)  # OpenAI takes both: the default temperature still applies
        assert (server.last.json["temperature"], server.last.json["top_p"]) == (0.7, 0.9)


def test_tool_call_and_json_schema(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion(None, tool_calls=[WEATHER_CALL], finish="tool_calls")))
    with openai(server) as model:
        reply = model.chat("Weather in Paris?", tools=[WEATHER], tool_choice="get_weather")
    body = server.last.json
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert reply.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("call_1", "get_weather", {"city": "Paris"})]

    server.push(Reply.json(oa_completion('{"a": 1}')))
    with openai(server) as model:
        model.chat("json", response_format=ResponseFormat.json_schema("thing", {"type": "object"}))
    assert server.last.json["response_format"]["type"] == "json_schema"


def test_typed_python_function_as_tool(server: ScriptedServer) -> None:
    def get_time(timezone: str) -> str:
        """Current time.

        Args:
            timezone: an IANA name.
        """
        return timezone

    server.push(Reply.json(oa_completion("ok")))
    with openai(server) as model:
        model.chat("time?", tools=[get_time])
    fn = server.last.json["tools"][0]["function"]
    assert fn["name"] == "get_time"
    assert fn["parameters"]["properties"]["timezone"]["type"] == "string"


# --------------------------------------------------------------------------- streaming


def test_stream_asks_for_usage_and_ends_with_usage_then_finish(server: ScriptedServer) -> None:
    server.push(oa_text_stream(["Hel", "lo", "!"], usage=(7, 3)))
    with openai(server) as model, model.stream("Hi") as s:
        events = list(s)
    body = server.last.json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [e.kind for e in events] == ["text", "text", "text", "usage", "finish"]
    assert s.response.text == "Hello!"
    assert s.response.usage is not None
    assert s.response.usage.total_tokens == 10
    assert s.response.cost_usd == pytest.approx((7 * 0.15 + 3 * 0.6) / 1e6)
    assert s.response.provider == "openai"


def test_streamed_and_plain_replies_are_equal(server: ScriptedServer) -> None:
    server.push(Reply.sse_file("openai_tools.sse"), Reply.raw(server_fixture("openai_tools.json")))
    with openai(server) as model:
        with model.stream("x", tools=[WEATHER]) as s:
            streamed = s.get_response()
        plain = model.chat("x", tools=[WEATHER])
    assert len(streamed.tool_calls) == 2
    assert streamed == plain


def server_fixture(name: str) -> bytes:
    from .test_provider_server import FIXTURES

    return (FIXTURES / name).read_bytes()


async def test_async_stream_text_deltas(server: ScriptedServer) -> None:
    server.push(oa_text_stream(["a", "b"]))
    async with openai(server) as model, model.astream("Hi") as s:
        texts = [t async for t in s.text_deltas()]
    assert texts == ["a", "b"]
    assert s.response.text == "ab"


# --------------------------------------------------------------------------- keys, errors, endpoints


def test_key_from_environment_and_explicit_wins(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion()), Reply.json(oa_completion()))
    env = {"OPENAI_API_KEY": "sk-from-env-0123456789"}
    with OpenAIModel(endpoint=server.url + "/v1", environ=env) as model:
        model.chat("x")
    assert server.last.headers["authorization"] == "Bearer sk-from-env-0123456789"
    with OpenAIModel(api_key="sk-explicit-0123456789", endpoint=server.url + "/v1", environ=env) as model:
        model.chat("x")
    assert server.last.headers["authorization"] == "Bearer sk-explicit-0123456789"


@pytest.mark.parametrize(("cls", "var"), [(OpenAIModel, "OPENAI_API_KEY"), (XAIModel, "XAI_API_KEY"),
                                           (HuggingFaceModel, "HUGGINGFACE_API_KEY")])
def test_missing_key_is_an_early_config_error_naming_the_variable(cls: type[OpenAIModel], var: str) -> None:
    with pytest.raises(ConfigError, match=var) as info:
        cls(environ={})
    assert not isinstance(info.value, AuthenticationError)


def test_key_never_in_repr_logs_or_errors(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    server.push(Reply.json({"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}},
                           status=401))
    caplog.set_level(logging.DEBUG)
    model = openai(server)
    with model, pytest.raises(AuthenticationError) as info:
        model.chat("x")
    assert KEY not in repr(model)
    assert KEY not in repr(model.http)
    assert KEY not in repr(model.http.config)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert KEY not in (info.value.body or "")
    assert KEY not in caplog.text
    assert info.value.provider == "openai"
    assert info.value.status_code == 401


def test_bad_request_is_invalid_request(server: ScriptedServer) -> None:
    server.push(Reply.json({"error": {"message": "bad temperature"}}, status=400))
    with openai(server) as model, pytest.raises(InvalidRequestError, match="bad temperature"):
        model.chat("x")


def test_list_models(server: ScriptedServer) -> None:
    server.push(Reply.json({"object": "list", "data": [{"id": "gpt-4o"}, {"id": "o3"}]}))
    with openai(server) as model:
        assert model.list_models() == ["gpt-4o", "o3"]
    assert (server.last.method, server.last.path) == ("GET", "/v1/models")


def test_official_endpoint_and_policy() -> None:
    model = OpenAIModel(api_key=KEY, environ={})
    assert model.base_url == "https://api.openai.com/v1"
    policy = model.http.config.policy
    assert policy.name == "public"
    assert set(policy.allowed_hosts or ()) == {"api.openai.com"}
    assert model.model == "gpt-4o-mini"
    assert model.supports_tools
    assert model.supports_vision


def test_configured_public_endpoint_is_the_only_host_allowed() -> None:
    model = OpenAIModel(api_key=KEY, endpoint="https://gateway.example.com/openai/v1", environ={})
    assert model.base_url == "https://gateway.example.com/openai/v1"
    assert set(model.http.config.policy.allowed_hosts or ()) == {"gateway.example.com"}


def test_plain_http_to_a_public_host_is_refused() -> None:
    with pytest.raises(BlockedURLError):
        OpenAIModel(api_key=KEY, endpoint="http://gateway.example.com/v1", environ={})


# --------------------------------------------------------------------------- xAI, compatible servers, HF router


def test_xai_defaults_to_a_grok_model_at_x_ai() -> None:
    model = XAIModel(environ={"XAI_API_KEY": "xai-0123456789abcdef"})
    assert model.model.startswith("grok-")
    assert model.model != "gpt-4-turbo"
    assert model.base_url == "https://api.x.ai/v1"
    assert set(model.http.config.policy.allowed_hosts or ()) == {"api.x.ai"}


def test_xai_chat_on_loopback(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion("grok says hi", model="grok-4-0709")))
    with XAIModel(api_key="xai-0123456789abcdef", endpoint=server.url + "/v1", environ={}) as model:
        reply = model.chat("hi")
    assert server.last.headers["authorization"] == "Bearer xai-0123456789abcdef"
    assert reply.provider == "xai"
    assert reply.model == "grok-4-0709"
    assert reply.cost_usd == pytest.approx((10 * 3 + 5 * 15) / 1e6)


def test_openai_compatible_needs_an_endpoint_and_no_key(server: ScriptedServer) -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        OpenAICompatibleModel("qwen", endpoint=None)
    server.push(Reply.json(oa_completion("local", model="qwen")), oa_text_stream(["x"]))
    with OpenAICompatibleModel("qwen", endpoint=server.url + "/v1") as model:
        reply = model.chat("hi")
        assert model.http.config.policy.name == "local"
        assert "authorization" not in server.last.headers
        assert reply.provider == "openai_compatible"
        assert reply.cost_usd is None
        with model.stream("hi") as s:
            s.get_response()


def test_openai_compatible_stream_usage_off_for_old_servers(server: ScriptedServer) -> None:
    server.push(oa_text_stream(["x"]))
    with OpenAICompatibleModel("m", endpoint=server.url + "/v1", stream_usage=False) as model, \
            model.stream("hi") as s:
        s.get_response()
    assert "stream_options" not in server.last.json


def test_huggingface_router_defaults_and_token_variables() -> None:
    model = HuggingFaceModel(environ={"HF_TOKEN": "hf_abcdefghijklmnop"})
    assert model.base_url == "https://router.huggingface.co/v1"
    assert model.http.config.secret_headers["Authorization"] == "Bearer hf_abcdefghijklmnop"
    legacy = HuggingFaceModel(endpoint="https://api-inference.huggingface.co",
                              environ={"HUGGINGFACE_API_KEY": "hf_abcdefghijklmnop"})
    assert legacy.base_url == "https://router.huggingface.co/v1"


def test_huggingface_self_hosted_endpoint_needs_no_token(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion("from tgi", model="tgi")))
    with HuggingFaceModel("tgi", endpoint=server.url, environ={}) as model:
        reply: ChatResponse = model.chat("hi")
    assert server.last.path == "/v1/chat/completions"
    assert "authorization" not in server.last.headers
    assert reply.provider == "huggingface"
    assert reply.text == "from tgi"


PERSON = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}


def test_huggingface_endpoint_gets_tgis_grammar_shape_the_router_openais(server: ScriptedServer) -> None:
    server.push(Reply.json(oa_completion('{"name": "Ann"}')), Reply.json(oa_completion("{}")),
                Reply.json(oa_completion("{}")))
    with HuggingFaceModel("tgi", endpoint=server.url, environ={}) as model:
        model.chat("Ann", response_format=ResponseFormat.json_schema("person", PERSON))
        assert server.last.json["response_format"] == {"type": "json_object", "value": PERSON}
        model.chat("{}", response_format="json_object")  # no schema: as is
        assert server.last.json["response_format"] == {"type": "json_object"}
        model.chat("Ann", response_format=ResponseFormat.json_schema("person", PERSON),
                   extra={"response_format": {"type": "json", "value": PERSON}})  # extra is sent as given
        assert server.last.json["response_format"] == {"type": "json", "value": PERSON}
    router = HuggingFaceModel(environ={"HF_TOKEN": "hf_abcdefghijklmnop"})
    req = ChatRequest(router.model, [UserMessage("Ann")], response_format=ResponseFormat.json_schema("person", PERSON))
    call = router.api.chat_call(req, stream=False)
    assert call.json["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "person", "schema": PERSON, "strict": True}}
    router.close()


def test_stream_that_ends_properly_without_a_finish_reason(server: ScriptedServer) -> None:
    from .test_provider_server import oa_chunk

    server.push(Reply.sse_data([oa_chunk("a"), oa_chunk("b")]))  # [DONE] but no finish_reason chunk
    with openai(server) as model, model.stream("x") as s:
        reply = s.get_response()
    assert reply.text == "ab"
    assert reply.finish_reason == "other"
    assert reply.usage is None
    assert reply.cost_usd is None
