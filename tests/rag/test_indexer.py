"""The indexing pipeline on the memory store with the deterministic hashing embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.rag.indexer import Indexer, file_key, search
from aixpy.rag.manifest import CHUNKS
from aixpy.vectorstores import CollectionOptions


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "bread.md").write_text("# Bread\n\nKnead the dough, let it rise, bake the bread in a hot oven.\n")
    (root / "planets.txt").write_text("Jupiter and Saturn are gas giants made of hydrogen and helium.\n")
    (root / "long.md").write_text("\n\n".join(f"Section {i}: retries and backoff for api calls number {i}."
                                              for i in range(60)))
    return root


def _setup() -> tuple[HashEmbeddings, vectorstores.BaseCollection]:
    emb = HashEmbeddings(dimensions=128)
    store = vectorstores.new({"provider": "memory"})
    return emb, store.collection("kb", CollectionOptions(dimensions=128))


def test_index_then_search(corpus: Path) -> None:
    emb, coll = _setup()
    report = Indexer(emb, coll, chunk_size=60, overlap=10).index_path(corpus)
    assert report.files_seen == 3
    assert report.files_indexed == 3
    assert not report.failures
    assert report.chunks_embedded == coll.count(CHUNKS) > 3
    hits = search(emb, coll, "gas giants hydrogen", limit=2)
    assert hits[0].source == "planets.txt"
    assert hits[0].rank == 1
    assert hits[0].score > hits[1].score


def test_reindex_unchanged_embeds_nothing(corpus: Path) -> None:
    emb, coll = _setup()
    idx = Indexer(emb, coll, chunk_size=60, overlap=10)
    first = idx.index_path(corpus)
    calls = emb.calls
    again = idx.index_path(corpus)
    assert emb.calls == calls, "unchanged files must not be re-embedded"
    assert (again.files_unchanged, again.files_indexed, again.chunks_embedded) == (3, 0, 0)
    assert coll.count(CHUNKS) == first.chunks_embedded


def test_changed_file_reembedded_and_stale_chunks_removed(corpus: Path) -> None:
    emb, coll = _setup()
    idx = Indexer(emb, coll, chunk_size=60, overlap=10)
    idx.index_path(corpus)
    before = coll.count(CHUNKS)
    long_chunks = len([d for d in coll.get([f"{file_key(corpus / 'long.md')}:{i}" for i in range(500)])])
    (corpus / "long.md").write_text("Now it is short.")
    calls = emb.calls
    rep = idx.index_path(corpus)
    assert rep.files_indexed == 1
    assert rep.files_unchanged == 2
    assert emb.calls - calls == 1
    assert rep.chunks_deleted == long_chunks - 1
    assert coll.count(CHUNKS) == before - long_chunks + 1
    [head] = coll.get([f"{file_key(corpus / 'long.md')}:0"])
    assert head.content == "Now it is short."
    assert head.metadata["file_chunks"] == 1


def test_changed_chunking_reindexes(corpus: Path) -> None:
    emb, coll = _setup()
    Indexer(emb, coll, chunk_size=60, overlap=10).index_path(corpus)
    rep = Indexer(emb, coll, chunk_size=80, overlap=10).index_path(corpus)
    assert rep.files_indexed == 3


def test_interrupted_file_is_redone(corpus: Path) -> None:
    """Chunk 0 is the commit marker: without it, the file is indexed again."""
    emb, coll = _setup()
    idx = Indexer(emb, coll, chunk_size=60, overlap=10)
    idx.index_path(corpus)
    coll.delete([f"{file_key(corpus / 'long.md')}:0"])  # as if the run died before the marker was written
    rep = idx.index_path(corpus)
    assert rep.files_indexed == 1
    assert rep.files_unchanged == 2


def test_emptied_file_removes_its_chunks(corpus: Path) -> None:
    emb, coll = _setup()
    idx = Indexer(emb, coll, chunk_size=60, overlap=10)
    idx.index_path(corpus)
    (corpus / "bread.md").write_text("   \n")
    rep = idx.index_path(corpus)
    assert rep.files_empty == 1
    assert rep.chunks_deleted == 1
    assert coll.get([f"{file_key(corpus / 'bread.md')}:0"]) == []


def test_progress_callback(corpus: Path) -> None:
    emb, coll = _setup()
    seen: list[tuple[str, int, int]] = []
    Indexer(emb, coll, chunk_size=60, overlap=10, batch_size=4).index_path(
        corpus, progress=lambda s, d, t: seen.append((s, d, t)))
    scans = [x for x in seen if x[0] == "scan"]
    embeds = [x for x in seen if x[0] == "embed"]
    assert scans[-1] == ("scan", 3, 3)
    assert embeds[-1][1] == embeds[-1][2] == coll.count(CHUNKS)
    assert [d for _, d, _ in embeds] == sorted(d for _, d, _ in embeds)


def test_chunks_from_before_index_records_are_replaced(corpus: Path) -> None:
    """A collection indexed before index records keyed chunks by the path relative to the folder."""
    from aixpy.vectorstores.types import Document

    emb, coll = _setup()
    old = [Document(id=f"{file_key(rel)}:{i}", content=f"old {rel}", embedding=emb.embed("old"),
                    metadata={"source": rel, "chunk": i}) for rel in ("bread.md", "long.md") for i in range(3)]
    coll.upsert_batch(old)
    rep = Indexer(emb, coll, chunk_size=60, overlap=10).index_path(corpus)
    assert rep.chunks_deleted == 6
    assert coll.get([d.id for d in old]) == []
    assert coll.count(CHUNKS) == rep.chunks_embedded
