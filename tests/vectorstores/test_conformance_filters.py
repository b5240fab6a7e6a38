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
    ("scope and tags", F.tenant("acme") & F.tags_any("a"), {"d1"}),
    ("scope or tags", F.tenant("globex") | F.tags_all("a", "b"), {"d1", "d3"}),
    ("scope user and session none match", F.scope(user="u1", session="s1"), set()),
    ("not scope user", ~F.scope(user="u1"), ALL - {"d1", "d5"}),
    ("scope and range", F.tenant("acme") & F.field("year").gt(2020), {"d2"}),
    ("or of three", F.field("lang").eq("de") | F.tags_all("c") | F.field("flag").eq(1), {"d3", "d4", "d5", "d6"}),
    ("and of ors", (F.field("lang").eq("en") | F.field("lang").eq("fr")) & (F.tags_any("a") | F.tenant("globex")),
     {"d1", "d3"}),
    ("not of or (de morgan)", ~(F.field("lang").exists() | F.tags_any("a")), {"d6", "d7"}),
    ("not of and", ~(F.tags_any("b") & F.field("authors").exists()), ALL - {"d1", "d2", "d6"}),
    ("ne number", F.field("year").ne(2020), ALL - {"d1", "d6"}),
    ("nin numbers", F.field("year").nin([2020, 2019]), ALL - {"d1", "d3", "d6"}),
    ("in bools", F.field("flag").in_([True, False]), {"d1", "d2"}),
    ("in mixed types", F.field("count").in_([1, "x", True]), {"d3", "d4", "d5"}),
    ("tags any and tags all", F.tags_any("a", "c") & F.tags_all("b"), {"d1", "d6"}),
    ("not tags any", ~F.tags_any("b"), ALL - {"d1", "d2", "d6"}),
    ("exists and not exists", F.field("count").exists() & ~F.field("flag").exists(), {"d3", "d4"}),
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


# ------------------------------------------------------------------ strict scope isolation

# Every "near" document is closer to the query than every "acme" document, so a backend that filters
# after a top-k cut (or treats scope loosely) shows up.
SCOPED = [
    doc("acme-u1-s1", [0.1, 1.0, 0.0], scope=Scope(tenant="acme", user="u1", session="s1"), tags=["x"]),
    doc("acme-u2", [0.2, 0.9, 0.1], scope=Scope(tenant="acme", user="u2"), metadata={"n": 2}),
    doc("acme-s1", [0.3, 0.8, 0.2], scope=Scope(tenant="acme", session="s1"), tags=["x", "y"]),
    doc("near-acme2", [1.0, 0.0, 0.0], scope=Scope(tenant="acme2", user="u1", session="s1"), tags=["x"]),
    doc("near-none", [0.99, 0.01, 0.0], metadata={"n": 2}, tags=["x"]),
    doc("near-ACME", [0.98, 0.02, 0.0], scope=Scope(tenant="ACME", user="u1")),
    doc("near-acm", [0.97, 0.03, 0.0], scope=Scope(tenant="acm", user="u2", session="s1")),
    doc("near-user-only", [0.96, 0.04, 0.0], scope=Scope(user="u1"), tags=["y"]),
    doc("near-session-only", [0.95, 0.05, 0.0], scope=Scope(session="s1"), metadata={"n": 2}),
    doc("near-acme-space", [0.94, 0.06, 0.0], scope=Scope(tenant="acme ", user="u1")),
]
SCOPE_CASES: list[tuple[str, Filter | None, set[str]]] = [
    ("tenant", F.tenant("acme"), {"acme-u1-s1", "acme-u2", "acme-s1"}),
    ("tenant via scope", F.scope(tenant="acme"), {"acme-u1-s1", "acme-u2", "acme-s1"}),
    ("tenant and user", F.scope(tenant="acme", user="u1"), {"acme-u1-s1"}),
    ("tenant and session", F.scope(tenant="acme", session="s1"), {"acme-u1-s1", "acme-s1"}),
    ("all three axes", F.scope(tenant="acme", user="u1", session="s1"), {"acme-u1-s1"}),
    ("other tenant", F.tenant("acme2"), {"near-acme2"}),
    ("user across tenants", F.scope(user="u1"),
     {"acme-u1-s1", "near-acme2", "near-ACME", "near-user-only", "near-acme-space"}),
    ("session across tenants", F.scope(session="s1"),
     {"acme-u1-s1", "acme-s1", "near-acme2", "near-acm", "near-session-only"}),
    ("user with no tenant match", F.scope(tenant="acme", user="u9"), set()),
    ("tenant and tags", F.tenant("acme") & F.tags_any("x"), {"acme-u1-s1", "acme-s1"}),
    ("tenant and tags all", F.tenant("acme") & F.tags_all("x", "y"), {"acme-s1"}),
    ("tenant and metadata", F.tenant("acme") & F.field("n").eq(2), {"acme-u2"}),
    ("tenant or tenant", F.tenant("acme2") | F.tenant("acm"), {"near-acme2", "near-acm"}),
    ("parsed scope", filters.parse({"$scope": {"tenant": "acme", "user": "u2"}}), {"acme-u2"}),
    ("parsed scope and field", filters.parse({"$scope": {"session": "s1"}, "n": {"$exists": False},
                                              "$tags_any": ["x"]}), {"acme-u1-s1", "acme-s1", "near-acme2"}),
]


@pytest.fixture
def scoped(make_collection: MakeCollection) -> BaseCollection:
    c = make_collection(dimensions=3)
    assert c.upsert_batch(SCOPED).inserted == len(SCOPED)
    return c


@pytest.mark.parametrize(("name", "flt", "expected"), SCOPE_CASES, ids=[c[0] for c in SCOPE_CASES])
def test_scope_is_strict(scoped: BaseCollection, name: str, flt: Filter | None, expected: set[str]) -> None:
    assert flt is not None
    got = ids(scoped.query(Query([1.0, 0.0, 0.0], limit=100, filter=flt)))
    assert set(got) == expected
    assert len(got) == len(expected)
    assert scoped.count(flt) == len(expected)
    assert {d.id for d in SCOPED if filters.matches(flt, d)} == expected


def test_scope_filter_never_leaks_nearer_documents(scoped: BaseCollection) -> None:
    """The nearest documents belong to other (or no) tenants; a scoped top-k still only sees acme."""
    q = [1.0, 0.0, 0.0]
    assert ids(scoped.query(Query(q, limit=1)))[0] == "near-acme2"
    for limit in (1, 2, 3, 5):
        got = ids(scoped.query(Query(q, limit=limit, filter=F.tenant("acme"))))
        assert got == ["acme-s1", "acme-u2", "acme-u1-s1"][:limit]
    assert ids(scoped.query(Query(q, limit=2, offset=1, filter=F.tenant("acme")))) == ["acme-u2", "acme-u1-s1"]
    assert scoped.query(Query(q, limit=5, offset=3, filter=F.tenant("acme"))).matches == []
    assert scoped.query(Query(q, limit=5, filter=F.tenant("nobody"))).matches == []


def test_scope_follows_updates(scoped: BaseCollection) -> None:
    scoped.upsert(doc("near-none", [0.99, 0.01, 0.0], scope=Scope(tenant="acme")))
    scoped.upsert(doc("acme-u2", [0.2, 0.9, 0.1], scope=Scope(tenant="acme2", user="u2")))
    assert found_scoped(scoped, F.tenant("acme")) == {"acme-u1-s1", "acme-s1", "near-none"}
    assert found_scoped(scoped, F.tenant("acme2")) == {"near-acme2", "acme-u2"}
    assert ids(scoped.query(Query([1.0, 0.0, 0.0], limit=1, filter=F.tenant("acme")))) == ["near-none"]
    scoped.delete(["near-none"])
    assert scoped.count(F.tenant("acme")) == 2


def found_scoped(c: BaseCollection, f: Filter) -> set[str]:
    got = ids(c.query(Query([1.0, 0.0, 0.0], limit=100, filter=f)))
    assert c.count(f) == len(got) == len(set(got))
    return set(got)


# ------------------------------------------------------------------ tags with paging


def test_tags_filters_with_paging(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=2)
    tagsets = [["red"], ["blue"], ["red", "blue"], [], ["green"], ["red", "green"], ["blue", "green"],
               ["red", "blue", "green"], ["red"], ["blue"], ["red", "blue"], ["green"]]
    # angles grow with i: for the query (1, 0) the order of the documents is d00, d01, ...
    docs = [doc(f"d{i:02d}", [1.0, 0.1 * i], tags=t) for i, t in enumerate(tagsets)]
    c.upsert_batch(docs)
    for flt in (F.tags_any("red"), F.tags_all("red", "blue"), F.tags_any("blue", "green"),
                F.tags_any("red") & ~F.tags_any("green"), F.tags_all("green") | F.tags_all("red", "blue")):
        want = [d.id for d in docs if filters.matches(flt, d)]
        assert c.count(flt) == len(want)
        full = c.query(Query([1.0, 0.0], limit=50, filter=flt))
        assert ids(full) == want
        pages: list[str] = []
        for offset in range(0, len(want) + 3, 2):
            page = c.query(Query([1.0, 0.0], limit=2, offset=offset, filter=flt))
            assert [m.rank for m in page.matches] == list(range(offset + 1, offset + 1 + len(page.matches)))
            pages += ids(page)
        assert pages == want
