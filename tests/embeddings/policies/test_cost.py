"""Token counting and the cost tracker: estimates flagged, provider usage preferred, prices, thread safety."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aixpy.embeddings.models import PRICES_PER_1M, price_per_1m
from aixpy.embeddings.policies import CostTracker, CostTrackingEmbeddings, TokenCount, count_tokens
from aixpy.embeddings.policies import cost as cost_module
from aixpy.errors import ServerError

from ._fakes import Scripted


@pytest.fixture(autouse=True)
def no_tiktoken_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point tiktoken at an empty cache: whether or not it is installed, nothing may be downloaded."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    cost_module._encoder.cache_clear()
    yield
    cost_module._encoder.cache_clear()


def test_without_a_cached_encoding_tokens_are_estimated_and_flagged() -> None:
    count = count_tokens(["a" * 8, "bb", "x" * 9], "text-embedding-3-small")
    assert count == TokenCount(2 + 1 + 3, estimated=True)


def test_a_corrupt_cached_encoding_is_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken would delete a file failing its hash and download it again: it must not be asked to."""
    url, _ = cost_module._TIKTOKEN_FILES["cl100k_base"]
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    bad = cache / hashlib.sha1(url.encode()).hexdigest()
    bad.write_bytes(b"not a bpe file")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    cost_module._encoder.cache_clear()
    assert count_tokens(["hello world"], "text-embedding-3-small").estimated
    assert bad.read_bytes() == b"not a bpe file"         # untouched: nothing deleted, nothing fetched


def test_prices_per_million_tokens() -> None:
    assert PRICES_PER_1M["text-embedding-3-small"] == 0.02
    assert price_per_1m("openai", "text-embedding-3-large") == 0.13
    assert price_per_1m("openai", "openai/text-embedding-ada-002") == 0.10
    assert price_per_1m("local", "sentence-transformers/all-MiniLM-L6-v2") == 0.0
    assert price_per_1m("huggingface", "BAAI/bge-large-en-v1.5") is None   # billed by compute time


def test_provider_reported_usage_is_preferred() -> None:
    tracker = CostTracker()
    inner = Scripted(provider="openai", model="text-embedding-3-small", batch_size=2, tokens=7)
    svc = CostTrackingEmbeddings(inner, tracker)
    _, usage = svc.embed_with_usage(["a", "b", "c"])
    assert (usage.tokens, usage.estimated, usage.requests) == (21, False, 2)
    (line,) = tracker.totals()
    assert (line.provider, line.model, line.requests, line.texts, line.tokens, line.estimated) == (
        "openai", "text-embedding-3-small", 2, 3, 21, False)
    assert line.usd == pytest.approx(21 * 0.02 / 1_000_000)


def test_estimated_usage_is_flagged_in_totals_and_report() -> None:
    tracker = CostTracker()
    svc = CostTrackingEmbeddings(Scripted(provider="openai", model="text-embedding-3-large"), tracker)
    svc.embed_batch(["x" * 40, "y" * 4])
    (line,) = tracker.totals()
    assert (line.tokens, line.estimated_tokens) == (11, 11)
    report = tracker.report()
    assert "text-embedding-3-large" in report
    assert "~11" in report
    assert tracker.total_usd == pytest.approx(11 * 0.13 / 1_000_000)


def test_unknown_price_is_none_never_zero() -> None:
    tracker = CostTracker()
    CostTrackingEmbeddings(Scripted(provider="huggingface", model="BAAI/bge-small-en-v1.5"), tracker).embed("x")
    CostTrackingEmbeddings(Scripted(provider="local", model="minilm"), tracker).embed("y")
    lines = {line.provider: line for line in tracker.totals()}
    assert lines["huggingface"].usd is None
    assert lines["local"].usd == 0.0
    assert tracker.total_usd is None
    assert "unknown" in tracker.report()
    assert CostTracker(prices={"BAAI/bge-small-en-v1.5": 0.01}).price("huggingface", "BAAI/bge-small-en-v1.5") == 0.01


def test_partial_batch_records_what_succeeded() -> None:
    tracker = CostTracker()
    inner = Scripted(provider="openai", model="text-embedding-3-small", batch_size=1, tokens=5,
                     fail_text={"b": [ServerError("x")]})
    with pytest.raises(Exception, match="1 of 3 texts failed"):
        CostTrackingEmbeddings(inner, tracker).embed_batch(["a", "b", "c"])
    (line,) = tracker.totals()
    assert (line.texts, line.tokens, line.requests) == (2, 10, 3)


def test_failed_calls_cost_nothing() -> None:
    tracker = CostTracker()
    with pytest.raises(ServerError):
        CostTrackingEmbeddings(Scripted(script=[ServerError("x")]), tracker).embed("a")
    assert tracker.totals() == []


def test_thread_safe_totals() -> None:
    tracker = CostTracker()

    def work() -> None:
        for _ in range(200):
            tracker.record("openai", "text-embedding-3-small", TokenCount(3, False), texts=1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (line,) = tracker.totals()
    assert (line.requests, line.texts, line.tokens) == (1600, 1600, 4800)
    tracker.reset()
    assert tracker.totals() == []


async def test_async_records_the_same() -> None:
    sync_t, async_t = CostTracker(), CostTracker()
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    CostTrackingEmbeddings(Scripted(provider="openai", model="text-embedding-3-small"), sync_t).embed_batch(texts)
    await CostTrackingEmbeddings(Scripted(provider="openai", model="text-embedding-3-small"),
                                 async_t).aembed_batch(texts)
    assert sync_t.totals() == async_t.totals()
