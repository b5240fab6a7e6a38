"""Conformance: keyword (BM25) and hybrid (RRF) queries, the same tests on every backend.

Backends with a keyword index (memory, qdrant embedded and qdrant-client, pgvector) must give the
same rankings; firestore must refuse with an error naming it (never fall back to vector search).
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import timedelta

import pytest

from aixpy.errors import InvalidInputError, UnsupportedQueryError
from aixpy.vectorstores import BaseCollection, Query, filters, keyword
from aixpy.vectorstores.types import utcnow

from ._support import doc, ids
from .conftest import BACKENDS, MakeCollection

NO_KEYWORD = {"firestore"}
KEYWORD_BACKENDS = [b for b in BACKENDS if b not in NO_KEYWORD]


@pytest.fixture(params=KEYWORD_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """In this module, the backends that have a keyword index (the others are tested for refusing)."""
    return str(request.param)

CORPUS = [
    ("a", [1.0, 0.0, 0.0], "Reset the router by holding the power button", ["net"]),
    ("b", [0.9, 0.1, 0.0], "The router error code XK-4471 means the firmware is corrupt", ["net"]),
    ("c", [0.0, 1.0, 0.0], "Café opening hours and the menu of the CAFÉ", ["food"]),
    ("d", [0.0, 0.9, 0.1], "Bake bread: flour, water, salt; knead the dough", ["food"]),
    ("e", [0.0, 0.0, 1.0], "Quarterly report of the board, the the the the", ["biz"]),
]


@pytest.fixture
def coll(make_collection: MakeCollection) -> BaseCollection:
    c = make_collection(dimensions=3)
    r = c.upsert_batch([doc(i, v, text, tags=tags) for i, v, text, tags in CORPUS])
    assert r.inserted == len(CORPUS)
    assert c.supports_keyword
    return c


def kw_ids(c: BaseCollection, text: str, **kw: object) -> list[str]:
    return ids(c.query(Query(text=text, mode="keyword", **kw)))  # type: ignore[arg-type]


def test_tokenize_is_documented_behaviour() -> None:
    assert keyword.tokenize("Error E-4471 in Café_Config!") == ["error", "e", "4471", "in", "café_config"]
    assert keyword.tokenize("ＡＢＣ Straße") == ["abc", "strasse"]  # NFKC, then case folding
    assert keyword.tokenize("x" * 256 + " ok") == ["ok"]


def test_keyword_finds_rare_identifier_first(coll: BaseCollection) -> None:
    res = coll.query(Query(text="xk-4471 router", mode="keyword", limit=5))
    assert ids(res) == ["b", "a"]  # both words beat one; documents without any word never match
    assert [m.rank for m in res] == [1, 2]
    assert res.matches[0].score > res.matches[1].score > 0
    assert all(m.distance == -m.score for m in res)
    assert res.matches[0].document.content == CORPUS[1][2]


def test_keyword_is_case_and_unicode_insensitive(coll: BaseCollection) -> None:
    assert kw_ids(coll, "CAFÉ") == ["c"]
    assert kw_ids(coll, "café") == ["c"]
    assert kw_ids(coll, "nothing-matches zzz") == []


def test_keyword_bm25_prefers_rare_words_and_saturates(coll: BaseCollection) -> None:
    # "the" is in 4 of 5 documents (low idf) and repeated in e; "board" is rare
    assert kw_ids(coll, "the board")[0] == "e"
    assert kw_ids(coll, "bread the")[0] == "d"


def test_keyword_filter_paging_and_embeddings(coll: BaseCollection) -> None:
    assert kw_ids(coll, "the", filter=filters.tags_any("food")) == ["c", "d"]  # c says "the" twice
    everything = kw_ids(coll, "the router café bread board", limit=10)
    assert sorted(everything) == ["a", "b", "c", "d", "e"]
    assert kw_ids(coll, "the router café bread board", limit=2, offset=1) == everything[1:3]
    res = coll.query(Query(text="router", mode="keyword", include_embeddings=True))
    assert [list(m.document.embedding or []) for m in res] == [pytest.approx([1.0, 0.0, 0.0], abs=1e-6),
                                                               pytest.approx([0.9, 0.1, 0.0], abs=1e-6)]


def test_keyword_follows_updates_deletes_and_expiry(coll: BaseCollection) -> None:
    assert kw_ids(coll, "router") == ["a", "b"]  # same tf: the shorter document first
    coll.upsert(doc("a", [1.0, 0.0, 0.0], "no longer about networking"))
    assert kw_ids(coll, "router") == ["b"]
    coll.delete(["b"])
    assert kw_ids(coll, "router") == []
    coll.upsert(doc("g", [1.0, 1.0, 0.0], "router here to stay"))
    expires = utcnow() + timedelta(seconds=2)  # long enough that a busy machine still sees it alive first
    coll.upsert(doc("h", [1.0, 1.0, 0.0], "router expired", expires_at=expires))
    assert kw_ids(coll, "router") == ["h", "g"]
    time.sleep(max(0.0, (expires - utcnow()).total_seconds()) + 0.1)
    assert kw_ids(coll, "router") == ["g"]


def test_hybrid_fuses_with_rrf(coll: BaseCollection) -> None:
    # vector ranking for [1,0,0]: a, b, then the rest; keyword ranking for "xk-4471": b only
    res = coll.query(Query([1.0, 0.0, 0.0], text="XK-4471", mode="hybrid", limit=3))
    k = 60
    assert ids(res)[:2] == ["b", "a"]
    assert res.matches[0].score == pytest.approx(1 / (k + 2) + 1 / (k + 1), abs=1e-12)
    assert res.matches[1].score == pytest.approx(1 / (k + 1), abs=1e-12)
    assert [m.rank for m in res] == [1, 2, 3]
    # a smaller k weighs the top ranks more; the fused order here stays
    small = coll.query(Query([1.0, 0.0, 0.0], text="XK-4471", mode="hybrid", limit=2, rrf_k=1))
    assert small.matches[0].score == pytest.approx(1 / 3 + 1 / 2)


def test_hybrid_surfaces_keyword_only_match(coll: BaseCollection) -> None:
    # the vector points at the "biz" corner; the keyword names bread (only d)
    res = coll.query(Query([0.0, 0.0, 1.0], text="bread", mode="hybrid", limit=3))
    assert ids(res) == ["d", "e", "a"]  # d: 2nd by vector + 1st by keyword; e: 1st by vector only
    assert res.matches[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_hybrid_without_words_is_the_vector_ranking(coll: BaseCollection) -> None:
    vec = ids(coll.query(Query([0.0, 1.0, 0.0], limit=5)))
    res = coll.query(Query([0.0, 1.0, 0.0], text="?!", mode="hybrid", limit=5))
    assert ids(res) == vec
    assert [m.score for m in res] == pytest.approx([1 / (60 + r) for r in range(1, 6)])


def test_hybrid_filter_applies_to_both_rankings(coll: BaseCollection) -> None:
    res = coll.query(Query([1.0, 0.0, 0.0], text="router bread", mode="hybrid", limit=10,
                           filter=filters.tags_any("food")))
    assert set(ids(res)) == {"c", "d"}


def test_async_matches_sync(coll: BaseCollection) -> None:
    for q in (Query(text="router the", mode="keyword"), Query([1.0, 0.0, 0.0], text="the bread", mode="hybrid")):
        sync = [(m.document.id, m.score, m.rank) for m in coll.query(q)]
        got = [(m.document.id, m.score, m.rank) for m in asyncio.run(coll.aquery(q))]
        assert [g[0] for g in got] == [s[0] for s in sync]
        assert [g[1] for g in got] == pytest.approx([s[1] for s in sync])


def test_invalid_text_queries(coll: BaseCollection) -> None:
    with pytest.raises(InvalidInputError, match="needs text"):
        coll.query(Query([1.0, 0.0, 0.0], mode="hybrid"))
    with pytest.raises(InvalidInputError, match="min_score"):
        coll.query(Query([1.0, 0.0, 0.0], text="x", mode="hybrid", min_score=0.5))
    with pytest.raises(InvalidInputError, match="rrf_k"):
        coll.query(Query([1.0, 0.0, 0.0], text="x", mode="hybrid", rrf_k=0))
    with pytest.raises(InvalidInputError, match="mode"):
        coll.query(Query([1.0, 0.0, 0.0], text="x", mode="fuzzy"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="embedding"):
        coll.query(Query(text="x", mode="hybrid"))


def test_keyword_on_empty_collection(make_collection: MakeCollection) -> None:
    c = make_collection()
    assert c.query(Query(text="anything", mode="keyword")).matches == []
    assert c.query(Query([1.0, 0.0], text="anything", mode="hybrid")).matches == []


@pytest.mark.parametrize("backend", sorted(NO_KEYWORD))
def test_unsupported_backend_refuses(backend: str, make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=3)
    assert not c.supports_keyword
    c.upsert(doc("a", [1.0, 0.0, 0.0], "router"))
    for mode in ("keyword", "hybrid"):
        with pytest.raises(UnsupportedQueryError, match="Firestore"):
            c.query(Query([1.0, 0.0, 0.0], text="router", mode=mode))  # type: ignore[arg-type]
        with pytest.raises(UnsupportedQueryError, match="Firestore"):
            asyncio.run(c.aquery(Query([1.0, 0.0, 0.0], text="router", mode=mode)))  # type: ignore[arg-type]
    assert math.isclose(c.query(Query([1.0, 0.0, 0.0])).matches[0].score, 1.0, abs_tol=1e-6)
