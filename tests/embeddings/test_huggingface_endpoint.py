"""``provider: huggingface`` with an ``endpoint``: posted to exactly the configured URL (no ``/`` added)."""

from __future__ import annotations

import pytest

from aixpy.config.embeddings import HuggingFaceEmbeddingsConfig
from aixpy.embeddings.codecs import huggingface as codec
from aixpy.embeddings.huggingface import HuggingFaceEmbeddings

from ._servers import LoopbackServer, Recorded, Reply, loopback  # noqa: F401

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def reply(rec: Recorded) -> Reply:
    return Reply.json([[0.5, 0.5, 0.5] for _ in rec.json["inputs"]])


@pytest.mark.parametrize(("path", "sent"), [
    ("/models/org/minilm", "/models/org/minilm"),
    ("/models/org/minilm/", "/models/org/minilm/"),  # a trailing slash the operator wrote stays
    ("/v1/embed", "/v1/embed"),
    ("", "/"),
])
def test_endpoint_is_posted_to_exactly_as_given(loopback: LoopbackServer, path: str, sent: str) -> None:  # noqa: F811
    loopback.handler = reply
    endpoint = loopback.url + path
    cfg = HuggingFaceEmbeddingsConfig(model=MODEL, endpoint=endpoint, dimensions=3)
    with HuggingFaceEmbeddings(cfg, environ={}) as svc:
        assert svc.api_style == "endpoint"
        svc.embed("x")
        assert endpoint.rstrip("/") in repr(svc)
    rec = loopback.take_one()
    assert (rec.method, rec.path) == ("POST", sent)


async def test_endpoint_is_posted_to_exactly_as_given_async(loopback: LoopbackServer) -> None:  # noqa: F811
    loopback.handler = reply
    cfg = HuggingFaceEmbeddingsConfig(model=MODEL, endpoint=loopback.url + "/models/org/minilm", dimensions=3)
    svc = HuggingFaceEmbeddings(cfg, environ={})
    await svc.aembed("x")
    await svc.aclose()
    assert loopback.take_one().path == "/models/org/minilm"


def test_split_endpoint_keeps_the_path_and_query() -> None:
    assert codec.resolve_route("https://e.example/models/org/m/") == ("https://e.example/models/org/m/", "endpoint")
    assert codec.split_endpoint("https://e.example:8443/a/b") == ("https://e.example:8443", "/a/b")
    assert codec.split_endpoint("https://e.example/a?x=1") == ("https://e.example", "/a?x=1")
    assert codec.split_endpoint("https://e.example") == ("https://e.example", "/")
