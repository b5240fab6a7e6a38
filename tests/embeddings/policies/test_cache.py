"""CachedEmbeddings with the in-memory LRU: key, misses-only batches, duplicates, LRU, TTL, partial batches."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest

from aixpy.embeddings.policies import CachedEmbeddings, MemoryCache, RetryingEmbeddings, cache_key
from aixpy.errors import PartialBatchError, ServerError
from aixpy.llm.deadline import ManualClock

from ._fakes import Scripted, reference


def test_key_is_versioned_sha256_of_provider_model_dims_normalize_text() -> None:
    expected = "v1:" + hashlib.sha256(b"openai|text-embedding-3-small|1536|1|hello").hexdigest()
    assert cache_key("openai", "text-embedding-3-small", 1536, True, "hello") == expected
    variants = {cache_key(p, m, d, n, t) for p, m, d, n, t in [
        ("openai", "m", 8, True, "x"), ("tei", "m", 8, True, "x"), ("openai", "m2", 8, True, "x"),
        ("openai", "m", 9, True, "x"), ("openai", "m", 8, False, "x"), ("openai", "m", 8, None, "x"),
        ("openai", "m", 8, True, "y")]}
    assert len(variants) == 7


def test_key_includes_the_providers_normalize_setting() -> None:
    class Normalizing(Scripted):
        def __init__(self, normalize: bool) -> None:
            super().__init__()
            self.config = SimpleNamespace(normalize=normalize)    # as TEI/HF keep their config

    on, off, unknown = (CachedEmbeddings(Normalizing(True)), CachedEmbeddings(Normalizing(False)),
                        CachedEmbeddings(Scripted()))
    assert on.key("t") == cache_key("scripted", "scripted", 32, True, "t")
    assert off.key("t") == cache_key("scripted", "scripted", 32, False, "t")
    assert unknown.key("t") == cache_key("scripted", "scripted", 32, None, "t")
    assert CachedEmbeddings(RetryingEmbeddings(Normalizing(False))).key("t") == off.key("t")


def test_batch_sends_only_misses_each_distinct_text_once() -> None:
    inner = Scripted()
    svc = CachedEmbeddings(inner)
    first = svc.embed_array(["a", "b", "a", "c"])
    assert inner.requests == [["a", "b", "c"]]
    np.testing.assert_array_equal(first, reference(["a", "b", "a", "c"]))
    stats = svc.stats()
    assert (stats["hits"], stats["misses"], stats["duplicates"]) == (0, 3, 1)

    second = svc.embed_array(["c", "d", "b", "d"])
    assert inner.requests[1:] == [["d"]]
    np.testing.assert_array_equal(second, reference(["c", "d", "b", "d"]))
    stats = svc.stats()
    assert (stats["hits"], stats["misses"], stats["duplicates"], stats["size"]) == (2, 4, 2, 4)
    assert svc.last_usage is not None
    assert svc.last_usage.texts == 1

    assert svc.embed("a") == pytest.approx(reference(["a"])[0].tolist())
    assert len(inner.requests) == 2  # a full hit sends nothing


def test_lru_evicts_least_recently_used() -> None:
    inner = Scripted()
    svc = CachedEmbeddings(inner, MemoryCache(max_entries=2))
    svc.embed_batch(["a", "b"])
    svc.embed("a")            # a is now more recent than b
    svc.embed("c")            # evicts b
    inner.requests.clear()
    svc.embed_batch(["a", "c", "b"])
    assert inner.requests == [["b"]]
    assert svc.stats()["evictions"] == 2  # b, then a or c to make room for b again


def test_ttl_expires_entries_on_the_injected_clock() -> None:
    clock = ManualClock()
    inner = Scripted()
    svc = CachedEmbeddings(inner, MemoryCache(ttl=60.0, clock=clock))
    svc.embed("a")
    clock.advance(59.9)
    svc.embed("a")
    assert len(inner.requests) == 1
    clock.advance(0.2)
    svc.embed("a")
    assert len(inner.requests) == 2
    assert svc.stats()["expired"] == 1


def test_wrong_dimension_entry_is_a_miss_never_returned() -> None:
    inner = Scripted(dims=32)
    backend = MemoryCache()
    svc = CachedEmbeddings(inner, backend)
    backend.set_many({svc.key("a"): np.ones(16, dtype=np.float32)})
    out = svc.embed_array(["a"])
    assert out.shape == (1, 32)
    np.testing.assert_array_equal(out, reference(["a"]))
    assert inner.requests == [["a"]]


def test_partial_batch_caches_successes_and_reindexes_onto_the_callers_list() -> None:
    inner = Scripted(batch_size=2, fail_text={"d": [ServerError("boom")]})
    svc = CachedEmbeddings(inner)
    svc.embed("a")                                      # cached beforehand
    with pytest.raises(PartialBatchError) as info:
        svc.embed_batch(["a", "b", "c", "d", "e"])      # misses b c d e -> sub-batches [b c] [d e]
    err = info.value
    assert err.failed == [3, 4]
    assert [v is None for v in err.vectors] == [False, False, False, True, True]
    np.testing.assert_allclose(np.array(err.vectors[:3]), reference(["a", "b", "c"]), rtol=1e-6)
    inner.requests.clear()
    out = svc.embed_array(["a", "b", "c", "d", "e"])
    assert inner.requests == [["d", "e"]]               # b and c were cached from the partial answer
    np.testing.assert_array_equal(out, reference(["a", "b", "c", "d", "e"]))


def test_stored_vectors_are_copies() -> None:
    svc = CachedEmbeddings(Scripted())
    out = svc.embed_array(["a"])
    out[0, :] = 42.0
    np.testing.assert_array_equal(svc.embed_array(["a"]), reference(["a"]))


async def test_async_path_shares_the_cache() -> None:
    inner = Scripted()
    svc = CachedEmbeddings(inner)
    svc.embed_batch(["a", "b"])
    out = await svc.aembed_array(["b", "c", "c"])
    assert inner.requests == [["a", "b"], ["c"]]
    np.testing.assert_array_equal(out, reference(["b", "c", "c"]))
    assert svc.stats()["hits"] == 1
