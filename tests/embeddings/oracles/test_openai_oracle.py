"""Wire oracle, OpenAI ``POST /embeddings``: the official ``openai`` SDK (3.x) vs our codec and provider.

Both are pointed at the same loopback server. Request: the same method, path, bearer header, content
type and JSON body for the same logical call (model, input list, dimensions, encoding_format, user).
One known difference, made explicit rather than normalised away: the SDK sends
``encoding_format: base64`` when the caller does not choose one; we default to ``float`` (every
compatible server speaks it), so the SDK calls below name the format they mean.

Reading: the SDK's parsed types (``CreateEmbeddingResponse``) are fed the replies of our server —
shuffled ``index`` order, base64 or float vectors — and must agree with our matrix and usage.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import openai
import pytest
from openai.types import CreateEmbeddingResponse

from aixpy.config.embeddings import OpenAIEmbeddingsConfig
from aixpy.embeddings.openai import OpenAIEmbeddings
from tests.embeddings._servers import LoopbackServer, Reply, fake_openai, vector_for

KEY = "sk-oracle-test-key-0123456789"
TEXTS = ["machine learning", "deep neural networks", "cooking a risotto", "the quick brown fox"]


def ours(srv: LoopbackServer, model: str = "text-embedding-3-small", dimensions: int | None = None,
         **kw: Any) -> OpenAIEmbeddings:
    cfg = OpenAIEmbeddingsConfig(api_key=KEY, model=model, base_url=srv.url + "/v1", dimensions=dimensions)
    return OpenAIEmbeddings(cfg, **kw)


def sdk_matrix(resp: CreateEmbeddingResponse) -> np.ndarray:
    """The SDK's vectors in index order (asked for base64 explicitly, the SDK hands back the strings)."""
    rows = [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]
    return np.array([np.frombuffer(base64.b64decode(r), "<f4") if isinstance(r, str) else r for r in rows],
                    dtype=np.float32)


def sdk(srv: LoopbackServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=srv.url + "/v1", max_retries=0)


CASES = [
    pytest.param({}, {"encoding_format": "float"}, id="plain"),
    pytest.param({"dimensions": 256}, {"dimensions": 256, "encoding_format": "float"}, id="dimensions"),
    pytest.param({"user": "user-42"}, {"user": "user-42", "encoding_format": "float"}, id="user"),
    pytest.param({"encoding_format": "base64", "dimensions": 64, "user": "u"},
                 {"encoding_format": "base64", "dimensions": 64, "user": "u"}, id="base64"),
]


@pytest.mark.parametrize(("our_kw", "sdk_kw"), CASES)
def test_same_request_as_the_sdk_and_same_vectors(loopback: LoopbackServer, our_kw: dict[str, Any],
                                                  sdk_kw: dict[str, Any]) -> None:
    loopback.handler = fake_openai(shuffle=True)
    dims = our_kw.pop("dimensions", None)
    with ours(loopback, dimensions=dims, **our_kw) as svc:
        got, usage = svc.embed_with_usage(TEXTS)
    mine = loopback.take_one()
    with sdk(loopback) as client:
        resp = client.embeddings.create(model="text-embedding-3-small", input=TEXTS, **sdk_kw)
    theirs = loopback.take_one()

    assert (mine.method, mine.path) == (theirs.method, theirs.path) == ("POST", "/v1/embeddings")
    assert mine.headers["authorization"] == theirs.headers["authorization"] == f"Bearer {KEY}"
    assert mine.headers["content-type"].split(";")[0] == theirs.headers["content-type"].split(";")[0]
    assert mine.json == theirs.json, "request bodies differ"

    sdk_vectors = sdk_matrix(resp)
    assert got.dtype == np.float32
    assert got.shape == sdk_vectors.shape == (len(TEXTS), dims or 1536)
    np.testing.assert_array_equal(got, sdk_vectors)
    assert usage.tokens == resp.usage.prompt_tokens
    assert not usage.estimated


def test_sdk_default_base64_and_our_base64_decode_alike(loopback: LoopbackServer) -> None:
    """The SDK's own default (base64, decoded by it) gives the vectors our base64 decoding gives."""
    loopback.handler = fake_openai(shuffle=True, seed=3)
    with sdk(loopback) as client:
        resp = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    theirs = loopback.take_one()
    assert theirs.json["encoding_format"] == "base64"
    with ours(loopback, encoding_format="base64") as svc:
        got = svc.embed_array(TEXTS)
    assert loopback.take_one().json == theirs.json
    np.testing.assert_array_equal(got, np.array([d.embedding for d in sorted(resp.data, key=lambda d: d.index)],
                                                dtype=np.float32))
    np.testing.assert_array_equal(got[2], np.array(vector_for(TEXTS[2], 1536), dtype=np.float32))


async def test_async_request_matches_the_async_sdk(loopback: LoopbackServer) -> None:
    loopback.handler = fake_openai()
    async with ours(loopback, model="text-embedding-3-large", dimensions=1024, user="x") as svc:
        got = await svc.aembed_array(TEXTS[:2])
    mine = loopback.take_one()
    async with openai.AsyncOpenAI(api_key=KEY, base_url=loopback.url + "/v1", max_retries=0) as client:
        resp = await client.embeddings.create(model="text-embedding-3-large", input=TEXTS[:2], dimensions=1024,
                                              encoding_format="float", user="x")
    assert mine.json == loopback.take_one().json
    assert got.shape == (2, 1024)
    np.testing.assert_array_equal(got, np.array([d.embedding for d in resp.data], dtype=np.float32))


def test_sdk_types_accept_our_servers_reply_and_agree_with_our_parse(loopback: LoopbackServer) -> None:
    """A hand-written reply in OpenAI's documented shape, indexes out of order: both parses agree."""
    reply = {"object": "list", "model": "text-embedding-3-small",
             "data": [{"object": "embedding", "index": 2, "embedding": [0.5, -0.25, 1.0]},
                      {"object": "embedding", "index": 0, "embedding": [0.125, 0.0, -1.0]},
                      {"object": "embedding", "index": 1, "embedding": [1, 2, 3]}],
             "usage": {"prompt_tokens": 7, "total_tokens": 7}}
    parsed = CreateEmbeddingResponse.model_validate(reply)
    loopback.reply = Reply.json(reply)
    with ours(loopback, model="my-compatible-model") as svc:  # unknown model: width learned from the answer
        got, usage = svc.embed_with_usage(["a", "b", "c"])
        assert svc.dimensions() == 3
    expected = np.array([d.embedding for d in sorted(parsed.data, key=lambda d: d.index)], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)
    assert usage.tokens == parsed.usage.prompt_tokens == 7
