"""``provider: huggingface``: the feature-extraction codec (pure) and the provider against loopback servers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from aixpy import embeddings
from aixpy.config.embeddings import HuggingFaceEmbeddingsConfig
from aixpy.embeddings.codecs import huggingface as codec
from aixpy.embeddings.huggingface import HuggingFaceEmbeddings
from aixpy.embeddings.policies import CostTrackingEmbeddings
from aixpy.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ModelLoadingError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

from ._servers import LoopbackServer, Recorded, Reply, loopback  # noqa: F401

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TOKEN = "hf_testTokenABCDEFGHIJ0123456789"


def vec(text: str, dims: int = 384) -> list[float]:
    """A deterministic vector per text (so order mistakes show)."""
    rng = np.random.default_rng(sum(ord(c) * (i + 1) for i, c in enumerate(text)))
    return [float(x) for x in rng.standard_normal(dims).astype(np.float32)]


def vectors_reply(rec: Recorded) -> Reply:
    return Reply.json([vec(t) for t in rec.json["inputs"]])


def make(srv: LoopbackServer, sleeps: list[float] | None = None, **over: Any) -> HuggingFaceEmbeddings:
    cfg: dict[str, Any] = {"model": MODEL, "endpoint": srv.url + "/hf-inference", **over}
    sl = sleeps if sleeps is not None else []

    async def asleep(s: float) -> None:
        sl.append(s)

    return HuggingFaceEmbeddings(HuggingFaceEmbeddingsConfig(**cfg), environ={}, sleep=sl.append, asleep=asleep)


@pytest.fixture
def hf(loopback: LoopbackServer) -> Iterator[HuggingFaceEmbeddings]:  # noqa: F811
    svc = make(loopback, api_key=TOKEN)
    yield svc
    svc.close()


# --------------------------------------------------------------------------- codec: routes and requests


@pytest.mark.parametrize(("endpoint", "style", "base", "expected"), [
    (None, "auto", codec.ROUTER_URL, "router"),
    ("https://api-inference.huggingface.co", "auto", codec.ROUTER_URL, "router"),  # retired: 410 Gone
    ("https://router.huggingface.co", "auto", codec.ROUTER_URL, "router"),
    ("https://router.huggingface.co/hf-inference/", "auto", codec.ROUTER_URL, "router"),
    ("http://proxy.local:8080/hf-inference", "auto", "http://proxy.local:8080/hf-inference", "router"),
    ("https://abc.us-east-1.aws.endpoints.huggingface.cloud", "auto",
     "https://abc.us-east-1.aws.endpoints.huggingface.cloud", "endpoint"),
    ("http://old-api.local:8000", "legacy", "http://old-api.local:8000", "legacy"),
])
def test_resolve_route(endpoint: str | None, style: str, base: str, expected: str) -> None:
    assert codec.resolve_route(endpoint, style) == (base, expected)


def test_resolve_route_refuses_non_urls() -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        codec.resolve_route("ftp://x")
    with pytest.raises(ConfigError, match="api_style"):
        codec.resolve_route(None, "grpc")


def test_router_request_shape() -> None:
    req = codec.build_request(["a", "b"], model=MODEL, style="router", wait_for_model=True, use_cache=False,
                              normalize=False)
    assert req.path == f"/models/{MODEL}/pipeline/feature-extraction"
    assert req.json == {"inputs": ["a", "b"], "normalize": False}  # false is sent, None is not
    assert req.headers == {"x-wait-for-model": "true", "x-use-cache": "false"}


def test_legacy_request_shape_has_options_body() -> None:
    req = codec.build_request(["a"], model=MODEL, style="legacy", wait_for_model=False, use_cache=True)
    assert req.path == f"/models/{MODEL}"
    assert req.json == {"inputs": ["a"], "options": {"wait_for_model": False, "use_cache": True}}
    assert req.headers == {}


def test_endpoint_style_posts_to_the_url_itself() -> None:
    assert codec.build_request(["a"], model=MODEL, style="endpoint").path == ""


@pytest.mark.parametrize("bad", ["../admin", "org/../x", "a/b/c", "org/name?x=1", "", "/abs", "a b"])
def test_model_id_cannot_change_the_path(bad: str) -> None:
    with pytest.raises(ConfigError):
        codec.check_model_id(bad)


# --------------------------------------------------------------------------- codec: responses


def test_parse_2d_and_lone_1d() -> None:
    m = codec.parse_vectors(b"[[1, 2], [3, 4.5]]", 2)
    assert m.dtype == np.float32
    assert m.tolist() == [[1, 2], [3, 4.5]]
    assert codec.parse_vectors(b"[0.5, 1.5]", 1).tolist() == [[0.5, 1.5]]


def test_parse_token_level_is_mean_pooled() -> None:
    tokens = [[[1, 2], [3, 4], [5, 9]], [[0, 0], [2, 2], [4, 4]]]
    assert codec.parse_vectors(json.dumps(tokens).encode(), 2).tolist() == [[3, 5], [2, 2]]
    ragged = [[[1, 1], [3, 3]], [[6, 0], [0, 6], [3, 3]]]  # texts of different token counts
    assert codec.parse_vectors(json.dumps(ragged).encode(), 2).tolist() == [[2, 2], [3, 3]]


@pytest.mark.parametrize(("body", "n", "why"), [
    (b"[[1, 2]]", 2, "expected 2 vectors, got 1"),
    (b"[[1, 2], [3]]", 2, "different lengths"),
    (b'[["1", "2"]]', 1, "not numbers"),
    (b"[[1, NaN]]", 1, "NaN"),
    (b"[[true, false]]", 1, "not numbers"),
    (b'{"error": "boom"}', 1, "boom"),
    (b"[[1, 2], [3, 4", 2, "not JSON"),
    (b"[]", 1, "shape"),
    (b"[[[]]]", 1, "shape"),
])
def test_parse_rejects_malformed(body: bytes, n: int, why: str) -> None:
    with pytest.raises(ResponseFormatError, match=why):
        codec.parse_vectors(body, n)


@pytest.mark.parametrize(("status", "body", "expected"), [
    (503, b'{"error": "Model x is currently loading", "estimated_time": 20.5}', 20.5),
    (503, b'{"error": ["Model is currently loading"]}', 0.0),
    (503, b'{"error": "overloaded"}', None),
    (500, b'{"error": "loading", "estimated_time": 3}', None),
    (503, b"", None),
])
def test_loading_estimate(status: int, body: bytes, expected: float | None) -> None:
    assert codec.loading_estimate(status, body) == expected


# --------------------------------------------------------------------------- provider


def test_config_defaults_to_the_router() -> None:
    cfg = HuggingFaceEmbeddingsConfig(model=MODEL)
    svc = HuggingFaceEmbeddings(cfg, environ={})
    assert svc.api_style == "router"
    assert "router.huggingface.co/hf-inference" in repr(svc)
    assert svc.batch_size == 50
    assert svc.dimensions() == 384
    legacy = HuggingFaceEmbeddings(HuggingFaceEmbeddingsConfig(model=MODEL,
                                                               endpoint="https://api-inference.huggingface.co"),
                                   environ={})
    assert "router.huggingface.co" in repr(legacy)


def test_request_on_the_wire(loopback: LoopbackServer, hf: HuggingFaceEmbeddings) -> None:  # noqa: F811
    loopback.handler = vectors_reply
    out = hf.embed_batch(["first text", "second text"])
    rec = loopback.take_one()
    assert (rec.method, rec.path) == ("POST", f"/hf-inference/models/{MODEL}/pipeline/feature-extraction")
    assert rec.headers["authorization"] == f"Bearer {TOKEN}"
    assert rec.headers["x-wait-for-model"] == "true"
    assert "x-use-cache" not in rec.headers
    assert rec.json == {"inputs": ["first text", "second text"]}
    assert np.allclose(out, [vec("first text"), vec("second text")])


def test_key_is_optional_and_never_shown(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.handler = vectors_reply
    with make(loopback) as anon:
        anon.embed("x")
        assert "authorization" not in loopback.take_one().headers
    loopback.handler = None
    loopback.reply = Reply.error(401, {"error": f"Invalid credentials {TOKEN}"})
    with make(loopback, api_key=TOKEN) as svc:
        with pytest.raises(AuthenticationError) as info:
            svc.embed("x")
        assert TOKEN not in str(info.value)
        assert TOKEN not in repr(info.value)
        assert TOKEN not in repr(svc)


def test_env_key_is_used(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.handler = vectors_reply
    cfg = HuggingFaceEmbeddingsConfig(model=MODEL, endpoint=loopback.url + "/hf-inference")
    with HuggingFaceEmbeddings(cfg, environ={"HF_TOKEN": TOKEN}) as svc:
        svc.embed("x")
    assert loopback.take_one().headers["authorization"] == f"Bearer {TOKEN}"


def test_legacy_style_on_the_wire(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.handler = vectors_reply
    with make(loopback, endpoint=loopback.url, api_style="legacy", use_cache=False) as svc:
        svc.embed("x")
    rec = loopback.take_one()
    assert rec.path == f"/models/{MODEL}"
    assert rec.json == {"inputs": ["x"], "options": {"wait_for_model": True, "use_cache": False}}
    assert rec.headers["x-use-cache"] == "false"


def test_batches_keep_order(loopback: LoopbackServer, hf: HuggingFaceEmbeddings) -> None:  # noqa: F811
    loopback.handler = vectors_reply
    texts = [f"text number {i}" for i in range(120)]
    out = hf.embed_array(texts)
    sizes = sorted(len(r.json["inputs"]) for r in loopback.take())
    assert sizes == [20, 50, 50]
    assert np.allclose(out, [vec(t) for t in texts])


async def test_async_matches_sync(loopback: LoopbackServer, hf: HuggingFaceEmbeddings) -> None:  # noqa: F811
    loopback.handler = vectors_reply
    texts = [f"t{i}" for i in range(70)]
    assert np.array_equal(await hf.aembed_array(texts), hf.embed_array(texts))
    await hf.aclose()


def test_token_level_output_is_pooled(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.handler = lambda rec: Reply.json([[[1.0, 2.0], [3.0, 4.0]] for _ in rec.json["inputs"]])
    with make(loopback, model="org/no-pooling", dimensions=2) as svc:
        assert svc.embed_batch(["a", "b"]) == [[2.0, 3.0], [2.0, 3.0]]


def test_unknown_model_learns_its_dimensions(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.handler = lambda rec: Reply.json([[0.5] * 7 for _ in rec.json["inputs"]])
    with make(loopback, model="org/unknown-model") as svc:
        assert loopback.take() == []  # no I/O at construction
        assert svc.embed_array(["a", "b", "c"]).shape == (3, 7)
        assert svc.dimensions() == 7


LOADING = {"error": "Model sentence-transformers/all-MiniLM-L6-v2 is currently loading", "estimated_time": 0.25}


def test_loading_model_is_waited_out(loopback: LoopbackServer) -> None:  # noqa: F811
    sleeps: list[float] = []
    loopback.script(Reply.error(503, LOADING), Reply.error(503, LOADING))
    loopback.handler = vectors_reply
    with make(loopback, sleeps) as svc:
        assert np.allclose(svc.embed("x"), vec("x"))
    assert sleeps == [0.25, 0.25]
    assert len(loopback.take()) == 3


async def test_loading_wait_is_bounded(loopback: LoopbackServer) -> None:  # noqa: F811
    sleeps: list[float] = []
    loopback.reply = Reply.error(503, {**LOADING, "estimated_time": 40})
    async with make(loopback, sleeps, max_wait_for_model=100) as svc:
        with pytest.raises(ModelLoadingError) as info:
            await svc.aembed("x")
    assert sleeps == [40, 40, 20]  # 100 s in all, never more
    err = info.value
    assert err.retryable
    assert err.retry_after == 40
    assert err.status_code == 503
    assert "100.0 s" in str(err)


def test_loading_without_wait_is_a_retryable_error(loopback: LoopbackServer) -> None:  # noqa: F811
    sleeps: list[float] = []
    loopback.reply = Reply.error(503, LOADING)
    with make(loopback, sleeps, wait_for_model=False) as svc, \
            pytest.raises(ModelLoadingError, match="wait_for_model is false") as info:
        svc.embed("x")
    assert info.value.retryable
    assert info.value.retry_after == 0.25
    assert sleeps == []
    rec = loopback.take_one()
    assert "x-wait-for-model" not in rec.headers


@pytest.mark.parametrize(("reply", "error"), [
    (Reply.error(429, {"error": "rate limited"}, retry_after=7), RateLimitError),
    (Reply.error(500, {"error": "boom"}), ServerError),
    (Reply.error(503, {"error": "Service Unavailable"}), ServerError),
    (Reply.error(400, {"error": "bad input"}), InvalidRequestError),
    (Reply.text('[[0.1, 0.2', content_type="application/json"), ResponseFormatError),
    (Reply.text("<html>gateway</html>", content_type="text/html"), ResponseFormatError),
])
def test_failures_map_to_the_error_tree_without_retrying(loopback: LoopbackServer, hf: HuggingFaceEmbeddings,  # noqa: F811
                                                         reply: Reply, error: type[Exception]) -> None:
    loopback.reply = reply
    with pytest.raises(error) as info:
        hf.embed("x")
    assert type(info.value) is error  # a plain 503 is not "loading"
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 7
    assert len(loopback.take()) == 1  # retries are a policy wrapped around the provider, not done here


def test_timeout(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.reply = Reply.hang_for(5)
    with make(loopback, timeout=0.3) as svc, pytest.raises(ProviderTimeoutError):
        svc.embed("x")


def test_registry_builds_it() -> None:
    svc = embeddings.new({"provider": "huggingface", "huggingface": {"model": MODEL}})
    assert isinstance(svc, CostTrackingEmbeddings)              # a paid API: cost tracked by default
    assert isinstance(svc.inner, HuggingFaceEmbeddings)
    assert svc.model() == MODEL
    assert not math.isnan(svc.dimensions())
    svc.close()
