"""Memory-backend specifics: snapshots, growth, swap-deletes, batched queries, exact selection."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from aixpy import vectorstores
from aixpy.errors import InvalidInputError, StoreError
from aixpy.vectorstores import CollectionOptions, Document, Query, Scope, filters
from aixpy.vectorstores import _memory_snapshot as snap
from aixpy.vectorstores._memory_search import select_candidates
from aixpy.vectorstores.memory import MemoryCollection, MemoryStore
from aixpy.vectorstores.types import utcnow

from ._support import brute_force, doc, doc_fields, ids, low_rank, summary


def fill(store: MemoryStore) -> None:
    a = store.collection("alpha", CollectionOptions(dimensions=3, metric="cosine", ttl=timedelta(days=1)))
    a.upsert_batch([
        doc("a1", [1.0, 2.0, 3.0], "first ✓", metadata={"n": {"x": [1, 2.5]}, "s": "é"}, tags=["t1"],
            scope=Scope(tenant="acme", user="u"), embedding_model="m"),
        doc("a2", [-1.0, 0.5, 0.0], "second"),
    ])
    b = store.collection("beta", CollectionOptions(metric="dot", dedup=True, max_documents=10))
    b.upsert_batch([doc(f"b{i}", [np.cos(i), np.sin(i)], f"text {i}") for i in range(5)])
    store.collection("empty", CollectionOptions(dimensions=7, metric="euclidean"))


def same_content(x: MemoryStore, y: MemoryStore) -> None:
    assert x.list_collections() == y.list_collections()
    for name in x.list_collections():
        cx, cy = x.collection(name), y.collection(name)
        assert cx.options == cy.options
        assert cx.dimensions == cy.dimensions
        assert cx.count() == cy.count()
        all_ids = sorted(cx._rows)
        dx, dy = cx.get(all_ids), cy.get(all_ids)
        assert [doc_fields(d) for d in dx] == [doc_fields(d) for d in dy]
        assert [(d.created_at, d.updated_at) for d in dx] == [(d.created_at, d.updated_at) for d in dy]
        if cx.dimensions:
            q = Query([0.5] * cx.dimensions, limit=10)
            assert summary(cx.query(q)) == summary(cy.query(q))


# ------------------------------------------------------------------ snapshots


def test_snapshot_round_trip(tmp_path: Path) -> None:
    store = MemoryStore()
    fill(store)
    path = store.save(tmp_path / "snap.aixpy")
    assert path == tmp_path / "snap.aixpy"
    loaded = MemoryStore.load(path)
    same_content(store, loaded)
    # dedup state survives: exact content of b3 is still a duplicate
    r = loaded.collection("beta").upsert(doc("new", [0.0, -1.0], "text 3"))
    assert (r.inserted, r.deduplicated) == (0, 1)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert "manifest.json" in names
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    assert (manifest["format"], manifest["version"]) == ("aixpy-memory-snapshot", 1)
    assert [c["name"] for c in manifest["collections"]] == ["alpha", "beta", "empty"]


def test_snapshot_drops_expired_documents(tmp_path: Path) -> None:
    store = MemoryStore()
    c = store.collection("c", CollectionOptions(dimensions=2))
    c.upsert_batch([doc("old", [1.0, 0.0], expires_at=utcnow() - timedelta(seconds=1)), doc("ok", [0.0, 1.0])])
    loaded = MemoryStore.load(store.save(tmp_path / "s"))
    assert loaded.collection("c").count() == 1
    assert ids(loaded.collection("c").get(["old", "ok"])) == ["ok"]


def _snapshot_bytes(store: MemoryStore, tmp_path: Path) -> bytes:
    return store.save(tmp_path / "good").read_bytes()


def test_failed_write_keeps_previous_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    fill(store)
    path = tmp_path / "s.aixpy"
    store.save(path)
    before = path.read_bytes()
    store.collection("alpha").upsert(doc("a3", [3.0, 2.0, 1.0]))

    def crash(f: IO[bytes], data: list[snap.CollectionData]) -> None:
        f.write(b"PK\x03\x04 partial garbage")
        raise RuntimeError("simulated crash mid-write")

    monkeypatch.setattr(snap, "write_members", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.aixpy"]  # the temporary file is gone
    monkeypatch.undo()

    def no_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(StoreError, match="No space left"):
        store.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["s.aixpy"]
    assert MemoryStore.load(path).collection("alpha").count() == 2
    store.save(path)
    assert MemoryStore.load(path).collection("alpha").count() == 3


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


UNPICKLED: list[str] = []


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (UNPICKLED.append, ("pwned",))


def _npy(arr: np.ndarray[Any, Any], allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_corrupt_snapshots_raise_store_error(tmp_path: Path) -> None:
    store = MemoryStore()
    fill(store)
    good = _snapshot_bytes(store, tmp_path)
    manifest = {"format": "aixpy-memory-snapshot", "version": 1, "collections": [
        {"name": "c", "options": {"metric": "dot"}, "dimensions": 2, "count": 1, "prefix": "c0/"}]}
    one_doc = json.dumps([{"id": "x"}]).encode()
    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0xFF
    cases = {
        "empty": b"",
        "garbage": b"not a zip file at all" * 10,
        "truncated": good[: len(good) // 2],
        "truncated tail": good[:-10],
        "bit flip": bytes(flipped),
        "no manifest": _zip({"x.json": b"{}"}),
        "bad json": _zip({"manifest.json": b"{not json"}),
        "wrong format": _zip({"manifest.json": json.dumps({"format": "other", "version": 1}).encode()}),
        "missing member": _zip({"manifest.json": json.dumps(manifest).encode()}),
        "pickled vectors": _zip({
            "manifest.json": json.dumps(manifest).encode(),
            "c0/vectors.npy": _npy(np.array([[Evil(), Evil()]], dtype=object), allow_pickle=True),
            "c0/norms.npy": _npy(np.ones(1, dtype=np.float32)),
            "c0/documents.json": one_doc,
        }),
        "wrong shape": _zip({
            "manifest.json": json.dumps(manifest).encode(),
            "c0/vectors.npy": _npy(np.ones((1, 3), dtype=np.float32)),
            "c0/norms.npy": _npy(np.ones(1, dtype=np.float32)),
            "c0/documents.json": one_doc,
        }),
        "nan vectors": _zip({
            "manifest.json": json.dumps(manifest).encode(),
            "c0/vectors.npy": _npy(np.array([[np.nan, 1.0]], dtype=np.float32)),
            "c0/norms.npy": _npy(np.ones(1, dtype=np.float32)),
            "c0/documents.json": one_doc,
        }),
        "bad document": _zip({
            "manifest.json": json.dumps(manifest).encode(),
            "c0/vectors.npy": _npy(np.ones((1, 2), dtype=np.float32)),
            "c0/norms.npy": _npy(np.ones(1, dtype=np.float32)),
            "c0/documents.json": json.dumps([{"id": " bad", "created_at": "2020-01-01T00:00:00"}]).encode(),
        }),
    }
    for name, data in cases.items():
        p = tmp_path / f"{name}.snap"
        p.write_bytes(data)
        with pytest.raises(StoreError, match="corrupt or truncated") as info:
            MemoryStore.load(p)
        assert str(p) in str(info.value), name
    assert UNPICKLED == []
    future = dict(manifest, version=2)
    (tmp_path / "v2").write_bytes(_zip({"manifest.json": json.dumps(future).encode()}))
    with pytest.raises(StoreError, match="version 2"):
        MemoryStore.load(tmp_path / "v2")
    with pytest.raises(StoreError, match="does not exist"):
        MemoryStore.load(tmp_path / "missing")
    # the intact original still loads
    (tmp_path / "ok").write_bytes(good)
    same_content(store, MemoryStore.load(tmp_path / "ok"))


def test_configured_path_loads_on_open_and_saves_only_on_request(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "store.snap"
    cfg = {"provider": "memory", "memory": {"path": str(path)}}
    first = vectorstores.new(cfg)
    assert isinstance(first, MemoryStore)
    assert first.list_collections() == []
    first.collection("docs").upsert(doc("a", [1.0, 0.0], "hello"))
    assert not path.exists()  # nothing is written implicitly
    assert vectorstores.new(cfg).list_collections() == []  # unsaved data is lost
    assert first.save() == path
    first.close()
    second = vectorstores.new(cfg)
    assert isinstance(second, MemoryStore)
    assert [d.content for d in second.collection("docs").get(["a"])] == ["hello"]
    with pytest.raises(InvalidInputError, match="path"):
        MemoryStore().save()
    path.write_bytes(b"corrupt")
    with pytest.raises(StoreError):
        vectorstores.new(cfg)


def test_config_sets_default_collection_options() -> None:
    store = vectorstores.new({"provider": "memory", "embedding_dimensions": 3, "metric": "dot",
                              "memory": {"max_documents": 2}})
    c = store.collection("x")
    assert c.options == CollectionOptions(dimensions=3, metric="dot", max_documents=2)
    assert store.collection("x") is c
    assert store.collection("x", CollectionOptions(dimensions=3, metric="dot", max_documents=2)) is c
    with pytest.raises(InvalidInputError, match="different options"):
        store.collection("x", CollectionOptions(dimensions=3, metric="cosine"))
    with pytest.raises(InvalidInputError):
        store.collection("bad name!")


# ------------------------------------------------------------------ storage internals


def check_consistent(c: MemoryCollection) -> None:
    assert len(c._ids) == len(c._docs) == len(c._rows) == c._n
    for row, i in enumerate(c._ids):
        assert c._rows[i] == row
        assert c._docs[row].id == i


def test_capacity_grows_by_doubling() -> None:
    c = MemoryCollection("grow", CollectionOptions(metric="euclidean"))
    caps = []
    for i in range(100):
        c.upsert(doc(f"d{i:03d}", [float(i), 1.0]))
        caps.append(c._vecs.shape[0])
    assert sorted(set(caps)) == [16, 32, 64, 128]
    assert c._vecs.flags.c_contiguous
    c.upsert_batch([doc(f"e{i:03d}", [float(i), 2.0]) for i in range(300)])
    assert c._vecs.shape[0] == 512
    assert c.count() == 400
    check_consistent(c)
    for i in (0, 57, 99):
        assert ids(c.query(Query([float(i), 1.0], limit=1))) == [f"d{i:03d}"]
    assert ids(c.query(Query([299.0, 2.0], limit=1))) == ["e299"]


def test_delete_swaps_last_row_in() -> None:
    data = low_rank(60, 6, 3, seed=3)
    c = MemoryCollection("swap", CollectionOptions(metric="cosine"))
    c.upsert_batch([doc(f"d{i:02d}", row, metadata={"i": i}) for i, row in enumerate(data.tolist())])
    rng = np.random.default_rng(5)
    gone = [f"d{i:02d}" for i in rng.permutation(60)[:35]]
    for chunk in (gone[:1], gone[1:10], gone[10:]):
        assert c.delete(chunk).deleted == len(chunk)
        check_consistent(c)
    alive = sorted(set(c._rows))
    assert len(alive) == 25
    assert not set(alive) & set(gone)
    for d in c.get(alive):
        i = int(d.id[1:])
        assert d.metadata == {"i": i}
        assert d.embedding is not None
        np.testing.assert_allclose(d.embedding, data[i], rtol=1e-5, atol=1e-6)
        [top] = c.query(Query(data[i].tolist(), limit=1)).matches
        assert top.document.id == d.id
        assert top.score == pytest.approx(1.0, abs=1e-6)
    assert c.count(filters.field("i").lt(30)) == sum(int(a[1:]) < 30 for a in alive)


def test_expired_rows_are_purged() -> None:
    c = MemoryCollection("ttl", CollectionOptions(dimensions=2))
    past = utcnow() - timedelta(seconds=1)
    c.upsert_batch([doc("a", [1.0, 0.0], expires_at=past), doc("b", [0.0, 1.0]), doc("c", [1.0, 1.0], expires_at=past)])
    assert c.count() == 1
    assert c._n == 1
    assert c._ids == ["b"]
    check_consistent(c)


def test_dedup_in_dot_collection_and_zero_vectors() -> None:
    c = MemoryCollection("dd", CollectionOptions(dimensions=2, metric="dot", dedup=True, dedup_threshold=0.9))
    r = c.upsert_batch([doc("z", [0.0, 0.0]), doc("z2", [0.0, 0.0]), doc("a", [10.0, 0.0]), doc("b", [0.1, 0.0])])
    assert (r.inserted, r.deduplicated_ids) == (3, ["b"])  # zero vectors have no direction: never near-dups


# ------------------------------------------------------------------ search paths


def test_select_returns_exact_top_k_with_ties() -> None:
    rng = np.random.default_rng(11)
    for n, k in ((10, 3), (5000, 10), (50_000, 7), (20_000, 100), (9000, 9000), (9000, 1)):
        s = rng.integers(0, 50, n).astype(np.float32)  # many exact ties
        got = select_candidates(s, k, 0.0)
        t = np.sort(s)[::-1][min(k, n) - 1]
        assert set(got.tolist()) == set(np.flatnonzero(s >= t).tolist()), (n, k)
        s2 = rng.standard_normal(n).astype(np.float32)
        got2 = select_candidates(s2, k, 1e-3)
        t2 = np.sort(s2)[::-1][min(k, n) - 1]
        assert set(got2.tolist()) == set(np.flatnonzero(s2 >= t2 - 1e-3).tolist()), (n, k)


@pytest.fixture(scope="module")
def big() -> tuple[MemoryCollection, np.ndarray[Any, Any]]:
    data = low_rank(12_000, 24, 6, seed=99)
    data[100:140] = data[7]  # identical vectors: ties decided by id across many column groups
    c = MemoryCollection("big", CollectionOptions(metric="cosine"))
    c.upsert_batch([doc(f"d{i:05d}", row, metadata={"m": i % 4}) for i, row in enumerate(data)])
    return c, data


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_large_collection_exact_for_every_metric(big: tuple[MemoryCollection, Any], metric: str) -> None:
    c, data = big
    queries = low_rank(8, 24, 6, seed=5)
    queries[0] = data[7]
    for q in queries:
        rows, scores = brute_force(data, q, 50, metric)
        res = c.query(Query(q.tolist(), limit=50, metric=metric))  # type: ignore[arg-type]
        assert ids(res) == [f"d{i:05d}" for i in rows]
        assert [m.score for m in res.matches] == pytest.approx(scores, rel=1e-6, abs=1e-6)


def test_query_batch_equals_query(big: tuple[MemoryCollection, Any]) -> None:
    c, data = big
    qs = low_rank(40, 24, 6, seed=8)
    queries = [Query(q.tolist(), limit=10) for q in qs]
    queries += [
        Query(data[7].tolist(), limit=15, offset=3),
        Query(qs[0].tolist(), limit=5, metric="dot", include_embeddings=True),
        Query(qs[1].tolist(), limit=5, metric="euclidean", min_score=0.2),
        Query(qs[2].tolist(), limit=7, filter=filters.field("m").eq(2)),
        Query(qs[3].tolist(), limit=10_000, offset=11_990),
    ]
    batch = c.query_batch(queries)
    assert len(batch) == len(queries)
    for q, got in zip(queries, batch, strict=True):
        one = c.query(q)
        assert summary(got) == summary(one)
        assert [m.document.embedding for m in got] == [m.document.embedding for m in one]
    assert len(batch[-1].matches) == 10
    assert c.query_batch([]) == []
    with pytest.raises(InvalidInputError):
        c.query_batch(queries[0])  # type: ignore[arg-type]


async def test_aquery_batch(big: tuple[MemoryCollection, Any]) -> None:
    c, data = big
    q = Query(data[3].tolist(), limit=3)
    assert [summary(r) for r in await c.aquery_batch([q])] == [summary(c.query(q))]


def test_metric_override_uses_original_vectors() -> None:
    c = MemoryCollection("ov", CollectionOptions(metric="cosine"))
    c.upsert_batch([doc("a", [3.0, 4.0]), doc("b", [1.0, 0.0]), doc("c", [0.0, 10.0])])
    dot = c.query(Query([1.0, 1.0], metric="dot", limit=3))
    assert [(m.document.id, round(m.score, 5)) for m in dot] == [("c", 10.0), ("a", 7.0), ("b", 1.0)]
    euc = c.query(Query([1.0, 0.0], metric="euclidean", limit=3))
    assert [(m.document.id, round(m.distance, 5)) for m in euc] == [("b", 0.0), ("a", round(20**0.5, 5)),
                                                                    ("c", round(101**0.5, 5))]


def test_document_passed_in_is_not_modified() -> None:
    c = MemoryCollection("nm", CollectionOptions(ttl=timedelta(hours=1)))
    d = Document(id="a", content="x", embedding=(1.0, 2.0), metadata={"k": (1, 2)})
    c.upsert(d)
    assert d.created_at is None
    assert d.expires_at is None
    assert d.metadata == {"k": (1, 2)}
    assert c.get(["a"])[0].metadata == {"k": [1, 2]}  # tuples are stored as lists (JSON-like)
    assert c.count(filters.field("k").contains(2)) == 1
