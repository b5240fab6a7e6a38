"""``provider: openai``: construction rules, the sans-IO codec's strictness, and faults from a loopback server."""

from __future__ import annotations

import base64
import json
import logging
import struct
from typing import Any

import numpy as np
import pytest

from aixpy import embeddings
from aixpy.config.embeddings import OpenAIEmbeddingsConfig
from aixpy.embeddings.codecs import openai as codec
from aixpy.embeddings.openai import OpenAIEmbeddings
from aixpy.errors import (
    BlockedURLError,
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

from . import _servers
from ._servers import LoopbackServer, Reply, fake_openai, vector_for

loopback = _servers.loopback  # the fixture: a fresh loopback server per test

KEY = "sk-test-secret-0123456789abcdef"


def svc_for(srv: LoopbackServer, model: str = "text-embedding-3-small", dimensions: int | None = None,
            batch_size: int = 100, **kw: Any) -> OpenAIEmbeddings:
    cfg = OpenAIEmbeddingsConfig(api_key=KEY, model=model, base_url=srv.url + "/v1", dimensions=dimensions,
                                 batch_size=batch_size)
    return OpenAIEmbeddings(cfg, **kw)


def item(index: Any, emb: Any) -> dict[str, Any]:
    return {"object": "embedding", "index": index, "embedding": emb}


def body(*items: dict[str, Any], usage: Any = None) -> bytes:
    obj: dict[str, Any] = {"object": "list", "model": "m", "data": list(items)}
    if usage is not None:
        obj["usage"] = usage
    return json.dumps(obj).encode()


# --------------------------------------------------------------------------- construction (no network)


def test_registry_builds_it_and_a_missing_key_is_a_clear_error_before_any_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        embeddings.new({"provider": "openai"})
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with embeddings.new({"provider": "openai", "track_cost": False}) as svc:
        assert isinstance(svc, OpenAIEmbeddings)
        assert (svc.model(), svc.dimensions(), svc.batch_size, svc.max_concurrency) == (
            "text-embedding-3-small", 1536, 100, 4)
        assert svc.base_url == "https://api.openai.com/v1"
        assert KEY not in repr(svc)
        assert KEY not in repr(svc._http.config)


def test_a_compatible_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAIEmbeddings(OpenAIEmbeddingsConfig(base_url="http://127.0.0.1:9/v1", model="bge")) as svc:
        assert "authorization" not in {k.lower() for k in svc._http.config.secret_headers}


@pytest.mark.parametrize(("model", "dims", "base", "sent", "width"), [
    ("text-embedding-3-small", None, "official", None, 1536),
    ("text-embedding-3-small", 512, "official", 512, 512),
    ("text-embedding-3-large", 256, "official", 256, 256),
    ("text-embedding-ada-002", None, "official", None, 1536),
    ("text-embedding-ada-002", 1536, "official", None, 1536),
    ("nomic-embed", None, "compat", None, None),  # learned from the first answer
    ("nomic-embed", 768, "compat", None, 768),  # declared width, not sent
])
def test_dimensions_rules(model: str, dims: int | None, base: str, sent: int | None, width: int | None) -> None:
    assert codec.resolve_dimensions(model, dims, official=base == "official") == (width, sent)


@pytest.mark.parametrize(("model", "dims", "match"), [
    ("text-embedding-ada-002", 512, "does not support custom dimensions"),
    ("text-embedding-3-small", 2000, "at most 1536"),
    ("some-future-model", 256, "only text-embedding-3"),
])
def test_dimensions_refused_where_openai_would_refuse_them(model: str, dims: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key=KEY, model=model, dimensions=dims))


def test_send_dimensions_forces_it_for_compatible_servers(loopback: LoopbackServer) -> None:
    loopback.handler = fake_openai()
    with svc_for(loopback, model="matryoshka", dimensions=4, send_dimensions=True) as svc:
        assert svc.embed_array(["a"]).shape == (1, 4)
    assert loopback.take_one().json["dimensions"] == 4


@pytest.mark.parametrize("base_url", [
    "http://169.254.169.254/v1",  # cloud metadata: never
    "http://api.example.com/v1",  # a public host over plain http
    "file:///etc/passwd",
])
def test_ssrf_policy_refuses_bad_base_urls(base_url: str) -> None:
    with pytest.raises((BlockedURLError, ConfigError)):
        OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key=KEY, base_url=base_url))


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="encoding_format"):
        OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key=KEY), encoding_format="int8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_concurrency"):
        OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key=KEY), max_concurrency=0)


# --------------------------------------------------------------------------- codec (pure)


def test_build_request_shape() -> None:
    assert codec.build_request(["a", "b"], model="m") == {"model": "m", "input": ["a", "b"], "encoding_format": "float"}
    assert codec.build_request(["a"], model="m", dimensions=8, encoding_format="base64", user="u") == {
        "model": "m", "input": ["a"], "user": "u", "dimensions": 8, "encoding_format": "base64"}


def test_parse_reorders_by_index_and_reads_usage() -> None:
    raw = body(item(1, [3.0, 4.0]), item(2, [5, 6]), item(0, [1.0, 2.0]), usage={"prompt_tokens": 9, "total_tokens": 9})
    matrix, tokens = codec.parse_response(raw, 3)
    assert matrix.dtype == np.float32
    assert matrix.flags.c_contiguous
    assert matrix.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert tokens == 9
    assert codec.parse_response(body(item(0, [1.0])), 1)[1] is None  # no usage: a compatible server


def test_fast_and_careful_vector_checks_agree() -> None:
    """The numpy fast path (no true/false literal in the body) and the per-value check give the same matrix."""
    from aixpy.embeddings.codecs._vectors import to_matrix

    rows = [[0.1, -2, 3e-5], [1e30, 0, -0.0]]
    fast = to_matrix(rows, 2, provider="p", model=None, body=json.dumps(rows))
    careful = to_matrix(rows, 2, provider="p", model=None)
    np.testing.assert_array_equal(fast, careful)
    assert fast.dtype == np.float32
    # a boolean elsewhere in the body only turns the fast path off
    raw = json.dumps({"data": [item(0, [1.5, 2])], "cached": True}).encode()
    assert codec.parse_response(raw, 1)[0].tolist() == [[1.5, 2.0]]
    with pytest.raises(ResponseFormatError, match="bool"):
        to_matrix([[1.0, True]], 1, provider="p", model=None, body="[[1.0, true]]")
    with pytest.raises(ResponseFormatError, match="NaN or infinite"):
        to_matrix([[10**40, 1]], 1, provider="p", model=None, body="[[1e40, 1]]")


def test_parse_base64_little_endian_float32() -> None:
    vecs = [[0.5, -1.25, 3.0], [1e-3, 2.0, -0.0]]
    rows = [base64.b64encode(struct.pack("<3f", *v)).decode() for v in vecs]
    matrix, _ = codec.parse_response(body(item(1, rows[1]), item(0, rows[0])), 2, encoding_format="base64")
    np.testing.assert_array_equal(matrix, np.array(vecs, dtype=np.float32))
    assert matrix.flags.writeable


@pytest.mark.parametrize(("raw", "n", "match"), [
    (b'{"data": [', 1, "not valid JSON"),
    (b"<html>Bad gateway</html>", 1, "not valid JSON"),
    (b'{"object": "list"}', 1, "no 'data' list"),
    (b'{"error": {"message": "quota exceeded"}}', 1, "quota exceeded"),
    (body(item(0, [1.0]), item(0, [2.0])), 2, "appears twice"),
    (body(item(0, [1.0]), item(2, [2.0])), 2, "out of range"),
    (body(item(0, [1.0]), {"object": "embedding", "embedding": [2.0]}), 2, "no integer 'index'"),
    (body(item(0, [1.0]), item(True, [2.0])), 2, "no integer 'index'"),
    (body(item("1", [1.0]), item(0, [2.0])), 2, "no integer 'index'"),
    (body(item(0, [1.0])), 2, "got 1 embeddings for 2 texts"),
    (body(item(0, [1.0]), item(1, [2.0]), item(2, [3.0])), 2, "got 3 embeddings"),
    (body(item(0, [1.0, 2.0]), item(1, [3.0])), 2, "different lengths"),
    (body(item(0, [])), 1, "empty"),
    (body(item(0, [1.0, "2.0"])), 1, "str"),
    (body(item(0, [1.0, None])), 1, "NoneType"),
    (body(item(0, [1.0, True])), 1, "bool"),
    (body(item(0, [[1.0], [2.0]])), 1, "list"),
    (body(item(0, None)), 1, "NoneType"),
    (b'{"data": [{"index": 0, "embedding": [1.0, NaN]}]}', 1, "NaN or infinite"),
    (b'{"data": [{"index": 0, "embedding": [1.0, 1e39]}]}', 1, "NaN or infinite"),  # float32 overflow
    (body({"index": 0}), 1, "no 'embedding'"),
])
def test_parse_is_strict(raw: bytes, n: int, match: str) -> None:
    with pytest.raises(ResponseFormatError, match=match):
        codec.parse_response(raw, n)


@pytest.mark.parametrize(("emb", "match"), [
    ([1.0, 2.0], "expected a base64 string"),
    ("not base64!", "not valid base64"),
    (base64.b64encode(b"abc").decode(), "multiple of 4"),
    (base64.b64encode(struct.pack("<f", float("nan"))).decode(), "NaN"),
])
def test_parse_base64_is_strict(emb: Any, match: str) -> None:
    with pytest.raises(ResponseFormatError, match=match):
        codec.parse_response(body(item(0, emb)), 1, encoding_format="base64")


# --------------------------------------------------------------------------- over HTTP: faults


def test_request_path_headers_and_body(loopback: LoopbackServer) -> None:
    loopback.handler = fake_openai(shuffle=True)
    with svc_for(loopback, dimensions=64, user="end-user-7", organization="org-1") as svc:
        out = svc.embed_batch(["alpha", "beta"])
    rec = loopback.take_one()
    assert (rec.method, rec.path) == ("POST", "/v1/embeddings")
    assert rec.headers["authorization"] == f"Bearer {KEY}"
    assert rec.headers["openai-organization"] == "org-1"
    assert rec.json == {"model": "text-embedding-3-small", "input": ["alpha", "beta"], "user": "end-user-7",
                        "dimensions": 64, "encoding_format": "float"}
    assert out == [np.float32(vector_for("alpha", 64)).tolist(), np.float32(vector_for("beta", 64)).tolist()]


def test_429_carries_retry_after_and_the_key_never_shows(loopback: LoopbackServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    loopback.reply = Reply.error(429, {"error": {"message": f"Rate limit reached for key {KEY}"}}, retry_after=7)
    caplog.set_level(logging.DEBUG)
    with svc_for(loopback) as svc, pytest.raises(RateLimitError) as info:
        svc.embed("x")
    err = info.value
    assert err.retry_after == 7.0
    assert err.retryable
    assert err.status_code == 429
    assert err.provider == "openai"
    assert err.model == "text-embedding-3-small"
    assert KEY not in str(err)
    assert KEY not in repr(err)
    assert KEY not in caplog.text


@pytest.mark.parametrize(("status", "error"), [(500, ServerError), (503, ServerError), (502, ServerError),
                                               (400, InvalidRequestError), (404, InvalidRequestError)])
def test_status_errors_are_mapped(loopback: LoopbackServer, status: int, error: type[Exception]) -> None:
    loopback.reply = Reply.error(status, {"error": {"message": "model loading" if status == 503 else "nope"}})
    with svc_for(loopback) as svc, pytest.raises(error) as info:
        svc.embed("x")
    assert getattr(info.value, "status_code", None) == status


def test_timeout_is_a_retryable_timeout_error(loopback: LoopbackServer) -> None:
    loopback.reply = Reply.hang_for(5)
    with svc_for(loopback, timeout=0.3) as svc, pytest.raises(ProviderTimeoutError) as info:
        svc.embed("x")
    assert info.value.retryable


async def test_async_timeout_and_dropped_connection(loopback: LoopbackServer) -> None:
    # the HTTP layer re-sends once on a connection closed without an answer (a stale keep-alive), so drop twice
    loopback.script(Reply.hang_for(5), Reply.drop_connection(), Reply.drop_connection())
    async with svc_for(loopback, timeout=0.3) as svc:
        with pytest.raises(ProviderTimeoutError):
            await svc.aembed("x")
        with pytest.raises(ProviderConnectionError) as info:
            await svc.aembed("x")
    assert info.value.retryable
    assert len(loopback.take()) == 3


@pytest.mark.parametrize(("reply", "match"), [
    (Reply.text('{"data": [{"index": 0, "embedd', content_type="application/json"), "not valid JSON"),
    (Reply.json({"data": [item(1, [1.0]), item(0, [2.0])]}), "got 2 embeddings for 1 texts"),
    (Reply.json({"data": [{"object": "embedding", "embedding": [1.0]}]}), "no integer 'index'"),
])
def test_malformed_bodies_are_response_format_errors(loopback: LoopbackServer, reply: Reply, match: str) -> None:
    loopback.reply = reply
    with svc_for(loopback, model="compat") as svc, pytest.raises(ResponseFormatError, match=match):
        svc.embed("x")


def test_shuffled_indexes_over_http_come_back_in_order(loopback: LoopbackServer) -> None:
    texts = [f"t{i}" for i in range(10)]
    loopback.handler = fake_openai(dims=4, shuffle=True, seed=11)
    with svc_for(loopback, model="compat") as svc:
        got = svc.embed_array(texts)
    np.testing.assert_array_equal(got, np.array([vector_for(t, 4) for t in texts], dtype=np.float32))


def test_token_budget_splits_requests(loopback: LoopbackServer) -> None:
    """At most batch_size inputs and max_request_tokens (UTF-8 bytes) per request; a huge text goes alone."""
    loopback.handler = fake_openai(dims=4)
    texts = ["x" * 40, "é" * 31, "y" * 10, "z" * 150, "w" * 5, "v" * 5, "u" * 5]  # "é" is 2 bytes
    with svc_for(loopback, model="compat", batch_size=3, max_request_tokens=100) as svc:
        svc.embed_batch(texts)
    sent = sorted((r.json["input"] for r in loopback.take()), key=lambda batch: texts.index(batch[0]))
    assert [t for batch in sent for t in batch] == texts  # all sent once, in order
    for batch in sent:
        assert len(batch) <= 3
        assert len(batch) == 1 or sum(len(t.encode()) for t in batch) <= 100
    assert sent == [["x" * 40], ["é" * 31, "y" * 10], ["z" * 150], ["w" * 5, "v" * 5, "u" * 5]]


def test_default_budget_is_openais_300k_tokens_per_request() -> None:
    with OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key=KEY)) as svc:
        plan = svc._split(["a" * 10_000] * 100)  # 1M bytes
    assert plan == [(0, 30), (30, 60), (60, 90), (90, 100)]
