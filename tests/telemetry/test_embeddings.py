"""``InstrumentedEmbeddings`` on the hash embeddings and on the OpenAI provider against a real loopback
server (HTTP events too): exact fields, partial failures, no texts in events, nothing built unheard."""

from __future__ import annotations

import pytest

from aixpy.config.embeddings import OpenAIEmbeddingsConfig
from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.embeddings.openai import OpenAIEmbeddings
from aixpy.embeddings.policies import CachedEmbeddings, InstrumentedEmbeddings
from aixpy.embeddings.policies import instrumented as instrumented_module
from aixpy.errors import InvalidRequestError, PartialBatchError
from aixpy.telemetry import EmbeddingEvent, HttpEvent
from tests.embeddings._servers import LoopbackServer, Reply, fake_openai

from .conftest import Events, assert_no_content

TEXTS = ["alpha zebra-otter one", "beta quokka-lynx", "gamma"]


def test_hash_embeddings_exact_event(events: Events) -> None:
    svc = InstrumentedEmbeddings(HashEmbeddings(dimensions=16))
    vectors = svc.embed_array(TEXTS)
    assert vectors.shape == (3, 16)
    (e,) = events
    assert isinstance(e, EmbeddingEvent)
    assert e.kind == "embeddings.call"
    assert (e.provider, e.model, e.operation, e.texts, e.dimensions, e.error) == (
        "hash", "hash-bow", "embed", 3, 16, None)
    assert e.tokens is not None
    assert e.tokens > 0
    assert e.tokens_estimated
    assert e.cost_usd == 0.0  # a local model is free, and says so
    assert e.duration > 0
    assert svc.embed_array([]).shape[0] == 0  # an empty call sends nothing and emits nothing
    assert len(events) == 1
    assert_no_content(events, "zebra-otter", "quokka-lynx", "alpha")


async def test_async_and_single_text_calls(events: Events) -> None:
    svc = InstrumentedEmbeddings(HashEmbeddings(dimensions=8))
    await svc.aembed_batch(TEXTS[:2])
    await svc.aembed("one more")
    svc.embed("and a sync one")
    assert [(e.texts, e.dimensions) for e in events if isinstance(e, EmbeddingEvent)] == [(2, 8), (1, 8), (1, 8)]


def test_outside_a_cache_hits_count_as_texts_asked(events: Events) -> None:
    inner = InstrumentedEmbeddings(HashEmbeddings(dimensions=8))
    svc = InstrumentedEmbeddings(CachedEmbeddings(inner))
    svc.embed_batch(TEXTS)
    svc.embed_batch(TEXTS)  # all cached: the inner wrapper sees nothing
    asked = [e.texts for e in events if isinstance(e, EmbeddingEvent)]
    assert asked == [3, 3, 3]  # inner (sent), outer, outer (from the cache)


def test_openai_on_loopback_usage_cost_and_http_events(events: Events) -> None:
    with LoopbackServer() as srv:
        srv.handler = fake_openai(dims=4)
        cfg = OpenAIEmbeddingsConfig(api_key="sk-test-secret-0123456789abcdef", model="text-embedding-3-small",
                                     base_url=srv.url + "/v1", dimensions=4, batch_size=2)
        with InstrumentedEmbeddings(OpenAIEmbeddings(cfg, max_concurrency=1)) as svc:
            svc.embed_batch(TEXTS)
        port = srv.url.rsplit(":", 1)[1]
    calls = events.of(EmbeddingEvent)
    https = events.of(HttpEvent)
    assert len(calls) == 1
    assert len(https) == 2
    (e,) = calls
    assert isinstance(e, EmbeddingEvent)
    assert (e.provider, e.model, e.texts, e.tokens, e.tokens_estimated, e.requests, e.dimensions) == (
        "openai", "text-embedding-3-small", 3, 6, False, 2, 4)  # the server's count: words
    assert e.cost_usd == pytest.approx(6 * 0.02 / 1e6)
    for h in https:
        assert isinstance(h, HttpEvent)
        assert (h.provider, h.model, h.method, h.host, h.path, h.status, h.error, h.stream) == (
            "openai", "text-embedding-3-small", "POST", f"127.0.0.1:{port}", "/v1/embeddings", 200, None, False)
        assert h.bytes > 0
    assert_no_content(events, "zebra-otter", "quokka-lynx", "sk-test-secret")


def test_a_partial_batch_failure_records_its_type_and_what_was_spent(events: Events) -> None:
    with LoopbackServer() as srv:
        ok = fake_openai(dims=4)
        srv.handler = lambda rec: ok(rec) if "alpha zebra-otter one" in rec.json["input"] else Reply.json(
            {"error": {"message": "bad input"}}, status=400)
        cfg = OpenAIEmbeddingsConfig(api_key="sk-test-secret-0123456789abcdef", model="text-embedding-3-small",
                                     base_url=srv.url + "/v1", dimensions=4, batch_size=2)
        with InstrumentedEmbeddings(OpenAIEmbeddings(cfg, max_concurrency=1)) as svc, \
                pytest.raises(PartialBatchError):
            svc.embed_batch(TEXTS)
    (e,) = events.of(EmbeddingEvent)
    assert isinstance(e, EmbeddingEvent)
    assert (e.error, e.texts, e.tokens, e.dimensions) == ("PartialBatchError", 3, 5, None)  # first batch: 5 words
    statuses = sorted((h.status, h.error) for h in events.of(HttpEvent) if isinstance(h, HttpEvent))
    assert statuses == [(200, None), (400, InvalidRequestError.__name__)]


def test_nothing_is_measured_nor_built_when_nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("built while nobody listens")

    monkeypatch.setattr(instrumented_module, "Timer", forbidden)
    monkeypatch.setattr(instrumented_module, "EmbeddingEvent", forbidden)
    svc = InstrumentedEmbeddings(HashEmbeddings(dimensions=8))
    assert svc.embed_array(TEXTS).shape == (3, 8)


def test_a_broken_handler_never_breaks_the_call() -> None:
    def broken(e: object) -> None:
        raise RuntimeError("exporter down")

    svc = InstrumentedEmbeddings(HashEmbeddings(dimensions=8), on_event=broken)
    assert svc.embed_array(TEXTS).shape == (3, 8)
