"""Conformance: scores, ordering, paging and top-k quality of ``query``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aixpy.vectorstores import BaseCollection, Query, filters

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
