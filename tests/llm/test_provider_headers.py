"""``headers:`` and ``endpoint`` on every remote LLM provider, against a loopback server that records requests.

* the configured headers arrive with every request, next to the provider's own credentials;
* their values are secrets: not in reprs, nor in errors (the server echoes them back in an error body);
* a header that would replace the provider's credential header is a ConfigError naming it, unless
  ``allow_auth_override: true``, which then sends it instead of the key;
* CR/LF in a value or a malformed name is refused;
* OpenAI-style base URLs reach ``/v1/chat/completions`` with or without ``/v1`` (a bare origin gets it;
  any other path prefix is kept as given);
* an agent's ``providers:`` entry may name ``openai_compatible`` or one of its aliases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aixpy import llm
from aixpy.config import AgentConfig, ProviderEntry
from aixpy.errors import AixpyError, ConfigError
from tests._services.headers import CREDENTIAL_HEADERS, HEADERS, OPENAI_BASE_CASES, SECRET, assert_refused
from tests._services.loopback_http import LoopbackHTTPServer, Recorded, Reply

# provider -> (entry settings besides endpoint/headers, the credential header it sends, its value)
PROVIDERS: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "openai": ({"model": "gpt-4o-mini", "api_key": "sk-key-1"}, "authorization", "Bearer sk-key-1"),
    "anthropic": ({"model": "claude-3-5-haiku-latest", "api_key": "ant-key-1"}, "x-api-key", "ant-key-1"),
    "gemini": ({"model": "gemini-2.5-flash", "api_key": "gem-key-1"}, "x-goog-api-key", "gem-key-1"),
    "vertexai": ({"model": "gemini-2.5-flash", "project_id": "proj", "location": "us-central1",
                  "options": {"token_provider": lambda: "ya29.tok"}}, "authorization", "Bearer ya29.tok"),
    "xai": ({"model": "grok-4", "api_key": "xai-key-1"}, "authorization", "Bearer xai-key-1"),
    "huggingface": ({"model": "org/model", "api_key": "hf_key1"}, "authorization", "Bearer hf_key1"),
    "ollama": ({"model": "llama3.2"}, "", None),
    "openai_compatible": ({"model": "m", "api_key": "vllm-key-1"}, "authorization", "Bearer vllm-key-1"),
}


def _echo(rec: Recorded) -> Reply:
    """A 400 whose body quotes the gateway header back (a careless gateway): errors must not show it."""
    body = {"error": {"message": f"bad request, token {rec.headers.get('x-gateway-token')}"}}
    return Reply(json.dumps(body).encode(), status=400)


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer(name="llm-headers") as srv:
        srv.handler = _echo
        yield srv


def _entry(provider: str, url: str, **extra: Any) -> dict[str, Any]:
    settings = PROVIDERS[provider][0]
    return {**settings, "provider": provider, "endpoint": url, **extra}


def _call(model: llm.ChatModel) -> AixpyError:
    with model, pytest.raises(AixpyError) as info:
        model.chat("hi")
    return info.value


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_headers_arrive_next_to_the_key_and_stay_secret(provider: str, server: LoopbackHTTPServer) -> None:
    model = llm.new(_entry(provider, server.url, headers=HEADERS), environ={})
    err = _call(model)
    rec = server.take_one()
    assert rec.headers["x-gateway-token"] == SECRET
    assert rec.headers["x-tenant"] == "tenant-7"
    _, auth, value = PROVIDERS[provider]
    if value is not None:
        assert rec.headers[auth] == value  # the provider's own credential is untouched
    for shown in (str(err), repr(err), repr(model), repr(model.http), repr(model.http.config),
                  str(getattr(err, "body", ""))):
        assert SECRET not in shown


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("name", CREDENTIAL_HEADERS)
def test_credential_headers_are_refused_without_allow_auth_override(provider: str, name: str,
                                                                     server: LoopbackHTTPServer) -> None:
    assert_refused(lambda: llm.new(_entry(provider, server.url, headers={name: "Bearer other"}), environ={}), name,
                   server)


@pytest.mark.parametrize("provider", [p for p, (_, auth, _v) in PROVIDERS.items() if auth])
def test_allow_auth_override_sends_the_header_instead_of_the_key(provider: str, server: LoopbackHTTPServer) -> None:
    _, auth, value = PROVIDERS[provider]
    name = auth.title()  # another case than the provider's own spelling: still one header
    model = llm.new(_entry(provider, server.url, headers={name: "gateway-cred-1"}, allow_auth_override=True),
                    environ={})
    _call(model)
    rec = server.take_one()
    assert rec.headers[auth] == "gateway-cred-1"
    assert value not in rec.headers.values()


@pytest.mark.parametrize("headers", [{"X-A": "v\r\nInjected: 1"}, {"X-A": "v\nx"}, {"X A": "v"},
                                     {"X-A:": "v"}, {"Host": "evil.example"}, {"Content-Length": "1"}])
def test_malformed_and_framing_headers_are_refused(headers: dict[str, str], server: LoopbackHTTPServer) -> None:
    with pytest.raises(ConfigError) as info:
        llm.new(_entry("openai", server.url, headers=headers), environ={})
    assert "header" in str(info.value)
    assert "Injected" not in str(info.value)
    assert "evil" not in str(info.value)
    with pytest.raises(ConfigError) as info:  # the Python API applies the same rule
        llm.new("openai:gpt-4o-mini", api_key="k", endpoint=server.url, headers=headers, environ={})
    assert (info.value.path or "").startswith("headers.")
    assert server.take() == []


def test_provider_set_headers_cannot_be_replaced(server: LoopbackHTTPServer) -> None:
    with pytest.raises(ConfigError) as info:
        llm.new(_entry("anthropic", server.url, headers={"Anthropic-Version": "1999-01-01"}), environ={})
    assert "Anthropic-Version" in str(info.value)


def test_headers_through_the_python_api(server: LoopbackHTTPServer) -> None:
    model = llm.new("openai:gpt-4o-mini", api_key="k", endpoint=server.url, headers=HEADERS, environ={})
    _call(model)
    assert server.take_one().headers["x-gateway-token"] == SECRET


# --------------------------------------------------------------------------- OpenAI-style base URLs

OPENAI_STYLE = ["openai", "xai", "openai_compatible"]


@pytest.mark.parametrize("provider", OPENAI_STYLE)
@pytest.mark.parametrize(("suffix", "base"), OPENAI_BASE_CASES)
def test_openai_style_base_url_with_or_without_v1(provider: str, suffix: str, base: str,
                                                  server: LoopbackHTTPServer) -> None:
    model = llm.new(_entry(provider, server.url + suffix), environ={})
    _call(model)
    assert server.take_one().path == base + "/chat/completions"


def test_base_url_is_an_alias_of_endpoint(server: LoopbackHTTPServer) -> None:
    entry = {**PROVIDERS["openai"][0], "provider": "openai", "base_url": server.url}
    assert ProviderEntry.model_validate(entry).endpoint == server.url
    _call(llm.new(entry, environ={}))
    assert server.take_one().path == "/v1/chat/completions"
    agent = AgentConfig.model_validate({"name": "a", **entry})
    assert agent.endpoint == server.url


@pytest.mark.parametrize("block", [
    {"model": "gpt-4o-mini", "provider": "openai", "endpoint": "http://a.example", "base_url": "http://b.example"},
    {"name": "a", "model": "gpt-4o-mini", "endpoint": "http://a.example", "base_url": "http://b.example"},
])
def test_endpoint_and_base_url_together_is_an_error_naming_both(block: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        llm.new(block, environ={})
    assert "endpoint" in str(info.value)
    assert "base_url" in str(info.value)


# --------------------------------------------------------------------------- openai_compatible in providers:


@pytest.mark.parametrize("name", ["openai_compatible", "openai-compatible", "vllm", "llamacpp"])
def test_agent_providers_accept_openai_compatible(name: str, server: LoopbackHTTPServer) -> None:
    agent = {"name": "gw", "providers": [{"model": "my-model", "provider": name, "endpoint": server.url,
                                          "headers": {"X-Tenant": "t1"}}]}
    assert AgentConfig.model_validate(agent).providers[0].provider == "openai_compatible"  # type: ignore[index]
    server.handler = lambda rec: Reply(json.dumps({
        "id": "c1", "object": "chat.completion", "model": "my-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode())
    with llm.new(agent, environ={}) as model:
        answer = model.chat("ping")
    assert answer.text == "pong"
    rec = server.take_one()
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["x-tenant"] == "t1"
