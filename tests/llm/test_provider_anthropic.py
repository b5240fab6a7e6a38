"""Anthropic provider on real loopback HTTP: headers, body, streamed tool calls arriving whole, usage."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from aixpy.errors import ConfigError, RateLimitError, ServerError
from aixpy.llm import ResponseFormat, ToolSpec
from aixpy.llm.providers.anthropic import AnthropicModel

from .test_provider_server import FIXTURES, Reply, ScriptedServer

KEY = "sk-ant-api03-TestKey0123456789"
WEATHER = ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {"location": {"type": "string"}}})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def claude(server: ScriptedServer, model: str = "claude-sonnet-4-20250514") -> AnthropicModel:
    return AnthropicModel(model, api_key=KEY, endpoint=server.url, environ={})


def message(text: str = "Hi there", **usage: int) -> dict[str, object]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 4, **usage}}


def test_chat_headers_body_and_cost_with_cache(server: ScriptedServer) -> None:
    server.push(Reply.json(message(cache_read_input_tokens=1000, cache_creation_input_tokens=100)))
    with claude(server) as model:
        reply = model.chat("Hello", system="Be kind.")
    req = server.last
    assert (req.method, req.path) == ("POST", "/v1/messages")
    assert req.headers["x-api-key"] == KEY
    assert "authorization" not in req.headers
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.json["system"] == "Be kind."
    assert req.json["max_tokens"] == 4096
    assert reply.text == "Hi there"
    assert reply.provider == "anthropic"
    assert reply.finish_reason == "stop"
    usage = reply.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_creation_tokens) == \
        (1110, 1000, 100)
    # 10 fresh at $3, 1000 cached at $0.30, 100 written at $3.75, 4 out at $15 (per 1M)
    assert reply.cost_usd == pytest.approx((10 * 3 + 1000 * 0.3 + 100 * 3.75 + 4 * 15) / 1e6)


def test_a_default_temperature_never_travels_with_top_p_nor_to_models_without_sampling(server: ScriptedServer) -> None:
    server.push(*(Reply.json(message()) for _ in range(4)))
    with AnthropicModel("claude-sonnet-4-6", api_key=KEY, endpoint=server.url, environ={}, temperature=0.7) as model:
        model.chat("Hi")
        model.chat("Hi", top_p=0.9)  # the request's own top_p wins over the model's default temperature
        model.chat("Hi", temperature=0.2, top_p=0.9)  # both asked for: temperature is sent
    with AnthropicModel("claude-opus-4-7", api_key=KEY, endpoint=server.url, environ={}, temperature=0.7) as model:
        model.chat("Hi", top_p=0.9)
    sampling = [{k: r.json[k] for k in ("temperature", "top_p") if k in r.json} for r in server.requests]
    assert sampling == [{"temperature": 0.7}, {"top_p": 0.9}, {"temperature": 0.2}, {}]


def test_streamed_tool_calls_arrive_whole(server: ScriptedServer) -> None:
    plain_body = (FIXTURES / "anthropic_tool_use.json").read_bytes()
    server.push(Reply.sse_file("anthropic_tool_use.sse"), Reply.raw(plain_body))
    with claude(server) as model:
        with model.stream("Weather in SF?", tools=[WEATHER]) as s:
            kinds = [e.kind for e in s]
        streamed = s.response
        plain = model.chat("Weather in SF?", tools=[WEATHER])
    assert server.requests[0].json["stream"] is True
    assert kinds[-2:] == ["usage", "finish"]
    assert kinds.count("usage") == 1
    assert kinds.count("finish") == 1
    assert streamed.tool_calls
    assert streamed.tool_calls[0].name == "get_weather"
    assert streamed.tool_calls[0].arguments["location"].startswith("San Francisco")
    assert streamed == plain


def test_json_mode_through_the_forced_tool(server: ScriptedServer) -> None:
    body = {"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {"n": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 5}}
    server.push(Reply.json(body))
    with claude(server, "claude-haiku-4-5") as model:
        reply = model.chat("give json", response_format=ResponseFormat.json_schema("answer", {"type": "object"}))
    assert server.last.json["tool_choice"] == {"type": "tool", "name": "answer"}
    assert json.loads(reply.text) == {"n": 1}
    assert reply.finish_reason == "stop"
    assert not reply.tool_calls


def test_overloaded_529_and_rate_limit_errors(server: ScriptedServer) -> None:
    server.push(Reply.json({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                           status=529),
                Reply.json({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
                           status=429, headers={"retry-after": "12"}))
    with claude(server) as model:
        with pytest.raises(ServerError):
            model.chat("x")
        with pytest.raises(RateLimitError) as info:
            model.chat("x")
    assert info.value.retry_after == 12
    assert info.value.provider == "anthropic"


def test_list_models(server: ScriptedServer) -> None:
    server.push(Reply.json({"data": [{"id": "claude-opus-4-5", "type": "model"}], "has_more": False}))
    with claude(server) as model:
        assert model.list_models() == ["claude-opus-4-5"]
    assert server.last.path.startswith("/v1/models")


def test_key_from_env_and_missing_key() -> None:
    model = AnthropicModel(environ={"ANTHROPIC_API_KEY": KEY})
    assert model.base_url == "https://api.anthropic.com"
    assert set(model.http.config.policy.allowed_hosts or ()) == {"api.anthropic.com"}
    assert KEY not in repr(model)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicModel(environ={})
