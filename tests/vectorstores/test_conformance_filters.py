"""Conformance: every filter operator gives the same, exact answer on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from aixpy.errors import InvalidInputError
from aixpy.vectorstores import BaseCollection, Query, Scope, filters
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.filters import Filter

from ._support import doc, ids
from .conftest import MakeCollection

ALL = {"d1", "d2", "d3", "d4", "d5", "d6", "d7"}

DOCS = [
    doc("d1", [1.0, 0.1, 0.0], "Deep learning",
        metadata={"year": 2020, "lang": "en", "score": 1.5, "flag": True, "authors": ["ann", "bob"],
                  "title": "Deep learning"},
        tags=["a", "b"], scope=Scope(tenant="acme", user="u1")),
    doc("d2", [0.9, 0.3, 0.0], "Learning French",
        metadata={"year": 2021.0, "lang": "fr", "flag": False, "authors": ["bob"], "title": "Learning French"},
        tags=["b"], scope=Scope(tenant="acme", user="u2", session="s1")),
    doc("d3", [0.8, 0.5, 0.1], "Cooking",
        metadata={"year": 2019, "lang": "en", "count": 1, "title": "Cooking", "score": -2},
        tags=["c"], scope=Scope(tenant="globex")),
    doc("d4", [0.7, 0.6, 0.2], "", metadata={"year": "2022", "lang": "de", "count": 1.0}),
    doc("d5", [0.6, 0.7, 0.3], "", metadata={"lang": None, "flag": 1, "count": True},
        tags=["a"], scope=Scope(user="u1")),
    doc("d6", [0.5, 0.8, 0.4], "", metadata={"nested": {"x": 1}, "authors": [], "year": [2020, 2021]},
        tags=["b", "c"], scope=Scope(session="s1")),
    doc("d7", [0.4, 0.9, 0.5], "", metadata={"title": "learning", "score": 0.0, "mixed": ["1", 2, True]}),
]


@pytest.fixture
def coll(make_collection: MakeCollection) -> BaseCollection:
    c = make_collection(dimensions=3)
    r = c.upsert_batch(DOCS)
    assert r.inserted == len(DOCS), r.errors
    return c


def found(c: BaseCollection, f: Filter) -> set[str]:
    """Ids matching ``f`` via query, checked against count and the reference evaluator."""
    got = ids(c.query(Query([1.0, 1.0, 1.0], limit=100, filter=f)))
    assert len(got) == len(set(got))
    assert c.count(f) == len(got)
    reference = {d.id for d in DOCS if filters.matches(f, d)}
    assert set(got) == reference
    return set(got)


CASES: list[tuple[str, Filter, set[str]]] = [
    ("eq string", F.field("lang").eq("en"), {"d1", "d3"}),
    ("eq int matches float", F.field("year").eq(2021), {"d2", "d6"}),
    ("eq float matches int", F.field("year").eq(2020.0), {"d1", "d6"}),
    ("eq number never matches string", F.field("year").eq(2022), set()),
    ("eq string never matches number", F.field("year").eq("2022"), {"d4"}),
    ("eq true is not 1", F.field("flag").eq(True), {"d1"}),
    ("eq 1 is not true", F.field("flag").eq(1), {"d5"}),
    ("eq false is not 0", F.field("flag").eq(False), {"d2"}),
    ("eq number not bool", F.field("count").eq(1), {"d3", "d4"}),
    ("eq bool not number", F.field("count").eq(True), {"d5"}),
    ("eq list element", F.field("authors").eq("bob"), {"d1", "d2"}),
    ("eq mixed list", F.field("mixed").eq(2), {"d7"}),
    ("eq mixed list str", F.field("mixed").eq("1"), {"d7"}),
    ("eq mixed list bool", F.field("mixed").eq(True), {"d7"}),
    ("eq on a dict field", F.field("nested").eq(1), set()),
    ("ne includes missing and None", F.field("lang").ne("en"), ALL - {"d1", "d3"}),
    ("ne on list", F.field("authors").ne("bob"), ALL - {"d1", "d2"}),
    ("gt", F.field("year").gt(2019), {"d1", "d2"}),
    ("gte", F.field("year").gte(2019), {"d1", "d2", "d3"}),
    ("lt", F.field("year").lt(2020), {"d3"}),
    ("lte", F.field("year").lte(2020), {"d1", "d3"}),
    ("gt float", F.field("score").gt(-2.5), {"d1", "d3", "d7"}),
    ("lt zero", F.field("score").lt(0), {"d3"}),
    ("range ignores bools", F.field("flag").gte(0), {"d5"}),
    ("range ignores bool count", F.field("count").gt(0.5), {"d3", "d4"}),
    ("in", F.field("lang").in_(["en", "de"]), {"d1", "d3", "d4"}),
    ("in numbers", F.field("year").in_([2019, 2021.0]), {"d2", "d3", "d6"}),
    ("nin", F.field("lang").nin(["en", "de"]), ALL - {"d1", "d3", "d4"}),
    ("contains substring", F.field("title").contains("Learn"), {"d2"}),
    ("contains is case sensitive", F.field("title").contains("learn"), {"d1", "d7"}),
    ("contains list element", F.field("authors").contains("ann"), {"d1"}),
    ("contains number in list", F.field("year").contains(2021), {"d6"}),
    ("contains on a number field", F.field("count").contains(1), set()),
    ("exists", F.field("flag").exists(), {"d1", "d2", "d5"}),
    ("exists ignores None", F.field("lang").exists(), {"d1", "d2", "d3", "d4"}),
    ("exists empty list and dict", F.field("authors").exists() & F.field("nested").exists(), {"d6"}),
    ("not exists", ~F.field("lang").exists(), {"d5", "d6", "d7"}),
    ("and", F.field("lang").eq("en") & F.field("year").gte(2020), {"d1"}),
    ("or", F.field("lang").eq("de") | F.field("flag").eq(False), {"d2", "d4"}),
    ("not", ~F.field("lang").eq("en"), ALL - {"d1", "d3"}),
    ("nested logic", (F.tags_any("b") & ~F.field("year").eq(2020)) | F.field("count").eq(True), {"d2", "d5"}),
    ("double negation", ~~F.field("lang").eq("fr"), {"d2"}),
    ("tags any", F.tags_any("a", "c"), {"d1", "d3", "d5", "d6"}),
    ("tags all", F.tags_all("b", "c"), {"d6"}),
    ("tags all single", F.tags_all("b"), {"d1", "d2", "d6"}),
    ("tags unknown", F.tags_any("zzz"), set()),
    ("tenant", F.tenant("acme"), {"d1", "d2"}),
    ("tenant never matches unscoped", F.tenant("globex"), {"d3"}),
    ("scope user", F.scope(user="u1"), {"d1", "d5"}),
    ("scope tenant and user", F.scope(tenant="acme", user="u1"), {"d1"}),
    ("scope session", F.scope(session="s1"), {"d2", "d6"}),
    ("scope unknown tenant", F.tenant("nobody"), set()),
    ("not tenant", ~F.tenant("acme"), ALL - {"d1", "d2"}),
    ("scope and metadata", F.tenant("acme") & F.field("lang").eq("fr"), {"d2"}),
]


@pytest.mark.parametrize(("name", "flt", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_operator(coll: BaseCollection, name: str, flt: Filter, expected: set[str]) -> None:
    assert found(coll, flt) == expected


def test_parse_dict_form_matches_builders(coll: BaseCollection) -> None:
    spec: dict[str, Any] = {
        "year": {"$gte": 2019, "$lt": 2021},
        "lang": {"$in": ["en", "fr"]},
        "$or": [{"$tags_any": ["a"]}, {"$scope": {"tenant": "globex"}}],
    }
    parsed = filters.parse(spec)
    assert parsed is not None
    built = (F.field("year").gte(2019) & F.field("year").lt(2021) & F.field("lang").in_(["en", "fr"])
             & (F.tags_any("a") | F.tenant("globex")))
    assert found(coll, parsed) == found(coll, built) == {"d1", "d3"}
    more = {
        "flag": True,
        "title": {"$exists": True, "$contains": "ing"},
        "$not": {"lang": {"$nin": ["en"]}},
        "$tags_all": "a",
    }
    parsed_more = filters.parse(more)
    assert parsed_more is not None
    assert found(coll, parsed_more) == {"d1"}
    absent = filters.parse({"lang": {"$exists": False}, "$tags_any": "c"})
    assert absent is not None
    assert found(coll, absent) == {"d6"}


def test_filter_with_paging_and_ordering(coll: BaseCollection) -> None:
    f = F.field("lang").exists()
    full = ids(coll.query(Query([1.0, 0.0, 0.0], limit=10, filter=f)))
    assert full == ["d1", "d2", "d3", "d4"]
    page = coll.query(Query([1.0, 0.0, 0.0], limit=2, offset=1, filter=f))
    assert ids(page) == ["d2", "d3"]
    assert [m.rank for m in page.matches] == [2, 3]


def test_filter_sees_updates_and_deletes(coll: BaseCollection) -> None:
    f = F.field("lang").eq("en")
    assert found(coll, f) == {"d1", "d3"}
    coll.upsert(doc("d3", [0.8, 0.5, 0.1], metadata={"lang": "it"}))
    coll.upsert(doc("d8", [0.1, 0.1, 0.1], metadata={"lang": "en"}))
    coll.delete(["d1"])
    got = ids(coll.query(Query([1.0, 1.0, 1.0], limit=100, filter=f)))
    assert got == ["d8"]
    assert coll.count(f) == 1
    assert coll.count(F.tenant("acme")) == 1


def test_invalid_filters_are_rejected() -> None:
    bad: dict[str, Any]
    for bad in ({"$bogus": 1}, {"x": {"$regex": "a"}}, {"x": {"$gt": "a"}}, {"x": {"$in": []}},
                {"$scope": {"tenant": ""}}, {"$and": []}, {}, {"x": float("nan")}):
        with pytest.raises(InvalidInputError):
            filters.parse(bad)
    with pytest.raises(InvalidInputError):
        F.scope()
