"""Live: our ``openai`` embedding provider against a real OpenAI-compatible server (llama.cpp).

The session's ``llama_server`` serves chat only, so this module starts its own ``llama-server`` with
``--embeddings --pooling mean`` (Gemma 3 270M: 640-d mean-pooled vectors), with the same binary, model
and helpers as the live tier's conftest, on a free loopback port, stopped after the module. It FAILS
(never skips) when the server cannot start. The official ``openai`` SDK is the oracle: same vectors,
same usage, for the same texts.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import openai
import pytest

from aixpy.config.embeddings import OpenAIEmbeddingsConfig
from aixpy.embeddings.openai import OpenAIEmbeddings
from aixpy.errors import AuthenticationError

from .conftest import API_KEY, MODEL_ALIAS, STARTUP_TIMEOUT_S, _binary, _free_port, _healthy, _model, _stop

pytestmark = pytest.mark.live

TEXTS = ["machine learning", "deep learning", "cooking a risotto", "the weather in Paris", "vector databases",
         "a recipe for bread", "neural network training"]


@dataclass(frozen=True)
class EmbeddingServer:
    url: str  # OpenAI-style base URL, ending in /v1


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddingServer]:
    binary, model = _binary(), _model()
    log_path = tmp_path_factory.mktemp("llama-embeddings") / "server.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "-m", str(model), "--alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
           "-t", "1", "-c", "2048", "-np", "1", "--embeddings", "--pooling", "mean", "--api-key", API_KEY,
           "--no-webui"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        while time.monotonic() - started < STARTUP_TIMEOUT_S and proc.poll() is None and not _healthy(base):
            time.sleep(0.1)
        if proc.poll() is not None or not _healthy(base):
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"llama-server --embeddings did not come up (exit {proc.poll()}); log:\n{tail}",
                        pytrace=False)
        yield EmbeddingServer(base + "/v1")
    finally:
        _stop(proc)


def ours(server: EmbeddingServer, key: str = API_KEY, **kw: Any) -> OpenAIEmbeddings:
    cfg = OpenAIEmbeddingsConfig(model=MODEL_ALIAS, base_url=server.url, api_key=key, batch_size=3)
    return OpenAIEmbeddings(cfg, **kw)


def test_same_vectors_and_usage_as_the_official_sdk(embedding_server: EmbeddingServer) -> None:
    with ours(embedding_server, max_concurrency=2) as svc:
        got, usage = svc.embed_with_usage(TEXTS)  # 3 requests of <= 3 texts
        assert svc.dimensions() == 640  # learned from the answer
    with openai.OpenAI(base_url=embedding_server.url, api_key=API_KEY, max_retries=0, timeout=60) as client:
        resp = client.embeddings.create(model=MODEL_ALIAS, input=TEXTS, encoding_format="float")
    want = np.array([d.embedding for d in sorted(resp.data, key=lambda d: d.index)], dtype=np.float32)
    assert got.shape == want.shape == (len(TEXTS), 640)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert (usage.texts, usage.requests, usage.estimated) == (len(TEXTS), 3, False)
    assert usage.tokens == resp.usage.prompt_tokens
    unit = got / np.linalg.norm(got, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]  # "machine learning" is nearer "deep learning" than cooking


async def test_async_and_base64_agree_with_sync_float(embedding_server: EmbeddingServer) -> None:
    with ours(embedding_server) as svc:
        sync_float = svc.embed_array(TEXTS[:4])
    async with ours(embedding_server, encoding_format="base64", max_concurrency=2) as svc:
        async_b64 = await svc.aembed_array(TEXTS[:4])
    np.testing.assert_allclose(async_b64, sync_float, rtol=0, atol=1e-5)


def test_wrong_key_is_an_authentication_error(embedding_server: EmbeddingServer) -> None:
    with ours(embedding_server, key="wrong-key-123456") as svc, pytest.raises(AuthenticationError) as info:
        svc.embed("x")
    assert info.value.status_code == 401
    assert "wrong-key-123456" not in str(info.value)
