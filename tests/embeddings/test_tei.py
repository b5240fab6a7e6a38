"""``provider: huggingface_tei`` with one server: the codec (pure) and the provider against a TEI fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from aixpy import embeddings
from aixpy.config.embeddings import TEIEmbeddingsConfig
from aixpy.embeddings.codecs import tei as codec
from aixpy.embeddings.tei import TEIEmbeddings
from aixpy.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

from ._hf_tei import DIMS, TEIFake, tei_vectors
from ._servers import LoopbackServer, Reply, loopback  # noqa: F401


@pytest.fixture
def fake(loopback: LoopbackServer) -> TEIFake:  # noqa: F811
    handler = TEIFake()
    loopback.handler = handler
    return handler


def make(srv: LoopbackServer, **over: Any) -> TEIEmbeddings:
    return TEIEmbeddings(TEIEmbeddingsConfig(**{"endpoint": srv.url, **over}), environ={})


@pytest.fixture
def tei(loopback: LoopbackServer, fake: TEIFake) -> Iterator[TEIEmbeddings]:  # noqa: F811
    svc = make(loopback, dimensions=DIMS)
    loopback.take()
    yield svc
    svc.close()


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# --------------------------------------------------------------------------- codec


def test_embed_body_sends_false_explicitly() -> None:
    assert codec.build_embed(["a"], normalize=False, truncate=False) == {
        "inputs": ["a"], "normalize": False, "truncate": False}
    assert codec.build_embed(["a"], truncation_direction="left", prompt_name="query") == {
        "inputs": ["a"], "normalize": True, "truncate": True, "truncation_direction": "Left", "prompt_name": "query"}


def test_parse_info() -> None:
    info = codec.parse_info(b'{"model_id": "BAAI/bge-small-en-v1.5", "max_client_batch_size": 32, '
                            b'"max_batch_tokens": 16384, "model_type": {"embedding": {"pooling": "cls"}}, '
                            b'"max_input_length": true, "version": "1.5.0"}')
    assert (info.model_id, info.max_client_batch_size, info.max_batch_tokens, info.pooling) == (
        "BAAI/bge-small-en-v1.5", 32, 16384, "cls")
    assert info.max_input_length is None  # a bool is no count
    with pytest.raises(ResponseFormatError):
        codec.parse_info(b"[1]")


def test_parse_embed_is_strictly_2d() -> None:
    assert codec.parse_embed(b"[[1, 2], [3, 4]]", 2).shape == (2, 2)
    with pytest.raises(ResponseFormatError):
        codec.parse_embed(b"[[[1, 2]]]", 1)
    with pytest.raises(ResponseFormatError, match="expected 3 vectors"):
        codec.parse_embed(b"[[1, 2], [3, 4]]", 3)


@pytest.mark.parametrize(("text", "limit"), [
    ('{"error":"batch size 64 > maximum allowed batch size 32","error_type":"Validation"}', 32),
    ("Maximum allowed batch size: 8", 8),
    ('{"error":"input too long"}', None),
    ("", None),
])
def test_max_batch_from_error(text: str, limit: int | None) -> None:
    assert codec.max_batch_from_error(text) == limit


# --------------------------------------------------------------------------- discovery


def test_info_sets_model_and_caps_the_batch(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    fake.max_client_batch_size = 48
    with make(loopback, dimensions=DIMS) as svc:
        assert (svc.model(), svc.batch_size, svc.dimensions()) == ("org/tei-model", 48, DIMS)
    assert [r.path for r in loopback.take()] == ["/info"]
    fake.max_client_batch_size = 1000
    with make(loopback, dimensions=DIMS) as svc:
        assert svc.batch_size == 128  # the guide's default, under the server's limit


def test_unknown_dimensions_are_probed(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    fake.dims = 24
    with make(loopback) as svc:
        assert [r.path for r in loopback.take()] == ["/info"]
        assert svc.dimensions() == 24
        assert [r.path for r in loopback.take()] == ["/embed"]
        assert svc.embed_array(["a", "b"]).shape == (2, 24)


def test_known_model_uses_the_table(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    with make(loopback, model="BAAI/bge-small-en-v1.5") as svc:
        assert (svc.model(), svc.dimensions()) == ("BAAI/bge-small-en-v1.5", 384)
    assert [r.path for r in loopback.take()] == ["/info"]


def test_fully_configured_does_no_io(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    with make(loopback, model="m", dimensions=DIMS, batch_size=16) as svc:
        assert svc.batch_size == 16
    assert loopback.take() == []


def test_unreachable_server_with_unknown_dimensions_fails_clearly() -> None:
    with LoopbackServer() as srv:
        url = srv.url
    with pytest.raises(ProviderConnectionError, match="answered /info"):
        TEIEmbeddings(TEIEmbeddingsConfig(endpoint=url), environ={})


# --------------------------------------------------------------------------- embedding


def test_wire_and_order(loopback: LoopbackServer, fake: TEIFake, tei: TEIEmbeddings) -> None:  # noqa: F811
    texts = [f"doc {i}" for i in range(70)]
    out = tei.embed_array(texts)
    recs = loopback.take()
    assert {(r.method, r.path) for r in recs} == {("POST", "/embed")}
    assert sorted(len(r.json["inputs"]) for r in recs) == [6, 32, 32]
    assert all(r.json["normalize"] is True and r.json["truncate"] is True for r in recs)
    assert np.allclose(out, unit(tei_vectors(texts)), atol=1e-6)


def test_normalize_false_reaches_the_server(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    with make(loopback, dimensions=DIMS, normalize=False, truncate=False) as svc:
        loopback.take()
        out = svc.embed_array(["a", "b"])
    rec = loopback.take_one()
    assert rec.json == {"inputs": ["a", "b"], "normalize": False, "truncate": False}
    assert np.allclose(out, tei_vectors(["a", "b"]))  # raw, not unit length


async def test_async_matches_sync(fake: TEIFake, tei: TEIEmbeddings) -> None:
    texts = [f"t{i}" for i in range(100)]
    assert np.array_equal(await tei.aembed_array(texts), tei.embed_array(texts))
    await tei.aclose()


def test_oversized_batch_is_split_and_learned(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    with make(loopback, dimensions=DIMS, batch_size=40, model="m") as svc:  # no /info: the server allows 32
        texts = [f"t{i}" for i in range(80)]
        out = svc.embed_array(texts)
        assert svc.batch_size == 32
    assert np.allclose(out, unit(tei_vectors(texts)), atol=1e-6)
    sizes = [len(r.json["inputs"]) for r in loopback.take()]
    assert sorted(sizes) == [8, 8, 32, 32, 40, 40]  # two refusals, then split


def test_api_key_is_sent_and_never_shown(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    key = "tei-secret-key-0123456789"
    with make(loopback, dimensions=DIMS, api_key=key) as svc:
        svc.embed("x")
        assert all(r.headers["authorization"] == f"Bearer {key}" for r in loopback.take())
        fake.fail_embed = Reply.error(401, {"error": f"bad token {key}", "error_type": "Unauthorized"})
        with pytest.raises(AuthenticationError) as info:
            svc.embed("x")
        assert key not in str(info.value)
        assert key not in repr(svc)


@pytest.mark.parametrize(("reply", "error"), [
    (Reply.error(429, {"error": "overloaded", "error_type": "Overloaded"}, retry_after=3), RateLimitError),
    (Reply.error(424, {"error": "backend failed", "error_type": "Backend"}), InvalidRequestError),
    (Reply.error(422, {"error": "input is too long", "error_type": "Validation"}), InvalidRequestError),
    (Reply.error(500, {"error": "boom"}), ServerError),
    (Reply.error(503, {"error": "unhealthy", "error_type": "Unhealthy"}), ServerError),
    (Reply.text("[[0.1, 0.2", content_type="application/json"), ResponseFormatError),
    (Reply.json([[0.1] * DIMS]), ResponseFormatError),  # one row for two texts
    (Reply.drop_connection(), ProviderConnectionError),
])
def test_single_endpoint_errors(loopback: LoopbackServer, fake: TEIFake, tei: TEIEmbeddings,  # noqa: F811
                                reply: Reply, error: type[Exception]) -> None:
    fake.fail_embed = reply
    with pytest.raises(error) as info:
        tei.embed_batch(["a", "b"])
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 3
    # one endpoint: nothing to fail over to, and no retries of ours (httpcore re-sends once when a reused
    # keep-alive connection turns out closed, which is what a dropped connection looks like)
    assert len(loopback.take()) == (2 if reply.drop else 1)


def test_timeout(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    with make(loopback, dimensions=DIMS, batch_size=8, model="m", timeout=0.3) as svc:
        fake.fail_embed = Reply.hang_for(5)
        with pytest.raises(ProviderTimeoutError):
            svc.embed("x")


def test_registry_and_guide_config(loopback: LoopbackServer, fake: TEIFake) -> None:  # noqa: F811
    svc = embeddings.new({"provider": "huggingface_tei",
                          "huggingface_tei": {"endpoint": loopback.url, "model": "BAAI/bge-large-en-v1.5",
                                              "normalize": True}})
    assert isinstance(svc, TEIEmbeddings)
    assert svc.dimensions() == 1024
    assert svc.batch_size == 32
    svc.close()
