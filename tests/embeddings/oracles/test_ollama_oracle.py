"""Wire oracle, Ollama ``POST /api/embed``: the official ``ollama`` Python client (0.6.x) vs our provider.

Both are pointed at the same loopback server. Request: same method, path, no auth header, and the same
JSON body for the same call (model, input list, truncate, keep_alive, dimensions, options). Reading:
the SDK's ``EmbedResponse`` parses the replies of our server and must agree with our matrix and our
usage (``prompt_eval_count``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ollama
import pytest
from ollama import EmbedResponse

from aixpy.config.embeddings import OllamaEmbeddingsConfig
from aixpy.embeddings.ollama import OllamaEmbeddings
from tests.embeddings._servers import LoopbackServer, Reply, fake_ollama

TEXTS = ["machine learning", "deep neural networks", "cooking a risotto"]

CASES = [
    pytest.param({}, {"truncate": True}, id="defaults"),
    pytest.param({"truncate": False, "keep_alive": "10m"}, {"truncate": False, "keep_alive": "10m"}, id="keep_alive"),
    pytest.param({"dimensions": 16}, {"truncate": True, "dimensions": 16}, id="dimensions"),
]


def ours(srv: LoopbackServer, model: str = "nomic-embed-text", **cfg: Any) -> OllamaEmbeddings:
    return OllamaEmbeddings(OllamaEmbeddingsConfig(model=model, base_url=srv.url, **cfg))


@pytest.mark.parametrize(("cfg", "sdk_kw"), CASES)
def test_same_request_as_the_sdk_and_same_vectors(loopback: LoopbackServer, cfg: dict[str, Any],
                                                  sdk_kw: dict[str, Any]) -> None:
    loopback.handler = fake_ollama(dims=768)
    with ours(loopback, **cfg) as svc:
        got, usage = svc.embed_with_usage(TEXTS)
    mine = loopback.take_one()
    with ollama.Client(host=loopback.url) as client:
        resp = client.embed(model="nomic-embed-text", input=TEXTS, **sdk_kw)
    theirs = loopback.take_one()

    assert (mine.method, mine.path) == (theirs.method, theirs.path) == ("POST", "/api/embed")
    assert "authorization" not in mine.headers
    assert "authorization" not in theirs.headers
    assert mine.json == theirs.json, "request bodies differ"
    np.testing.assert_array_equal(got, np.array(resp.embeddings, dtype=np.float32))
    assert got.shape == (3, cfg.get("dimensions", 768))
    assert usage.tokens == resp.prompt_eval_count
    assert not usage.estimated


def test_options_are_sent_like_the_sdk(loopback: LoopbackServer) -> None:
    loopback.handler = fake_ollama(dims=384)
    with OllamaEmbeddings(OllamaEmbeddingsConfig(model="all-minilm", base_url=loopback.url),
                          options={"num_ctx": 512}) as svc:
        svc.embed("hello")
    mine = loopback.take_one()
    with ollama.Client(host=loopback.url) as client:
        client.embed(model="all-minilm", input=["hello"], truncate=True, options={"num_ctx": 512})
    assert mine.json == loopback.take_one().json


async def test_async_request_matches_the_async_sdk(loopback: LoopbackServer) -> None:
    loopback.handler = fake_ollama(dims=8)
    async with ours(loopback, model="my-embedder:q4") as svc:  # unknown model: width learned
        got = await svc.aembed_array(TEXTS)
        assert await svc.adimensions() == 8
    mine = loopback.take_one()
    async with ollama.AsyncClient(host=loopback.url) as client:
        resp = await client.embed(model="my-embedder:q4", input=TEXTS, truncate=True)
    assert mine.json == loopback.take_one().json
    np.testing.assert_array_equal(got, np.array(resp.embeddings, dtype=np.float32))


def test_sdk_types_accept_our_servers_reply_and_agree_with_our_parse(loopback: LoopbackServer) -> None:
    reply = {"model": "nomic-embed-text", "embeddings": [[0.5, -0.25, 1.0], [1, 2, 3]],
             "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}
    parsed = EmbedResponse.model_validate(reply)
    loopback.reply = Reply.json(reply)
    with ours(loopback, dimensions=3) as svc:
        got, usage = svc.embed_with_usage(["a", "b"])
    np.testing.assert_array_equal(got, np.array(parsed.embeddings, dtype=np.float32))
    assert usage.tokens == parsed.prompt_eval_count == 8
