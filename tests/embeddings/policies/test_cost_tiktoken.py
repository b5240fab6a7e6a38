"""Exact token counts with tiktoken (installed by ``make test``) from an encoding already on disk.

``scripts/tiktoken_cache.py`` (run by ``make test``) puts the public ``cl100k_base`` file into
``$AIXPY_CACHE/tiktoken``; each test copies it into a temporary tiktoken cache. tiktoken's own
download function is replaced by one that fails the test: nothing may be fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import tiktoken  # a missing package must fail the run, never skip it
import tiktoken.load

from aixpy.embeddings.policies import CostTracker, CostTrackingEmbeddings, TokenCount, count_tokens
from aixpy.embeddings.policies import cost as cost_module

from ._fakes import Scripted

URL, SHA256 = cost_module._TIKTOKEN_FILES["cl100k_base"]
NAME = hashlib.sha1(URL.encode()).hexdigest()


def _no_download(*args: object, **kwargs: object) -> bytes:
    raise AssertionError(f"tiktoken tried to download {args or kwargs}")


@pytest.fixture
def cl100k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    source = Path(os.environ.get("AIXPY_CACHE", Path.home() / ".cache" / "aixpy")) / "tiktoken" / NAME
    if not source.is_file():
        pytest.fail(f"{source} is missing: run `python scripts/tiktoken_cache.py` (make test does)")
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    shutil.copyfile(source, cache / NAME)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.load, "read_file", _no_download)
    cost_module._encoder.cache_clear()
    yield cache
    cost_module._encoder.cache_clear()


# token ids of cl100k_base, as published in tiktoken's README and OpenAI's cookbook
@pytest.mark.parametrize(("text", "tokens"), [
    ("hello world", 2),                     # [15339, 1917]
    ("tiktoken is great!", 6),              # [83, 1609, 5963, 374, 2294, 0]
    ("", 0),
])
def test_openai_models_are_counted_exactly(cl100k: Path, text: str, tokens: int) -> None:
    for model in ("text-embedding-3-small", "text-embedding-3-large", "openai/text-embedding-ada-002"):
        assert count_tokens([text], model) == TokenCount(tokens, estimated=False)


def test_counts_agree_with_tiktoken_itself(cl100k: Path) -> None:
    texts = ["The quick brown fox jumps over the lazy dog.", "naïve café — 東京 🚀", "x" * 1000, "  spaced  out  "]
    encoding = tiktoken.get_encoding("cl100k_base")
    expected = sum(len(encoding.encode(t)) for t in texts)
    assert count_tokens(texts, "text-embedding-3-small") == TokenCount(expected, estimated=False)
    assert expected != sum(-(-len(t) // 4) for t in texts)   # the estimate would differ: the count is real


def test_other_models_are_still_estimated(cl100k: Path) -> None:
    assert count_tokens(["a" * 8], "BAAI/bge-small-en-v1.5").estimated


def test_cost_tracker_records_exact_tokens_when_the_provider_reports_none(cl100k: Path) -> None:
    tracker = CostTracker()
    svc = CostTrackingEmbeddings(Scripted(provider="openai", model="text-embedding-3-small", batch_size=1), tracker)
    _, usage = svc.embed_with_usage(["hello world", "tiktoken is great!"])
    assert (usage.tokens, usage.estimated) == (8, False)
    (line,) = tracker.totals()
    assert (line.tokens, line.estimated_tokens) == (8, 0)
    assert line.usd == pytest.approx(8 * 0.02 / 1_000_000)
