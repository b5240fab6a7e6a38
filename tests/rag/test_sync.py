"""Document identity, sync (prune, force, delete_source), extra metadata and the model signature,
through the public API on every store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.errors import EmbeddingMismatchError, InvalidInputError
from aixpy.rag import Indexer, delete_source, read_signature, search
from aixpy.rag.indexer import file_key
from aixpy.rag.manifest import CHUNKS
from aixpy.vectorstores import BaseCollection, VectorStore
from tests.vectorstores.conftest import open_store


@pytest.fixture(params=["memory", "qdrant", "pgvector", "firestore"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = open_store(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture
def coll(store: VectorStore) -> BaseCollection:
    return store.collection("kb")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _sources(coll: BaseCollection, emb: HashEmbeddings, query: str) -> list[str]:
    return [h.path for h in search(emb, coll, query, limit=10)]


def test_same_relative_path_in_two_folders_keeps_both(coll: BaseCollection, tmp_path: Path) -> None:
    """Regression: ``index projA; index projB`` made projB/README.md replace projA/README.md."""
    emb = HashEmbeddings(dimensions=64)
    a = _tree(tmp_path / "projA", {"README.md": "apples oranges orchard"})
    b = _tree(tmp_path / "projB", {"README.md": "rockets engines launch"})
    Indexer(emb, coll).index_path(a)
    rep = Indexer(emb, coll).index_path(b)
    assert (rep.files_indexed, rep.chunks_deleted) == (1, 0)
    assert coll.count(CHUNKS) == 2
    assert _sources(coll, emb, "apples orchard")[0] == str(a.resolve() / "README.md")
    assert _sources(coll, emb, "rockets launch")[0] == str(b.resolve() / "README.md")
    [hit] = search(emb, coll, "apples", limit=1, filter=None)
    assert hit.source == "README.md"
    assert read_signature(coll) is not None
    assert sorted(read_signature(coll)[1]) == sorted([str(a.resolve()), str(b.resolve())])  # type: ignore[index]


def test_prune_no_prune_force_and_delete_source(coll: BaseCollection, tmp_path: Path) -> None:
    emb = HashEmbeddings(dimensions=64)
    root = _tree(tmp_path / "docs", {"keep.md": "bread dough oven", "gone.md": "comets ice tails",
                                    "sub/x.txt": "moons orbit planets"})
    other = _tree(tmp_path / "other", {"gone.md": "unrelated file with the same name"})
    Indexer(emb, coll).index_path(root)
    Indexer(emb, coll).index_path(other)
    assert coll.count(CHUNKS) == 4

    (root / "gone.md").unlink()
    kept = Indexer(emb, coll, prune=False).index_path(root)
    assert (kept.files_pruned, kept.chunks_deleted, coll.count(CHUNKS)) == (0, 0, 4)
    pruned = Indexer(emb, coll).index_path(root)
    assert (pruned.files_pruned, pruned.chunks_deleted, pruned.files_unchanged) == (1, 1, 2)
    assert coll.count(CHUNKS) == 3
    assert coll.get([f"{file_key(root.resolve() / 'gone.md')}:0"]) == []
    assert coll.get([f"{file_key(other.resolve() / 'gone.md')}:0"]) != []  # other root untouched

    calls = emb.calls
    forced = Indexer(emb, coll, force=True).index_path(root)
    assert (forced.files_indexed, forced.files_unchanged) == (2, 0)
    assert emb.calls - calls == 2

    assert delete_source(coll, root / "sub" / "x.txt") == (1, 1)
    assert coll.count(CHUNKS) == 2
    assert delete_source(coll, other) == (1, 1)
    assert coll.count(CHUNKS) == 1
    assert str(other.resolve()) not in read_signature(coll)[1]  # type: ignore[index]
    again = Indexer(emb, coll).index_path(root)  # sub/x.txt is still on disk: indexed again
    assert (again.files_indexed, coll.count(CHUNKS)) == (1, 2)


def test_meta_tags_and_front_matter_on_chunks(coll: BaseCollection, tmp_path: Path) -> None:
    emb = HashEmbeddings(dimensions=64)
    root = _tree(tmp_path / "d", {"a.md": "---\nauthor: Ada\n---\n# Title\n\nengines and numbers\n"})
    Indexer(emb, coll, metadata={"team": "core"}, tags=["v1"]).index_path(root)
    [doc] = coll.get([f"{file_key(root.resolve() / 'a.md')}:0"])
    assert doc.metadata["author"] == "Ada"
    assert doc.metadata["team"] == "core"
    assert doc.metadata["section"] == "Title"
    assert "author" not in doc.content
    assert doc.tags == ["v1"]
    assert [h.source for h in search(emb, coll, "engines", filter=None)] == ["a.md"]
    rep = Indexer(emb, coll, metadata={"team": "infra"}, tags=["v1"]).index_path(root)
    assert rep.files_indexed == 1, "changed --meta must rewrite the chunks"


def test_signature_mismatch_is_a_clear_error(coll: BaseCollection, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"a.md": "hello world"})
    Indexer(HashEmbeddings(dimensions=64), coll).index_path(root)
    sig, _ = read_signature(coll)  # type: ignore[misc]
    assert (sig.provider, sig.model, sig.dimensions) == ("hash", "hash-bow", 64)

    other_model = HashEmbeddings(dimensions=64, model="other-bow")
    with pytest.raises(EmbeddingMismatchError, match=r"hash:hash-bow \(64 dimensions\).*hash:other-bow") as e:
        search(other_model, coll, "hello")
    assert "dimensions differ" not in str(e.value)
    with pytest.raises(EmbeddingMismatchError, match="other-bow"):
        Indexer(other_model, coll).index_path(root)
    with pytest.raises(EmbeddingMismatchError, match="dimensions differ: 64 vs 32"):
        search(HashEmbeddings(dimensions=32), coll, "hello")
    assert coll.count(CHUNKS) == 1


def test_overlap_not_below_chunk_size_is_refused() -> None:
    from aixpy.vectorstores import new

    coll = new({"provider": "memory"}).collection("kb")
    with pytest.raises(InvalidInputError, match="overlap"):
        Indexer(HashEmbeddings(dimensions=8), coll, chunk_size=50, overlap=50)
