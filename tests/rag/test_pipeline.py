"""The indexing pipeline: batches across files, few store round trips, write order per file, the bounded
reader, truthful progress, and the async twins (aindex_path, asearch) against the sync ones."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aixpy import vectorstores
from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.rag import asearch, search
from aixpy.rag._pipeline import Reader
from aixpy.rag.indexer import Indexer, file_key
from aixpy.rag.manifest import CHUNKS
from aixpy.vectorstores import CollectionOptions


class Counting(HashEmbeddings):
    def __init__(self) -> None:
        super().__init__(dimensions=64)
        self.batches: list[int] = []

    def embed_array(self, texts: Sequence[str]) -> Any:
        self.batches.append(len(texts))
        return super().embed_array(texts)


class Recording:
    """A collection proxy logging every call: (method, ids)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.log: list[tuple[str, list[str]]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in ("get", "upsert", "upsert_batch", "delete", "aget", "aupsert", "aupsert_batch", "adelete"):
            return attr

        def call(arg: Any) -> Any:
            ids = [arg.id] if name.endswith("upsert") else [getattr(d, "id", d) for d in arg]
            self.log.append((name[1:] if name.startswith("a") else name, ids))
            return attr(arg)

        return call


def _corpus(root: Path, files: int, words: int = 40) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"f{i:03d}.md").write_text(f"# File {i}\n\n" + " ".join(f"word{i}x{k}" for k in range(words)))
    return root


def _coll(name: str = "kb", dims: int = 64) -> Any:
    return vectorstores.new({"provider": "memory"}).collection(name, CollectionOptions(dimensions=dims))


def _snapshot(coll: Any, corpus: Path) -> dict[str, tuple[str, dict[str, Any], list[float]]]:
    out = {}
    for p in sorted(corpus.iterdir()):
        key = file_key(p.resolve())
        for d in coll.get([f"{key}:{i}" for i in range(50)]):
            out[d.id] = (d.content, d.metadata, np.round(np.asarray(d.embedding), 6).tolist())
    return out


def test_chunks_are_batched_across_files_with_few_round_trips(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c", 60)
    emb, coll = Counting(), Recording(_coll())
    rep = Indexer(emb, coll, chunk_size=30, overlap=4, batch_size=32).index_path(corpus)
    assert rep.files_indexed == 60
    assert rep.chunks_embedded == coll.count(CHUNKS) > 60
    assert sum(emb.batches) == rep.chunks_embedded
    assert max(emb.batches) == 32, "a batch holds chunks of several files"
    assert len(emb.batches) < 60 / 2
    upserts = [ids for op, ids in coll.log if op == "upsert_batch"]
    gets = [ids for op, ids in coll.log if op == "get"]
    assert len(upserts) == len(emb.batches) + 1  # one per batch, plus the last batch's chunk 0s
    assert len(gets) <= 3 + len(emb.batches)  # records, markers, one tail probe per batch


def test_each_file_chunk_zero_is_written_after_its_other_chunks_and_stale_tail(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c", 30, words=80)
    emb, coll = Counting(), Recording(_coll())
    idx = Indexer(emb, coll, chunk_size=30, overlap=4, batch_size=16)
    idx.index_path(corpus)
    for i in range(0, 30, 3):  # shrink some files: they get stale tails to delete
        (corpus / f"f{i:03d}.md").write_text(f"short {i}")
    coll.log.clear()
    rep = idx.index_path(corpus)
    assert rep.files_indexed == 10
    assert rep.chunks_deleted > 0
    writes = [(n, op, ids) for n, (op, ids) in enumerate(coll.log) if op in ("upsert_batch", "delete")]
    for i in range(0, 30, 3):
        key = file_key((corpus / f"f{i:03d}.md").resolve())
        [head_at] = [n for n, op, ids in writes if op == "upsert_batch" and f"{key}:0" in ids]
        others = [n for n, _, ids in writes if any(x.startswith(f"{key}:") and x != f"{key}:0" for x in ids)]
        assert others
        assert max(others) < head_at
        deleted = [x for _, op, ids in writes if op == "delete" for x in ids if x.startswith(f"{key}:")]
        assert deleted == sorted(deleted, key=lambda x: -int(x.rsplit(":", 1)[1])), "highest first"


def test_records_are_written_before_any_chunk(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c", 5)
    coll = Recording(_coll())
    Indexer(Counting(), coll, chunk_size=30, overlap=4).index_path(corpus)
    writes = [ids for op, ids in coll.log if op in ("upsert", "upsert_batch")]
    assert [ids[0] for ids in writes[:2]] == ["_aixpy:signature", writes[1][0]]
    assert writes[1][0].startswith("_aixpy:root:")


def test_async_index_and_search_match_sync(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c", 25, words=70)
    (corpus / "skip.bin").write_bytes(b"\x00\x01")
    (corpus / "zoo.md").write_text("Zebras and giraffes roam the savanna near the watering hole.")
    sync_coll, async_coll = _coll("a"), _coll("b")
    sync_seen: list[tuple[str, int, int]] = []
    async_seen: list[tuple[str, int, int]] = []
    rep = Indexer(Counting(), sync_coll, chunk_size=30, overlap=4, batch_size=8).index_path(
        corpus, progress=lambda *a: sync_seen.append(a))
    arep = asyncio.run(Indexer(Counting(), async_coll, chunk_size=30, overlap=4, batch_size=8).aindex_path(
        corpus, progress=lambda *a: async_seen.append(a)))
    assert arep.as_dict() == rep.as_dict()
    assert _snapshot(async_coll, corpus) == _snapshot(sync_coll, corpus)
    # the same steps; a chunk total depends on how far the reader thread has got, except the last
    assert [(s, d) for s, d, _ in async_seen] == [(s, d) for s, d, _ in sync_seen]
    assert async_seen[-1] == sync_seen[-1]
    emb = Counting()
    want = search(emb, sync_coll, "zebras giraffes savanna", limit=3)
    got = asyncio.run(asearch(emb, async_coll, "zebras giraffes savanna", limit=3))
    assert [(h.source, h.chunk, round(h.score, 6)) for h in got] == [(h.source, h.chunk, round(h.score, 6))
                                                                      for h in want]
    assert want[0].source == "zoo.md"
    again = asyncio.run(Indexer(Counting(), async_coll, chunk_size=30, overlap=4).aindex_path(corpus))
    assert (again.files_unchanged, again.files_indexed) == (26, 0)


def test_progress_is_truthful(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c", 40, words=60)
    coll = _coll()
    seen: list[tuple[str, int, int]] = []
    Indexer(Counting(), coll, chunk_size=30, overlap=4, batch_size=8, read_ahead=8).index_path(
        corpus, progress=lambda *a: seen.append(a))
    files = [(d, t) for s, d, t in seen if s == "scan"]
    chunks = [(d, t) for s, d, t in seen if s == "embed"]
    assert files[-1] == (40, 40)
    assert all(t == 40 for _, t in files)
    assert [d for d, _ in files] == sorted(d for d, _ in files)
    assert all(d <= t for d, t in chunks), "never more done than known"
    assert [t for _, t in chunks] == sorted(t for _, t in chunks), "the total only grows as files are read"
    assert chunks[-1] == (coll.count(CHUNKS), coll.count(CHUNKS))
    assert chunks[0][1] < coll.count(CHUNKS), "the bar starts before every file is chunked"


def test_reader_holds_at_most_its_budget() -> None:
    held: list[int] = []
    lock = threading.Lock()
    produced = [0]

    def prepare(i: int) -> list[int]:
        with lock:
            produced[0] += 1
        return [i] * 3

    reader: Reader[list[int]] = Reader(range(50), prepare, len, budget=7)
    out = []
    while (item := reader.get()) is not None:
        time.sleep(0.002)
        with lock:
            held.append(produced[0] - len(out) - 1)
        out.append(item[0])
    reader.close()
    assert out == list(range(50))
    assert max(held) <= 3  # 7 units = two 3-chunk items queued, plus one being prepared


def test_reader_error_reaches_the_consumer() -> None:
    def prepare(i: int) -> int:
        if i == 3:
            raise OSError("disk gone")
        return i

    reader: Reader[int] = Reader(range(10), prepare, lambda _: 1, budget=2)
    got = [reader.get() for _ in range(3)]
    with pytest.raises(OSError, match="disk gone"):
        reader.get()
    reader.close()
    assert got == [0, 1, 2]


def test_a_failed_write_leaves_that_file_to_the_next_run(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "c", 6, words=80)
    inner = _coll()
    bad = file_key((corpus / "f002.md").resolve())

    class Failing(Recording):
        def __getattr__(self, name: str) -> Any:
            if name != "upsert_batch":
                return getattr(self._inner, name)

            def upsert_batch(docs: Any) -> Any:
                good = [d for d in docs if not d.id.startswith(bad + ":")]
                res = self._inner.upsert_batch(good)
                from aixpy.errors import InvalidInputError

                for d in docs:
                    if d.id.startswith(bad + ":"):
                        res.add_failure(d.id, InvalidInputError("refused"))
                return res

            return upsert_batch

    rep = Indexer(Counting(), Failing(inner), chunk_size=30, overlap=4, batch_size=4).index_path(corpus)
    assert rep.files_indexed == 5
    assert rep.failures
    assert all("f002.md" in f for f in rep.failures)
    assert inner.get([f"{bad}:0"]) == []
    again = Indexer(Counting(), inner, chunk_size=30, overlap=4).index_path(corpus)
    assert (again.files_indexed, again.files_unchanged) == (1, 5)
