"""Conformance: scores, ordering, paging and top-k quality of ``query``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aixpy.vectorstores import BaseCollection, Query, Scope, filters

from ._support import MIN_RECALL_AT_10, brute_force, doc, ids, is_exact, low_rank
from .conftest import MakeCollection

TOL = 1e-4


def scored(c: BaseCollection, q: list[float], **kw: object) -> list[tuple[str, float, float, int]]:
    res = c.query(Query(q, **kw))  # type: ignore[arg-type]
    return [(m.document.id, m.score, m.distance, m.rank) for m in res.matches]


def assert_scored(got: list[tuple[str, float, float, int]], want: list[tuple[str, float, float, int]]) -> None:
    assert [g[0] for g in got] == [w[0] for w in want]
    assert [g[3] for g in got] == [w[3] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[1] == pytest.approx(w[1], abs=TOL), g
        assert g[2] == pytest.approx(w[2], abs=TOL), g


# ------------------------------------------------------------------ metric conventions


def test_cosine_scores(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=2, metric="cosine")
    c.upsert_batch([doc("a", [2.0, 0.0]), doc("b", [0.0, 3.0]), doc("c", [1.0, 1.0]), doc("d", [-5.0, 0.0]),
                    doc("e", [3.0, 4.0])])
    r = 1 / math.sqrt(2)
    assert_scored(scored(c, [10.0, 0.0], limit=10), [
        ("a", 1.0, 0.0, 1), ("c", r, 1 - r, 2), ("e", 0.6, 0.4, 3), ("b", 0.0, 1.0, 4), ("d", -1.0, 2.0, 5),
    ])


def test_dot_scores(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=2, metric="dot")
    c.upsert_batch([doc("a", [1.0, 2.0]), doc("b", [3.0, 0.0]), doc("c", [-1.0, -1.0]), doc("z", [0.0, 0.0])])
    assert_scored(scored(c, [2.0, 1.0], limit=10), [
        ("b", 6.0, -6.0, 1), ("a", 4.0, -4.0, 2), ("z", 0.0, 0.0, 3), ("c", -3.0, 3.0, 4),
    ])


def test_euclidean_scores(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=2, metric="euclidean")
    c.upsert_batch([doc("a", [0.0, 0.0]), doc("b", [3.0, 4.0]), doc("c", [1.0, 0.0]), doc("d", [-1.0, 1.0])])
    s2 = math.sqrt(2)
    assert_scored(scored(c, [0.0, 0.0], limit=10), [
        ("a", 1.0, 0.0, 1), ("c", 0.5, 1.0, 2), ("d", 1 / (1 + s2), s2, 3), ("b", 1 / 6, 5.0, 4),
    ])
    assert_scored(scored(c, [3.0, 4.0], limit=1), [("b", 1.0, 0.0, 1)])


def test_ties_are_broken_by_id(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=3)
    same = [0.3, 0.4, 0.5]
    c.upsert_batch([doc(i, same) for i in ["m", "b", "z", "a", "k"]] + [doc("best", [0.3, 0.4, 0.6])])
    q = [0.3, 0.4, 0.61]
    assert ids(c.query(Query(q, limit=10))) == ["best", "a", "b", "k", "m", "z"]
    assert ids(c.query(Query(q, limit=2, offset=1))) == ["a", "b"]
    assert ids(c.query(Query(q, limit=2, offset=3))) == ["k", "m"]


# ------------------------------------------------------------------ paging and min_score


@pytest.fixture
def thirty(make_collection: MakeCollection) -> BaseCollection:
    c = make_collection(dimensions=8)
    data = low_rank(30, 8, 3, seed=7)
    assert c.upsert_batch([doc(f"p{i:02d}", row) for i, row in enumerate(data.tolist())]).inserted == 30
    return c


QV = [0.5, -1.0, 0.25, 2.0, 0.0, 1.0, -0.5, 0.75]


def test_paging_is_consistent_with_one_large_query(thirty: BaseCollection) -> None:
    full = thirty.query(Query(QV, limit=30))
    assert [m.rank for m in full.matches] == list(range(1, 31))
    scores = [m.score for m in full.matches]
    assert scores == sorted(scores, reverse=True)
    pages: list[str] = []
    for offset in range(0, 30, 7):
        page = thirty.query(Query(QV, limit=7, offset=offset))
        assert (page.offset, page.limit) == (offset, 7)
        assert [m.rank for m in page.matches] == list(range(offset + 1, offset + 1 + len(page.matches)))
        pages += ids(page)
    assert pages == ids(full)
    assert thirty.query(Query(QV, limit=5, offset=30)).matches == []
    assert ids(thirty.query(Query(QV, limit=10, offset=25))) == ids(full)[25:]


def test_min_score(thirty: BaseCollection) -> None:
    full = thirty.query(Query(QV, limit=30)).matches
    cut = (full[9].score + full[10].score) / 2
    got = thirty.query(Query(QV, limit=30, min_score=cut)).matches
    assert ids(thirty.query(Query(QV, limit=30, min_score=cut))) == [m.document.id for m in full[:10]]
    assert all(m.score >= cut for m in got)
    paged = thirty.query(Query(QV, limit=5, offset=8, min_score=cut))
    assert [(m.document.id, m.rank) for m in paged.matches] == [(full[8].document.id, 9), (full[9].document.id, 10)]
    assert thirty.query(Query(QV, min_score=1.01)).matches == []
    assert len(thirty.query(Query(QV, limit=30, min_score=-1.0)).matches) == 30


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_min_score_under_each_metric(make_collection: MakeCollection, metric: str) -> None:
    c = make_collection(dimensions=8, metric=metric)
    data = low_rank(30, 8, 3, seed=11)
    c.upsert_batch([doc(f"p{i:02d}", row, tags=["even" if i % 2 == 0 else "odd"]) for i, row in enumerate(data)])
    rows, scores = brute_force(data, np.asarray(QV, dtype=np.float32), 30, metric)
    want = [f"p{i:02d}" for i in rows]
    if metric == "dot":
        assert scores[-1] < 0 < scores[0]  # negative dot scores are filtered like any other
    for cut_at in (1, 7, 29):
        cut = (scores[cut_at - 1] + scores[cut_at]) / 2
        got = c.query(Query(QV, limit=30, min_score=cut)).matches
        assert [m.document.id for m in got] == want[:cut_at]
        assert all(m.score >= cut for m in got)
        f = filters.tags_any("even")
        kept = [i for i in want[:cut_at] if int(i[1:]) % 2 == 0]
        assert ids(c.query(Query(QV, limit=30, min_score=cut, filter=f))) == kept
    exact_score = c.query(Query(QV, limit=1)).matches[0].score
    assert ids(c.query(Query(QV, limit=5, min_score=exact_score - 1e-4)))[:1] == want[:1]
    assert c.query(Query(QV, limit=5, min_score=scores[0] + 1e-3)).matches == []


def test_paging_beyond_the_end(thirty: BaseCollection) -> None:
    everything = ids(thirty.query(Query(QV, limit=30)))
    for offset, limit in ((29, 5), (30, 1), (31, 10), (500, 10), (0, 100), (25, 10_000)):
        page = thirty.query(Query(QV, limit=limit, offset=offset))
        assert ids(page) == everything[offset : offset + limit]
        assert (page.offset, page.limit) == (offset, limit)
    f = filters.field("nothing").exists() | filters.tags_any("none")
    assert thirty.query(Query(QV, limit=5, offset=3, filter=f)).matches == []


def test_explicit_collection_metric_equals_default(make_collection: MakeCollection) -> None:
    for metric in ("cosine", "dot", "euclidean"):
        c = make_collection(dimensions=8, metric=metric)
        c.upsert_batch([doc(f"p{i:02d}", row) for i, row in enumerate(low_rank(12, 8, 3, seed=5))])
        implicit = [(m.document.id, m.score, m.distance) for m in c.query(Query(QV, limit=12))]
        explicit = [(m.document.id, m.score, m.distance) for m in c.query(Query(QV, limit=12, metric=metric))]
        assert implicit == explicit


# ------------------------------------------------------------------ agreement with brute force

N, DIMS, RANK, SEED = 2000, 32, 8, 20240601


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_top_k_matches_brute_force(make_collection: MakeCollection, backend: str, metric: str) -> None:
    data = low_rank(N, DIMS, RANK, seed=SEED)
    queries = low_rank(25, DIMS, RANK, seed=SEED + 1)
    c = make_collection(dimensions=DIMS, metric=metric)
    r = c.upsert_batch([doc(f"d{i:05d}", row) for i, row in enumerate(data)])
    assert (r.inserted, r.failed) == (N, 0)
    exact = is_exact(backend)
    hits = 0
    for q in queries:
        want_rows, want_scores = brute_force(data, q, 10, metric)
        res = c.query(Query(q.tolist(), limit=10))
        got = ids(res)
        want = [f"d{i:05d}" for i in want_rows]
        hits += len(set(got) & set(want))
        if exact:
            assert got == want
            assert [m.score for m in res.matches] == pytest.approx(want_scores, rel=1e-5, abs=1e-5)
    recall = hits / (10 * len(queries))
    assert (recall == 1.0) if exact else (recall >= MIN_RECALL_AT_10)


def test_filtered_top_k_matches_brute_force(make_collection: MakeCollection, backend: str) -> None:
    data = low_rank(N, DIMS, RANK, seed=SEED)
    queries = low_rank(10, DIMS, RANK, seed=SEED + 2)
    c = make_collection(dimensions=DIMS)
    c.upsert_batch([doc(f"d{i:05d}", row, metadata={"bucket": i % 5}) for i, row in enumerate(data)])
    keep = np.flatnonzero(np.arange(N) % 5 == 3)
    hits = 0
    for q in queries:
        rows, _ = brute_force(data[keep], q, 10, "cosine")
        want = [f"d{keep[i]:05d}" for i in rows]
        got = ids(c.query(Query(q.tolist(), limit=10, filter=filters.field("bucket").eq(3))))
        hits += len(set(got) & set(want))
        if is_exact(backend):
            assert got == want
    assert hits / (10 * len(queries)) >= (1.0 if is_exact(backend) else MIN_RECALL_AT_10)


def test_low_rank_filters_scope_and_paging_match_brute_force(make_collection: MakeCollection, backend: str) -> None:
    """Selective filters (1%, 5%), a scope filter, combinations and page 2 against the exact answer.

    Selective filters are the classic trap of filtered ANN search: the index's nearest candidates
    rarely pass the filter, so a backend must not simply post-filter a fixed candidate list.
    """
    data = low_rank(N, DIMS, RANK, seed=SEED)
    queries = low_rank(10, DIMS, RANK, seed=SEED + 3)
    c = make_collection(dimensions=DIMS)
    tenants = ["t0", "t1", "t2"]
    docs = [doc(f"d{i:05d}", row, metadata={"b100": i % 100, "b20": i % 20},
                tags=["rare"] if i % 50 == 7 else [], scope=Scope(tenant=tenants[i % 3]))
            for i, row in enumerate(data)]
    assert c.upsert_batch(docs).inserted == N
    cases: list[tuple[str, filters.Filter | None, int, int]] = [
        ("1% field", filters.field("b100").eq(42), 0, 10),
        ("1% field paged", filters.field("b100").eq(42), 10, 10),
        ("2% tags", filters.tags_any("rare"), 0, 10),
        ("5% range", filters.field("b20").lt(1), 0, 10),
        ("scope", filters.tenant("t1"), 0, 10),
        ("scope and 5%", filters.tenant("t2") & filters.field("b20").eq(4), 0, 10),
        ("page 2", None, 10, 10),
        ("deep page", None, 40, 10),
    ]
    exact = is_exact(backend)
    for name, flt, offset, limit in cases:
        keep = np.arange(N) if flt is None else np.asarray([i for i, d in enumerate(docs) if filters.matches(flt, d)])
        if flt is not None:
            assert c.count(flt) == keep.size, name
        hits = total = 0
        for q in queries:
            rows, _ = brute_force(data[keep], q, offset + limit, "cosine")
            want = [f"d{keep[i]:05d}" for i in rows[offset:]]
            got = ids(c.query(Query(q.tolist(), limit=limit, offset=offset, filter=flt)))
            assert len(got) == len(want), name
            if flt is not None:
                assert set(got) <= {f"d{i:05d}" for i in keep}, name
            if exact:
                assert got == want, name
            hits += len(set(got) & set(want))
            total += len(want)
        assert hits / total >= (1.0 if exact else MIN_RECALL_AT_10), (name, hits / total)
