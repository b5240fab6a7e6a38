"""The memory backend's optional HNSW index (faiss): recall, filters, tombstones, snapshots, switching.

The conformance suite already runs through the index (backend ``memory_hnsw``); these tests cover
what only shows at scale or through the index's own life cycle.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import aixpy.vectorstores.memory as memory_module
from aixpy import vectorstores
from aixpy.errors import MissingDependencyError
from aixpy.vectorstores import CollectionOptions, Query, Scope, filters
from aixpy.vectorstores._memory_ann import MIN_FRACTION, AnnSettings
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.memory import MemoryCollection, MemoryStore

from ._support import MIN_RECALL_AT_10, brute_force, doc, ids, low_rank

N, DIMS, RANK, SEED = 20_000, 64, 16, 424242
QUERIES = 40


def hnsw_store(**memory: Any) -> MemoryStore:
    cfg = {"index": "hnsw", "hnsw_m": 16, "hnsw_ef_construction": 40, "hnsw_ef_search": 128, **memory}
    store = vectorstores.new({"provider": "memory", "memory": cfg})
    assert isinstance(store, MemoryStore)
    return store


def name(i: int) -> str:
    return f"d{i:05d}"


@pytest.fixture(scope="module")
def data() -> npt.NDArray[np.float32]:
    return low_rank(N, DIMS, RANK, seed=SEED)


@pytest.fixture(scope="module")
def queries() -> npt.NDArray[np.float32]:
    return low_rank(QUERIES, DIMS, RANK, seed=SEED + 1)


def metadata(i: int) -> dict[str, Any]:
    return {"b100": i % 100, "b20": i % 20, "b5": i % 5, "half": i % 2 == 0}


@pytest.fixture(scope="module", params=["cosine", "dot", "euclidean"])
def big(request: pytest.FixtureRequest, data: npt.NDArray[np.float32]) -> MemoryCollection:
    store = hnsw_store()
    c = store.collection(f"big-{request.param}", CollectionOptions(dimensions=DIMS, metric=request.param))
    r = c.upsert_batch([doc(name(i), row, metadata=metadata(i), scope=Scope(tenant=f"t{i % 4}"))
                        for i, row in enumerate(data)])
    assert r.inserted == N
    return c


def truth(data: npt.NDArray[np.float32], queries: npt.NDArray[np.float32], k: int, metric: str) -> npt.NDArray[Any]:
    """Exact top-``k`` row numbers of every query, in float64 (one matrix product: fast enough for 20k rows)."""
    x, q = data.astype(np.float64), queries.astype(np.float64)
    s = q @ x.T
    if metric == "cosine":
        s /= np.linalg.norm(x, axis=1)[None, :]
    elif metric == "euclidean":
        s = -(np.einsum("ij,ij->i", x, x)[None, :] - 2 * s)
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def recall(c: MemoryCollection, data: npt.NDArray[np.float32], queries: npt.NDArray[np.float32],
           flt: Filter | None = None, offset: int = 0, limit: int = 10) -> float:
    keep = np.arange(N) if flt is None else np.asarray(
        [i for i in range(N) if filters.matches(flt, doc(name(i), [0.0], metadata=metadata(i),
                                                           scope=Scope(tenant=f"t{i % 4}")))])
    hits = total = 0
    for q, rows in zip(queries, truth(data[keep], queries, offset + limit, c.options.metric), strict=True):
        want = [name(int(keep[r])) for r in rows[offset:]]
        res = c.query(Query(q.tolist(), limit=limit, offset=offset, filter=flt))
        got = ids(res)
        assert len(got) == len(want)
        assert [m.rank for m in res.matches] == list(range(offset + 1, offset + 1 + len(got)))
        s = [m.score for m in res.matches]
        assert s == sorted(s, reverse=True)
        hits += len(set(got) & set(want))
        total += len(want)
    return hits / total


# ------------------------------------------------------------------ recall at scale


def test_unfiltered_recall_and_paging(big: MemoryCollection, data: npt.NDArray[np.float32],
                                      queries: npt.NDArray[np.float32]) -> None:
    assert recall(big, data, queries) >= MIN_RECALL_AT_10
    assert big.index_stats()["index"] == "hnsw"
    assert big.index_stats()["slots"] == N
    assert recall(big, data, queries[:10], offset=20, limit=10) >= MIN_RECALL_AT_10
    assert recall(big, data, queries[:5], limit=100) >= MIN_RECALL_AT_10


@pytest.mark.parametrize(("label", "flt"), [
    ("1%", filters.field("b100").eq(7)),
    ("5%", filters.field("b20").eq(3)),
    ("20%", filters.field("b5").eq(1)),
    ("25% scope", filters.tenant("t2")),
    ("50%", filters.field("half").eq(True)),
    ("10% combined", filters.tenant("t1") & filters.field("b5").in_([0, 2])),
])
def test_filtered_recall(big: MemoryCollection, data: npt.NDArray[np.float32], queries: npt.NDArray[np.float32],
                         label: str, flt: Filter) -> None:
    assert recall(big, data, queries[:20], flt) >= MIN_RECALL_AT_10, label


def test_batch_equals_single_queries(big: MemoryCollection, queries: npt.NDArray[np.float32],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "ANN_BATCH_MIN_ROWS", 0)  # batches through the index at any size
    qs = [Query(q.tolist(), limit=10, offset=i % 3) for i, q in enumerate(queries[:12])]
    qs.append(Query(queries[0].tolist(), limit=5, filter=filters.field("b5").eq(2)))
    batch = big.query_batch(qs)
    for q, res in zip(qs, batch, strict=True):
        single = big.query(q)
        assert [(m.document.id, m.rank) for m in res.matches] == [(m.document.id, m.rank) for m in single.matches]
        assert [m.score for m in res.matches] == pytest.approx([m.score for m in single.matches], abs=1e-9)


def test_scores_are_exact_and_equal_the_exact_backend(big: MemoryCollection, data: npt.NDArray[np.float32],
                                                      queries: npt.NDArray[np.float32]) -> None:
    metric = big.options.metric
    for q in queries[:3]:
        res = big.query(Query(q.tolist(), limit=10))
        rows, scores = brute_force(data, q, N, metric)
        exact = dict(zip((name(r) for r in rows), scores, strict=True))
        for m in res.matches:
            assert m.score == pytest.approx(exact[m.document.id], rel=1e-6, abs=1e-6)
            assert m.distance == pytest.approx(1 - m.score if metric == "cosine" else
                                               -m.score if metric == "dot" else 1 / m.score - 1, rel=1e-6)


def test_other_metric_in_a_query_is_answered_exactly(big: MemoryCollection, data: npt.NDArray[np.float32],
                                                     queries: npt.NDArray[np.float32]) -> None:
    other = "euclidean" if big.options.metric != "euclidean" else "cosine"
    for q in queries[:3]:
        rows, _ = brute_force(data, q, 10, other)
        assert ids(big.query(Query(q.tolist(), limit=10, metric=other))) == [name(r) for r in rows]  # type: ignore[arg-type]


# ------------------------------------------------------------------ planning


def test_plan_falls_back_to_exact_for_selective_filters_and_deep_pages() -> None:
    s = AnnSettings(index="hnsw", ef_search=64)
    assert s.plan("cosine", 10, 100_000, None) == 64
    assert s.plan("cosine", 100, 100_000, None) == 200
    assert s.plan("dot", 10, 100_000, None) == 128
    assert s.plan("cosine", 10, 100_000, 50_000) == 128  # ef grows as the filter keeps fewer rows
    assert s.plan("cosine", 10, 100_000, int(MIN_FRACTION["cosine"] * 100_000) - 1) is None
    assert s.plan("dot", 10, 100_000, 20_000) is None
    assert s.plan("cosine", 5_000, 100_000, None) is None  # offset+limit beyond the ef cap


# ------------------------------------------------------------------ life cycle of the index


def exact_twin(c: MemoryCollection) -> MemoryCollection:
    """An exact collection holding the same documents."""
    twin = MemoryStore().collection("twin", c.options)
    every = c.get([f"x{i:04d}" for i in range(10_000)])
    twin.upsert_batch(every)
    return twin


def test_updates_and_deletes_tombstone_then_rebuild() -> None:
    pool = low_rank(4340, 16, 6, seed=3)  # one distribution: documents, moved documents, queries
    data, moved, qs = pool[:4000], pool[4000:4300], pool[4300:]
    c = hnsw_store().collection("life", CollectionOptions(dimensions=16))
    c.upsert_batch([doc(f"x{i:04d}", row, metadata={"i": i}) for i, row in enumerate(data)])
    q = data[0].tolist()
    assert ids(c.query(Query(q, limit=1))) == ["x0000"]
    assert c.index_stats() == {"index": "hnsw", "slots": 4000, "tombstones": 0}
    # updates: old slots become tombstones, the new vectors are found, the old ones are not
    c.upsert_batch([doc(f"x{i:04d}", moved[i], metadata={"i": i, "moved": True}) for i in range(300)])
    assert ids(c.query(Query(moved[5].tolist(), limit=1))) == ["x0005"]
    assert "x0000" not in ids(c.query(Query(q, limit=3)))
    assert c.index_stats() == {"index": "hnsw", "slots": 4300, "tombstones": 300}
    twin = exact_twin(c)
    hits = 0
    for qq in qs[:20]:
        got, want = ids(c.query(Query(qq.tolist(), limit=10))), ids(twin.query(Query(qq.tolist(), limit=10)))
        hits += len(set(got) & set(want))
    assert hits / 200 >= MIN_RECALL_AT_10
    # deletes past the rebuild fraction: the graph is rebuilt from the live rows only
    c.delete([f"x{i:04d}" for i in range(300, 1700)])
    assert c.query(Query(q, limit=5)).matches
    stats = c.index_stats()
    assert stats == {"index": "hnsw", "slots": 2600, "tombstones": 0}
    assert c.count() == 2600
    twin = exact_twin(c)
    hits = 0
    for qq in qs[20:]:
        got = ids(c.query(Query(qq.tolist(), limit=10, filter=filters.field("i").gte(1000))))
        want = ids(twin.query(Query(qq.tolist(), limit=10, filter=filters.field("i").gte(1000))))
        assert all(int(g[1:]) >= 1700 for g in got)
        hits += len(set(got) & set(want))
    assert hits / 200 >= MIN_RECALL_AT_10
    c.clear()
    assert c.index_stats()["index"] == "exact"
    assert c.query(Query(q)).matches == []


def test_snapshot_reload_rebuilds_the_index(tmp_path: Path) -> None:
    data = low_rank(3000, 16, 6, seed=8)
    path = tmp_path / "snap.zip"
    store = hnsw_store(path=str(path))
    c = store.collection("kb", CollectionOptions(dimensions=16, metric="euclidean"))
    c.upsert_batch([doc(f"x{i:04d}", row, tags=["even"] if i % 2 == 0 else []) for i, row in enumerate(data)])
    qs = low_rank(10, 16, 6, seed=9)
    before = [ids(c.query(Query(q.tolist(), limit=10))) for q in qs]
    store.save()
    assert not any("faiss" in n or "hnsw" in n or "index" in n for n in zipfile.ZipFile(path).namelist())
    loaded = hnsw_store(path=str(path))
    again = loaded.collection("kb")
    assert isinstance(again, MemoryCollection)
    assert again.index_stats()["index"] == "exact"  # not built until the first query
    after = [ids(again.query(Query(q.tolist(), limit=10))) for q in qs]
    assert again.index_stats() == {"index": "hnsw", "slots": 3000, "tombstones": 0}
    hits_before = hits_after = 0
    for q, b, a in zip(qs, before, after, strict=True):
        want = {f"x{r:04d}" for r in brute_force(data, q, 10, "euclidean")[0]}
        hits_before += len(set(b) & want)
        hits_after += len(set(a) & want)
    assert min(hits_before, hits_after) / 100 >= MIN_RECALL_AT_10
    assert again.count(filters.tags_any("even")) == 1500


def test_auto_switches_at_the_threshold() -> None:
    store = hnsw_store(index="auto", hnsw_threshold=500)
    c = store.collection("auto", CollectionOptions(dimensions=8))
    data = low_rank(700, 8, 4, seed=10)
    c.upsert_batch([doc(f"x{i:04d}", row) for i, row in enumerate(data[:500])])
    q = data[3].tolist()
    assert ids(c.query(Query(q, limit=1))) == ["x0003"]
    assert c.index_stats()["index"] == "exact"  # at the threshold: still exact
    c.upsert_batch([doc(f"x{i:04d}", row) for i, row in enumerate(data[500:], start=500)])
    assert c.index_stats()["index"] == "exact"  # built lazily, at the next query
    assert ids(c.query(Query(q, limit=1))) == ["x0003"]
    assert c.index_stats() == {"index": "hnsw", "slots": 700, "tombstones": 0}
    c.delete([f"x{i:04d}" for i in range(400, 700)])  # 400 left: above half the threshold, keep it
    assert ids(c.query(Query(q, limit=1))) == ["x0003"]
    assert c.index_stats()["index"] == "hnsw"
    c.delete([f"x{i:04d}" for i in range(200, 400)])  # 200 left: below half, back to exact
    assert ids(c.query(Query(q, limit=1))) == ["x0003"]
    assert c.index_stats()["index"] == "exact"
    rows, _ = brute_force(data[:200], np.asarray(q, dtype=np.float32), 10, "cosine")
    assert ids(c.query(Query(q, limit=10))) == [f"x{r:04d}" for r in rows]


def test_exact_is_the_default() -> None:
    store = vectorstores.new({"provider": "memory"})
    assert isinstance(store, MemoryStore)
    c = store.collection("plain", CollectionOptions(dimensions=4))
    c.upsert_batch([doc(f"x{i}", [1.0, float(i), 0.0, 1.0]) for i in range(50)])
    c.query(Query([1.0, 2.0, 0.0, 1.0]))
    assert c.index_stats()["index"] == "exact"


def test_missing_faiss_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an environment without faiss-cpu looks like
    for index in ("hnsw", "auto"):
        with pytest.raises(MissingDependencyError, match=r"pip install 'aixpy\[ann\]'") as info:
            vectorstores.new({"provider": "memory", "memory": {"index": index}})
        assert "faiss" in str(info.value)
    store = vectorstores.new({"provider": "memory", "memory": {"index": "exact"}})
    c = store.collection("ok", CollectionOptions(dimensions=2))
    c.upsert(doc("a", [1.0, 0.0]))
    assert ids(c.query(Query([1.0, 0.0]))) == ["a"]


def test_small_batches_are_answered_exactly(big: MemoryCollection, data: npt.NDArray[np.float32],
                                            queries: npt.NDArray[np.float32], monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ANN_BATCH_MIN_ROWS a batch is one matrix product: exact top-k, whatever the index."""
    assert big.count() < memory_module.ANN_BATCH_MIN_ROWS

    def no_index(*args: object) -> None:
        raise AssertionError("a small batch went through the HNSW index")

    monkeypatch.setattr(MemoryCollection, "_batch_ann", no_index)
    metric = big.options.metric
    res = big.query_batch([Query(q.tolist(), limit=10) for q in queries[:8]])
    for q, r in zip(queries[:8], res, strict=True):
        rows, _ = brute_force(data, q, 10, metric)
        assert [m.document.id for m in r.matches] == [name(x) for x in rows]
