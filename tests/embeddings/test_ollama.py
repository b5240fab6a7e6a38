"""``provider: ollama``: where it connects (OLLAMA_HOST, SSRF policy), dimensions, the codec, and faults."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from aixpy import embeddings
from aixpy.config.embeddings import OllamaEmbeddingsConfig
from aixpy.embeddings.codecs import ollama as codec
from aixpy.embeddings.ollama import OllamaEmbeddings
from aixpy.errors import (
    BlockedURLError,
    ConfigError,
    InvalidRequestError,
    ProviderTimeoutError,
    ResponseFormatError,
    ServerError,
)

from . import _servers
from ._servers import LoopbackServer, Reply, fake_ollama, vector_for

loopback = _servers.loopback  # the fixture: a fresh loopback server per test


def svc_for(srv: LoopbackServer, model: str = "nomic-embed-text", **kw: Any) -> OllamaEmbeddings:
    opts = {k: kw.pop(k) for k in ("timeout", "max_concurrency", "options") if k in kw}
    return OllamaEmbeddings(OllamaEmbeddingsConfig(model=model, base_url=srv.url, **kw), **opts)


# --------------------------------------------------------------------------- where it connects (no network)


@pytest.mark.parametrize(("cfg", "env", "url"), [
    ({}, {}, "http://localhost:11434"),
    ({}, {"OLLAMA_HOST": "127.0.0.1:5000"}, "http://127.0.0.1:5000"),
    ({}, {"OLLAMA_HOST": "0.0.0.0"}, "http://127.0.0.1:11434"),
    ({}, {"OLLAMA_HOST": "ollama"}, "http://ollama:11434"),  # a container name
    ({"base_url": "http://10.1.2.3:11434"}, {"OLLAMA_HOST": "127.0.0.1:5000"}, "http://10.1.2.3:11434"),
    ({"base_url": "https://ollama.example.com"}, {}, "https://ollama.example.com"),
])
def test_base_url_from_config_then_ollama_host(cfg: dict[str, str], env: dict[str, str], url: str) -> None:
    with OllamaEmbeddings(OllamaEmbeddingsConfig(**cfg), environ=env) as svc:
        assert svc.base_url == url
        assert svc.max_concurrency == 1
        assert svc.batch_size == 64


@pytest.mark.parametrize("base_url", ["http://ollama.example.com:11434", "http://169.254.169.254", "ftp://x"])
def test_same_ssrf_policy_as_the_llm_provider(base_url: str) -> None:
    with pytest.raises((BlockedURLError, ConfigError)):
        OllamaEmbeddings(OllamaEmbeddingsConfig(base_url=base_url), environ={})


def test_registry_and_dimensions() -> None:
    with embeddings.new({"provider": "ollama"}) as svc:
        assert isinstance(svc, OllamaEmbeddings)
        assert (svc.model(), svc.dimensions()) == ("nomic-embed-text", 768)  # known: no request
    with OllamaEmbeddings(OllamaEmbeddingsConfig(model="mxbai-embed-large:latest")) as svc:
        assert svc.dimensions() == 1024
    with OllamaEmbeddings(OllamaEmbeddingsConfig(model="custom", dimensions=256)) as svc:
        assert svc.dimensions() == 256


# --------------------------------------------------------------------------- codec (pure)


def test_build_request() -> None:
    assert codec.build_request(["a"], model="m") == {"model": "m", "input": ["a"], "truncate": True}
    assert codec.build_request(["a", "b"], model="m", truncate=False, keep_alive="5m", dimensions=8,
                               options={"num_ctx": 512}) == {
        "model": "m", "input": ["a", "b"], "truncate": False, "options": {"num_ctx": 512}, "keep_alive": "5m",
        "dimensions": 8}


def test_parse_response_and_usage() -> None:
    raw = json.dumps({"model": "m", "embeddings": [[0.5, 1], [2, -3.25]], "prompt_eval_count": 5}).encode()
    matrix, tokens = codec.parse_response(raw, 2)
    assert matrix.dtype == np.float32
    assert matrix.tolist() == [[0.5, 1], [2, -3.25]]
    assert tokens == 5
    assert codec.parse_response(b'{"embeddings": [[1.0]]}', 1)[1] is None


@pytest.mark.parametrize(("raw", "n", "match"), [
    (b"not json", 1, "not valid JSON"),
    (b'{"embedding": [1.0]}', 1, "no 'embeddings' list"),  # the old /api/embeddings shape
    (b'{"error": "model \\"x\\" not found"}', 1, "not found"),
    (b'{"embeddings": [[1.0]]}', 2, "got 1 vectors for 2 texts"),
    (b'{"embeddings": [[1.0], [2.0, 3.0]]}', 2, "different lengths"),
    (b'{"embeddings": [[1.0, "x"]]}', 1, "str"),
    (b'{"embeddings": [[NaN]]}', 1, "NaN"),
    (b'{"embeddings": [[]]}', 1, "empty"),
])
def test_parse_is_strict(raw: bytes, n: int, match: str) -> None:
    with pytest.raises(ResponseFormatError, match=match):
        codec.parse_response(raw, n)


# --------------------------------------------------------------------------- over HTTP


def test_request_and_usage(loopback: LoopbackServer) -> None:
    loopback.handler = fake_ollama(dims=768)
    with svc_for(loopback, keep_alive="1m", truncate=False) as svc:
        out, usage = svc.embed_with_usage(["hello world", "good bye"])
    rec = loopback.take_one()
    assert (rec.method, rec.path) == ("POST", "/api/embed")
    assert "authorization" not in rec.headers
    assert rec.json == {"model": "nomic-embed-text", "input": ["hello world", "good bye"], "truncate": False,
                        "keep_alive": "1m"}
    np.testing.assert_array_equal(out[1], np.array(vector_for("good bye", 768), dtype=np.float32))
    assert (usage.tokens, usage.estimated, usage.requests) == (4, False, 1)


def test_unknown_model_dimensions_are_learned_by_a_probe(loopback: LoopbackServer) -> None:
    loopback.handler = fake_ollama(dims=5)
    with svc_for(loopback, model="my-embedder") as svc:
        assert "learned" in repr(svc)
        assert svc.dimensions() == 5
        assert loopback.take_one().json["input"] == ["dimension probe"]
        assert svc.embed_array(["a", "b"]).shape == (2, 5)


def test_dimensions_are_sent_and_enforced(loopback: LoopbackServer) -> None:
    loopback.handler = fake_ollama()
    with svc_for(loopback, dimensions=12) as svc:
        assert svc.embed_array(["a"]).shape == (1, 12)
        assert loopback.take_one().json["dimensions"] == 12
        loopback.reply, loopback.handler = Reply.json({"embeddings": [[1.0, 2.0]]}), None  # ignores dimensions
        with pytest.raises(ResponseFormatError, match=r"expected \(1, 12\)"):
            svc.embed("a")


def test_model_not_found_is_an_invalid_request_with_ollamas_message(loopback: LoopbackServer) -> None:
    loopback.reply = Reply.error(404, {"error": 'model "nomic-embed-text" not found, try pulling it first'})
    with svc_for(loopback) as svc, pytest.raises(InvalidRequestError, match="try pulling it first"):
        svc.embed("x")


async def test_faults_async(loopback: LoopbackServer) -> None:
    loopback.script(Reply.error(500, {"error": "llama runner process has terminated"}), Reply.hang_for(5),
                    Reply.text("{", content_type="application/json"))
    async with svc_for(loopback, timeout=0.3) as svc:
        with pytest.raises(ServerError, match="llama runner"):
            await svc.aembed("x")
        with pytest.raises(ProviderTimeoutError):
            await svc.aembed("x")
        with pytest.raises(ResponseFormatError, match="not valid JSON"):
            await svc.aembed("x")


def test_batches_are_split_and_kept_in_order(loopback: LoopbackServer) -> None:
    loopback.handler = fake_ollama(dims=768)
    texts = [f"sentence {i}" for i in range(10)]
    with svc_for(loopback, batch_size=4, max_concurrency=2) as svc:
        out = svc.embed_array(texts)
    assert sorted(len(r.json["input"]) for r in loopback.take()) == [2, 4, 4]
    np.testing.assert_array_equal(out, np.array([vector_for(t, 768) for t in texts], dtype=np.float32))
