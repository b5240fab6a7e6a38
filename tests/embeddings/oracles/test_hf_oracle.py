"""Wire oracle: ``huggingface_hub.InferenceClient`` vs our ``huggingface`` and ``huggingface_tei`` providers.

The official client and ours make the same logical call against one loopback recording server; the
requests are compared, then both parse the same scripted answer and the vectors are compared.

Inference API (router): the SDK's URL template for ``hf-inference`` feature extraction is checked against
ours, then the SDK is pointed at the loopback copy of that URL. Same method, path, body (the task's
parameters at the root, ``false`` sent as ``false``), ``Authorization`` and content type. One allowed
difference: with ``wait_for_model: true`` (our default) we add ``x-wait-for-model: true``, the serverless
option header that ``huggingface_hub`` 2.x no longer sends. Answers: 2-D and 1-D arrays parse to the same
float32 vectors; for token-level (3-D) answers the SDK returns the token array and ours is its mean over
tokens.

TEI: the SDK with the server URL as model posts the same body to the root route ``/``, we post to
``/embed`` (TEI's ``/`` dispatches to ``/embed`` for embedding models); ``truncation_direction`` is sent
as ``"Left"`` by us (TEI's enum name) and ``"left"`` by the SDK (TEI accepts both). ``/info`` and
``/health`` are read the same way.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from aixpy.config.embeddings import HuggingFaceEmbeddingsConfig, TEIEmbeddingsConfig
from aixpy.embeddings.codecs import huggingface as hf_codec
from aixpy.embeddings.huggingface import HuggingFaceEmbeddings
from aixpy.embeddings.tei import TEIEmbeddings
from tests.embeddings._servers import LoopbackServer, Recorded, Reply

hub = pytest.importorskip("huggingface_hub")

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TOKEN = "hf_oracleEmbedToken0123456789abcdef"
TEXTS = ["What is deep learning?", "Paris is the capital of France."]
_ENV = ("HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGING_FACE_HUB_TOKEN", "HF_INFERENCE_ENDPOINT", "HTTP_PROXY",
        "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK must never reach the Hub: any non-loopback connection fails the test."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and not ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback:
            raise AssertionError(f"an oracle test tried to reach {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    try:
        yield srv
    finally:
        srv.close()


def same_call(sdk: Recorded, ours: Recorded, *, path: bool = True) -> None:
    assert sdk.method == ours.method == "POST"
    if path:
        assert sdk.path == ours.path
    assert sdk.json == ours.json
    assert sdk.headers.get("authorization") == ours.headers.get("authorization") == f"Bearer {TOKEN}"
    assert sdk.headers["content-type"].split(";")[0] == ours.headers["content-type"].split(";")[0] == \
        "application/json"


# --------------------------------------------------------------------------- Inference API (router)


def test_router_url_template_is_the_sdks() -> None:
    from huggingface_hub.inference._providers import get_provider_helper

    helper = get_provider_helper("hf-inference", task="feature-extraction", model=MODEL)
    sdk_url = helper._prepare_url(TOKEN, MODEL)
    base, style = hf_codec.resolve_route(None)
    assert sdk_url == base + hf_codec.request_path(MODEL, style)


def hf_pair(server: LoopbackServer, model: str = MODEL, **over: Any) -> tuple[Any, HuggingFaceEmbeddings]:
    sdk = hub.InferenceClient(model=f"{server.url}/hf-inference/models/{model}/pipeline/feature-extraction",
                              token=TOKEN)
    cfg = HuggingFaceEmbeddingsConfig(model=model, endpoint=server.url + "/hf-inference", api_key=TOKEN, **over)
    return sdk, HuggingFaceEmbeddings(cfg, environ={})


@pytest.mark.parametrize(("sdk_kw", "our_kw"), [
    ({}, {}),
    ({"normalize": False, "truncate": True}, {"normalize": False, "truncate": True}),
    ({"normalize": True, "truncate": False}, {"normalize": True, "truncate": False}),
])
def test_router_request_matches(server: LoopbackServer, sdk_kw: dict[str, Any], our_kw: dict[str, Any]) -> None:
    rows = np.random.default_rng(1).standard_normal((2, 384)).astype(np.float32).tolist()
    server.reply = Reply.json(rows)
    sdk, ours = hf_pair(server, wait_for_model=False, **our_kw)
    with ours:
        sdk_out = sdk.feature_extraction(TEXTS, **sdk_kw)
        sdk_rec = server.take_one()
        our_out = ours.embed_array(TEXTS)
        our_rec = server.take_one()
    same_call(sdk_rec, our_rec)
    assert "x-wait-for-model" not in our_rec.headers
    assert sdk_out.dtype == our_out.dtype == np.float32
    assert np.array_equal(sdk_out, our_out)


def test_router_default_adds_only_the_wait_header(server: LoopbackServer) -> None:
    server.reply = Reply.json([[0.1, 0.2, 0.3]] * 2)
    sdk, ours = hf_pair(server, dimensions=3)
    with ours:
        sdk.feature_extraction(TEXTS)
        ours.embed_array(TEXTS)
    sdk_rec, our_rec = server.take()
    same_call(sdk_rec, our_rec)
    extra = {k for k in our_rec.headers if k.startswith("x-")} - {k for k in sdk_rec.headers if k.startswith("x-")}
    assert extra == {"x-wait-for-model"}
    assert our_rec.headers["x-wait-for-model"] == "true"


def test_token_level_answer_is_the_sdks_mean(server: LoopbackServer) -> None:
    tokens = np.random.default_rng(2).standard_normal((2, 5, 8)).astype(np.float32)
    server.reply = Reply.json(tokens.tolist())
    sdk, ours = hf_pair(server, model="org/token-model", dimensions=8)
    with ours:
        sdk_out = sdk.feature_extraction(TEXTS)
        our_out = ours.embed_array(TEXTS)
    assert sdk_out.shape == (2, 5, 8)
    assert np.allclose(our_out, sdk_out.mean(axis=1), atol=1e-6)


def test_lone_vector_answer(server: LoopbackServer) -> None:
    server.reply = Reply.json([0.25, -0.5, 1.0])
    sdk, ours = hf_pair(server, dimensions=3)
    with ours:
        sdk_out = sdk.feature_extraction(TEXTS[:1])
        our_out = ours.embed_array(TEXTS[:1])
    assert np.array_equal(our_out[0], sdk_out)


def test_loading_answer_is_an_error_for_both(server: LoopbackServer) -> None:
    server.reply = Reply.error(503, {"error": f"Model {MODEL} is currently loading", "estimated_time": 12.0})
    sdk, ours = hf_pair(server, wait_for_model=False)
    from aixpy.errors import ModelLoadingError

    with pytest.raises(hub.errors.HfHubHTTPError):
        sdk.feature_extraction(TEXTS)
    with ours, pytest.raises(ModelLoadingError) as info:
        ours.embed_array(TEXTS)
    assert info.value.retry_after == 12.0


# --------------------------------------------------------------------------- TEI


def tei_handler(rows: list[list[float]], info: dict[str, Any]) -> Any:
    def handle(rec: Recorded) -> Reply:
        if rec.path == "/info":
            return Reply.json(info)
        if rec.path == "/health":
            return Reply(b"", status=200)
        return Reply.json(rows)
    return handle


INFO = {"model_id": "BAAI/bge-small-en-v1.5", "model_sha": None, "model_dtype": "float16",
        "model_type": {"embedding": {"pooling": "cls"}}, "max_concurrent_requests": 512, "max_input_length": 512,
        "max_batch_tokens": 16384, "max_batch_requests": None, "max_client_batch_size": 32,
        "tokenization_workers": 4, "version": "1.5.0", "sha": None, "docker_label": None}


@pytest.mark.parametrize(("normalize", "truncate", "direction"), [
    (True, True, None), (False, True, None), (False, False, None), (True, True, "left")])
def test_tei_embed_matches(server: LoopbackServer, normalize: bool, truncate: bool, direction: str | None) -> None:
    rows = np.random.default_rng(3).standard_normal((2, 384)).astype(np.float32).tolist()
    server.handler = tei_handler(rows, INFO)
    sdk = hub.InferenceClient(model=server.url, token=TOKEN)
    sdk_kw: dict[str, Any] = {"normalize": normalize, "truncate": truncate}
    if direction:
        sdk_kw["truncation_direction"] = direction
    sdk_out = sdk.feature_extraction(TEXTS, **sdk_kw)
    sdk_rec = server.take_one()
    cfg = TEIEmbeddingsConfig(endpoint=server.url, api_key=TOKEN, normalize=normalize, truncate=truncate,
                              truncation_direction=direction)  # type: ignore[arg-type]
    with TEIEmbeddings(cfg, environ={}) as ours:
        assert [r.path for r in server.take()] == ["/info"]
        our_out = ours.embed_array(TEXTS)
    our_rec = server.take_one()
    assert (sdk_rec.path, our_rec.path) == ("/", "/embed")
    sdk_body = dict(sdk_rec.json)
    if direction:
        assert (sdk_body["truncation_direction"], our_rec.json["truncation_direction"]) == ("left", "Left")
        sdk_body["truncation_direction"] = "Left"
    assert sdk_body == json.loads(our_rec.body)
    assert our_rec.json["normalize"] is normalize
    assert our_rec.json["truncate"] is truncate
    assert sdk_rec.headers["authorization"] == our_rec.headers["authorization"] == f"Bearer {TOKEN}"
    assert np.array_equal(sdk_out, our_out)


def test_tei_info_and_health(server: LoopbackServer) -> None:
    server.handler = tei_handler([[0.0] * 384], INFO)
    sdk = hub.InferenceClient(model=server.url, token=TOKEN, provider="hf-inference")
    sdk_info = sdk.get_endpoint_info()
    assert sdk.health_check() is True
    sdk_paths = [(r.method, r.path) for r in server.take()]
    with TEIEmbeddings(TEIEmbeddingsConfig(endpoint=server.url), environ={}) as ours:
        info = ours.info
        assert info is not None
        assert ours.batch_size == 32
        assert ours.model() == sdk_info["model_id"]
        assert (info.max_client_batch_size, info.max_batch_tokens, info.pooling) == (
            sdk_info["max_client_batch_size"], sdk_info["max_batch_tokens"],
            sdk_info["model_type"]["embedding"]["pooling"])
        assert ours.dimensions() == 384  # known model: no probe
    assert sdk_paths == [("GET", "/info"), ("GET", "/health")]
    assert [(r.method, r.path) for r in server.take()] == [("GET", "/info")]
