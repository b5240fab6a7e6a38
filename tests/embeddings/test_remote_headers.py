"""``endpoint``/``base_url`` and ``headers:`` on every remote embeddings provider, against the loopback server.

The configured headers arrive next to the provider's key, their values never show in reprs or errors,
a credential header is refused unless ``allow_auth_override: true`` (then it is sent instead of the key),
``endpoint`` and ``base_url`` name the same key in every block (both given: an error naming both), and
OpenAI's base URL works with or without ``/v1``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from aixpy import embeddings
from aixpy.config.embeddings import OllamaEmbeddingsConfig, OpenAIEmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService
from aixpy.errors import AixpyError, ConfigError
from tests._services.headers import CREDENTIAL_HEADERS, HEADERS, OPENAI_BASE_CASES, SECRET, assert_refused
from tests.embeddings._servers import LoopbackServer, Recorded, Reply, fake_openai

# provider -> (its block without endpoint/headers, the path after the endpoint, credential header, value)
PROVIDERS: dict[str, tuple[dict[str, Any], str, str, str | None]] = {
    "openai": ({"api_key": "sk-emb-1", "dimensions": 8}, "/v1/embeddings", "authorization", "Bearer sk-emb-1"),
    "huggingface": ({"model": "org/minilm", "api_key": "hf_emb1", "dimensions": 8}, "/embed", "authorization",
                    "Bearer hf_emb1"),
    "huggingface_tei": ({"model": "m", "api_key": "tei-key-1", "dimensions": 8, "batch_size": 8}, "/embed",
                        "authorization", "Bearer tei-key-1"),
    "ollama": ({"model": "nomic-embed-text"}, "/api/embed", "", None),
}


def _echo(rec: Recorded) -> Reply:
    """A 400 quoting the gateway header back (a careless gateway): errors must not show it."""
    return Reply.error(400, {"error": f"bad request, token {rec.headers.get('x-gateway-token')}"})


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        srv.handler = _echo
        yield srv


def _config(provider: str, url: str, *, key: str = "endpoint", **extra: Any) -> dict[str, Any]:
    block, path, _, _ = PROVIDERS[provider]
    endpoint = url + path if provider == "huggingface" else url  # HF: the URL posted to, as given
    return {"provider": provider, provider: {**block, key: endpoint, **extra}}


def _fail(svc: EmbeddingService) -> AixpyError:
    try:
        with pytest.raises(AixpyError) as info:
            svc.embed_batch(["hello"])
    finally:
        svc.close()
    return info.value


@pytest.mark.parametrize("key", ["endpoint", "base_url"])
@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_headers_arrive_next_to_the_key_and_stay_secret(provider: str, key: str, server: LoopbackServer) -> None:
    svc = embeddings.new(_config(provider, server.url, key=key, headers=HEADERS))
    shown = [repr(svc)]
    err = _fail(svc)
    rec = server.take_one()
    _, path, auth, value = PROVIDERS[provider]
    assert rec.path == path
    assert rec.headers["x-gateway-token"] == SECRET
    assert rec.headers["x-tenant"] == "tenant-7"
    if value is not None:
        assert rec.headers[auth] == value
    shown += [str(err), repr(err), str(getattr(err, "body", ""))]
    for text in shown:
        assert SECRET not in text


@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("name", CREDENTIAL_HEADERS)
def test_credential_headers_are_refused_without_allow_auth_override(provider: str, name: str,
                                                                     server: LoopbackServer) -> None:
    assert_refused(lambda: embeddings.new(_config(provider, server.url, headers={name: "Bearer other"})), name,
                   server)


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_allow_auth_override_sends_the_header_instead_of_the_key(provider: str, server: LoopbackServer) -> None:
    svc = embeddings.new(_config(provider, server.url, headers={"authorization": "Bearer gw-cred"},
                                 allow_auth_override=True))
    _fail(svc)
    rec = server.take_one()
    assert rec.headers["authorization"] == "Bearer gw-cred"


@pytest.mark.parametrize("headers", [{"X-A": "v\r\nInjected: 1"}, {"X-A": "v\nx"}, {"Bad Name": "v"},
                                     {"Host": "evil.example"}, {"x-a": "1", "X-A": "2"}])
@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_malformed_headers_are_refused(provider: str, headers: dict[str, str], server: LoopbackServer) -> None:
    with pytest.raises(ConfigError) as info:
        embeddings.new(_config(provider, server.url, headers=headers))
    assert "header" in str(info.value)
    assert "Injected" not in str(info.value)


def test_hf_option_headers_cannot_be_replaced(server: LoopbackServer) -> None:
    with pytest.raises(ConfigError) as info:
        embeddings.new(_config("huggingface", server.url, headers={"X-Wait-For-Model": "false"}))
    assert "X-Wait-For-Model" in str(info.value)


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_endpoint_and_base_url_together_is_an_error_naming_both(provider: str) -> None:
    cfg = _config(provider, "http://127.0.0.1:9")
    cfg[provider]["base_url"] = "http://127.0.0.1:9"
    with pytest.raises(ConfigError) as info:
        embeddings.new(cfg)
    assert "endpoint" in str(info.value)
    assert "base_url" in str(info.value)


def test_former_attribute_names_still_read() -> None:
    assert OpenAIEmbeddingsConfig(base_url="http://127.0.0.1:9/v1").endpoint == "http://127.0.0.1:9/v1"
    assert OpenAIEmbeddingsConfig(endpoint="http://127.0.0.1:9/v1").base_url == "http://127.0.0.1:9/v1"
    assert OllamaEmbeddingsConfig(endpoint="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"
    copied = OpenAIEmbeddingsConfig().model_copy(update={"base_url": "http://127.0.0.1:9/v1"})
    assert copied.endpoint == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(("suffix", "base"), OPENAI_BASE_CASES)
def test_openai_base_url_with_or_without_v1(suffix: str, base: str, server: LoopbackServer) -> None:
    server.handler = fake_openai(dims=8)
    svc = embeddings.new({"provider": "openai", "openai": {"endpoint": server.url + suffix, "dimensions": 8}})
    try:
        assert [len(v) for v in svc.embed_batch(["a", "b"])] == [8, 8]
    finally:
        svc.close()
    rec = server.take_one()
    assert rec.path == base + "/embeddings"
    assert json.loads(rec.body)["input"] == ["a", "b"]
