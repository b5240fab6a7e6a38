"""Conformance: what writes do to what reads see (updates, batches, clear, TTL, dedup, capacity).

Complements ``test_conformance.py``; every backend must pass it unchanged, through the public API only.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from aixpy.errors import CapacityError, DimensionMismatchError, InvalidInputError
from aixpy.vectorstores import CollectionOptions, Document, Query, Scope, VectorStore, filters
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.types import utcnow

from ._support import doc, ids
from .conftest import MakeCollection

NEAR_OLD = [1.0, 0.0, 0.0, 0.0]
NEAR_NEW = [0.0, 0.0, 0.0, 1.0]


# ------------------------------------------------------------------ update semantics


def test_update_replaces_every_field_and_search_sees_the_new_vector(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert_batch([
        doc("a", NEAR_OLD, "old text", metadata={"lang": "en", "old_only": 1}, tags=["t-old", "both"],
            scope=Scope(tenant="acme", user="u1"), embedding_model="m-old"),
        doc("b", [0.9, 0.1, 0.0, 0.0], "b"),
        doc("c", [0.1, 0.0, 0.1, 0.9], "c"),
    ])
    assert ids(c.query(Query(NEAR_OLD, limit=1))) == ["a"]
    r = c.upsert(doc("a", NEAR_NEW, "new text", metadata={"lang": "fr", "new_only": True}, tags=["t-new", "both"],
                     scope=Scope(tenant="globex"), embedding_model="m-new"))
    assert (r.inserted, r.updated, r.failed) == (0, 1, 0)
    [a] = c.get(["a"])
    assert (a.content, a.metadata, a.tags, a.scope, a.embedding_model) == (
        "new text", {"lang": "fr", "new_only": True}, ["t-new", "both"], Scope(tenant="globex"), "m-new")
    assert a.embedding is not None
    assert list(a.embedding) == pytest.approx(NEAR_NEW, abs=1e-6)
    # the old vector is gone from the index: near the old position "a" is now the worst match
    assert ids(c.query(Query(NEAR_OLD, limit=3))) == ["b", "c", "a"]
    assert ids(c.query(Query(NEAR_OLD, limit=1))) == ["b"]
    [top] = c.query(Query(NEAR_NEW, limit=1, include_embeddings=True)).matches
    assert top.document.id == "a"
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert top.document.content == "new text"
    assert top.document.embedding == pytest.approx(NEAR_NEW, abs=1e-6)
    # filters see only the new fields (metadata is replaced, not merged)
    for gone in (F.field("lang").eq("en"), F.field("old_only").exists(), F.tags_any("t-old"), F.tenant("acme"),
                 F.scope(user="u1")):
        assert c.count(gone) == 0
        assert c.query(Query(NEAR_NEW, limit=10, filter=gone)).matches == []
    for now in (F.field("lang").eq("fr"), F.field("new_only").eq(True), F.tags_all("t-new", "both"),
                F.tenant("globex")):
        assert c.count(now) == 1
        assert ids(c.query(Query(NEAR_OLD, limit=10, filter=now))) == ["a"]
    assert c.count() == 3


def test_update_to_empty_fields(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert(doc("a", NEAR_OLD, "text", metadata={"k": 1}, tags=["t"], scope=Scope(tenant="acme")))
    c.upsert(doc("a", NEAR_OLD))
    [a] = c.get(["a"])
    assert (a.content, a.metadata, a.tags, a.scope) == ("", {}, [], Scope())
    assert c.count(F.field("k").exists()) == c.count(F.tags_any("t")) == c.count(F.tenant("acme")) == 0


def test_many_updates_keep_one_document(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    for i in range(5):
        c.upsert_batch([doc("a", [1.0, float(i), 0.0, 1.0], f"v{i}"), doc("b", [0.0, 1.0, float(i), 0.0])])
    assert c.count() == 2
    hits = c.query(Query([1.0, 4.0, 0.0, 1.0], limit=10)).matches
    assert [m.document.id for m in hits] == ["a", "b"]
    assert hits[0].document.content == "v4"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------ batch results


def test_mixed_batch_puts_every_id_in_one_bucket(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert_batch([doc("old1", [1.0, 0.0, 0.0, 0.0], "o1"), doc("old2", [0.0, 1.0, 0.0, 0.0], "o2")])
    batch = [
        doc("new1", [0.0, 0.0, 1.0, 0.0], "n1"),
        doc("old1", [0.0, 0.0, 0.0, 1.0], "o1 updated"),
        doc("bad-dims", [1.0, 2.0]),
        doc("new2", [1.0, 1.0, 0.0, 0.0], "n2"),
        doc("bad-nan", [float("nan"), 0.0, 0.0, 1.0]),
        doc("old2", [0.0, 1.0, 1.0, 0.0], "o2 updated"),
        doc("new1", [0.0, 0.0, 1.0, 1.0], "n1 again"),  # same id twice: counted once, last wins
    ]
    r = c.upsert_batch(batch)
    assert (r.inserted, r.updated, r.failed, r.deduplicated) == (2, 2, 2, 0)
    assert r.succeeded == 4
    assert r.failed_ids == ["bad-dims", "bad-nan"]
    assert sorted(r.inserted_ids) == ["new1", "new2"]
    assert sorted(r.updated_ids) == ["old1", "old2"]
    assert r.deduplicated_ids == []
    assert len(r.errors) == 2
    assert str(r.errors[0]).startswith("bad-dims: ")
    assert (r.errors[0].doc_id, r.errors[0].type) == ("bad-dims", DimensionMismatchError)
    assert "2 dimensions, expected 4" in r.errors[0].message
    assert str(r.errors[1]).startswith("bad-nan: ")
    assert r.errors[1].type is InvalidInputError
    assert {d.id: d.content for d in c.get(["new1", "new2", "old1", "old2", "bad-dims", "bad-nan"])} == {
        "new1": "n1 again", "new2": "n2", "old1": "o1 updated", "old2": "o2 updated"}
    assert c.count() == 4


def test_empty_batch_and_all_failed_batch(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    r = c.upsert_batch([])
    assert (r.inserted, r.updated, r.failed, r.failed_ids) == (0, 0, 0, [])
    r = c.upsert_batch([doc("x", [1.0]), doc("y", [1.0, 2.0, 3.0, 4.0, 5.0])])
    assert (r.inserted, r.failed, r.failed_ids) == (0, 2, ["x", "y"])
    assert c.count() == 0


def test_dimension_mismatch_on_upsert_and_query(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert(doc("a", NEAR_OLD))
    for bad in ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0]):
        with pytest.raises(DimensionMismatchError) as info:
            c.upsert(doc("b", bad))
        assert (info.value.expected, info.value.got) == (4, len(bad))
        with pytest.raises(DimensionMismatchError) as info:
            c.query(Query(bad))
        assert (info.value.expected, info.value.got) == (4, len(bad))
        with pytest.raises(DimensionMismatchError):
            c.query(Query(bad, filter=F.field("k").exists()))
    for bad in ([float("nan"), 0.0, 0.0, 1.0], [1.0, float("-inf"), 0.0, 0.0], [0.0, 0.0, float("inf"), 0.0]):
        with pytest.raises(InvalidInputError):
            c.query(Query(bad))
        with pytest.raises(InvalidInputError):
            c.upsert(doc("b", bad))
    assert c.get(["b"]) == []
    assert c.count() == 1


# ------------------------------------------------------------------ delete / clear


def test_delete_then_reinsert_is_an_insert(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert(doc("a", NEAR_OLD, "first", metadata={"k": 1}))
    [first] = c.get(["a"])
    assert c.delete(["a"]).deleted == 1
    assert c.delete(["a"]).not_found_ids == ["a"]
    assert c.count(F.field("k").eq(1)) == 0
    time.sleep(0.01)
    r = c.upsert(doc("a", NEAR_NEW, "second"))
    assert (r.inserted, r.updated) == (1, 0)
    [again] = c.get(["a"])
    assert again.content == "second"
    assert again.metadata == {}
    assert first.created_at is not None
    assert again.created_at is not None
    assert again.created_at > first.created_at
    assert ids(c.query(Query(NEAR_NEW, limit=5))) == ["a"]
    assert c.delete([]).deleted == 0


def test_clear_keeps_the_collection_usable(store: VectorStore) -> None:
    c = store.collection("to-clear", CollectionOptions(dimensions=4, metric="dot", max_documents=2))
    other = store.collection("untouched", CollectionOptions(dimensions=4))
    other.upsert(doc("a", NEAR_OLD, "other"))
    c.upsert_batch([doc("a", [2.0, 0.0, 0.0, 0.0], tags=["t"]), doc("b", [0.0, 3.0, 0.0, 0.0], tags=["t"])])
    c.clear()
    assert c.count() == c.count(F.tags_any("t")) == 0
    assert c.get(["a", "b"]) == []
    assert c.query(Query(NEAR_OLD, filter=F.tags_any("t"))).matches == []
    c.clear()  # idempotent
    assert c.dimensions == 4
    with pytest.raises(DimensionMismatchError):
        c.upsert(doc("a", [1.0, 2.0]))
    r = c.upsert_batch([doc("a", [2.0, 0.0, 0.0, 0.0]), doc("c", [1.0, 1.0, 0.0, 0.0]),
                        doc("d", [0.0, 0.0, 1.0, 0.0])])
    assert (r.inserted, r.updated, r.failed, r.failed_ids) == (2, 0, 1, ["d"])  # max_documents still applies
    [m1, m2] = c.query(Query([3.0, 0.0, 0.0, 0.0], limit=5)).matches
    assert (m1.document.id, m2.document.id) == ("a", "c")
    assert (m1.score, m2.score) == pytest.approx((6.0, 3.0), abs=1e-4)  # metric (dot) kept
    assert [d.content for d in other.get(["a"])] == ["other"]
    assert other.count() == 1


# ------------------------------------------------------------------ TTL


def test_expired_documents_never_appear_even_when_only_they_match(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    past = utcnow() - timedelta(seconds=5)
    c.upsert_batch([
        doc("gone1", NEAR_OLD, metadata={"k": "x"}, tags=["t"], scope=Scope(tenant="acme"), expires_at=past),
        doc("gone2", [0.99, 0.01, 0.0, 0.0], metadata={"k": "x"}, tags=["t"], expires_at=past),
        doc("live1", [0.5, 0.5, 0.0, 0.0], metadata={"k": "y"}),
        doc("live2", [0.0, 1.0, 0.0, 0.0], metadata={"k": "y"}, tags=["u"], scope=Scope(tenant="acme")),
    ])
    only_expired = [F.field("k").eq("x"), F.tags_any("t"), F.tenant("acme") & F.tags_any("t"),
                    F.field("k").eq("x") | F.tags_all("t")]
    for f in only_expired:
        assert c.count(f) == 0
        assert c.query(Query(NEAR_OLD, limit=10, filter=f)).matches == []
    assert c.count(F.tenant("acme")) == 1
    assert ids(c.query(Query(NEAR_OLD, limit=10, filter=F.tenant("acme")))) == ["live2"]
    # the nearest documents are expired: they take no rank, the live ones are ranks 1 and 2
    page = c.query(Query(NEAR_OLD, limit=2))
    assert ids(page) == ["live1", "live2"]
    assert [m.rank for m in page.matches] == [1, 2]
    assert ids(c.query(Query(NEAR_OLD, limit=2, offset=1))) == ["live2"]
    assert c.get(["gone1", "live1", "gone2"])[0].id == "live1"
    assert len(c.get(["gone1", "gone2"])) == 0
    assert c.count() == 2


def test_expired_documents_do_not_count_for_capacity_dedup_or_updates(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4, max_documents=2, dedup=True, dedup_threshold=0.99)
    past = utcnow() - timedelta(seconds=5)
    c.upsert(doc("gone", NEAR_OLD, "same content", metadata={"v": 1}, expires_at=past))
    assert c.count() == 0
    # an expired document is no duplicate: neither by content nor by vector
    r = c.upsert_batch([doc("a", [0.0, 1.0, 0.0, 0.0], "same content"), doc("b", NEAR_OLD, "b")])
    assert (r.inserted, r.deduplicated, r.failed) == (2, 0, 0)  # and it does not use a max_documents slot
    assert c.count() == 2
    # writing to an expired id creates a fresh, live document
    c.delete(["b"])
    r = c.upsert(doc("gone", [0.0, 0.0, 1.0, 0.0], "back"))
    assert r.inserted + r.updated == 1
    [back] = c.get(["gone"])
    assert (back.content, back.metadata, back.expires_at) == ("back", {}, None)
    assert c.count() == 2


def test_documents_expire_while_stored(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    soon = utcnow() + timedelta(seconds=0.4)
    c.upsert_batch([doc("soon", NEAR_OLD, metadata={"k": 1}, tags=["t"], expires_at=soon),
                    doc("stays", [0.0, 1.0, 0.0, 0.0], metadata={"k": 1}, tags=["t"])])
    f = F.field("k").eq(1) & F.tags_any("t")
    assert c.count(f) == 2
    assert ids(c.query(Query(NEAR_OLD, limit=5, filter=f))) == ["soon", "stays"]
    time.sleep(0.5)
    assert c.count(f) == 1
    assert ids(c.query(Query(NEAR_OLD, limit=5, filter=f))) == ["stays"]
    assert ids(c.query(Query(NEAR_OLD, limit=5))) == ["stays"]
    assert c.get(["soon"]) == []


# ------------------------------------------------------------------ dedup and capacity


def test_dedup_with_filters(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=3, dedup=True, dedup_threshold=0.98)
    c.upsert(doc("keep", [1.0, 0.0, 0.0], "text", metadata={"src": "a"}, tags=["first"], scope=Scope(tenant="t1")))
    r = c.upsert_batch([
        doc("dup-content", [0.0, 1.0, 0.0], "text", metadata={"src": "b"}, tags=["second"]),
        doc("dup-vector", [1.0, 0.01, 0.0], "other", metadata={"src": "b"}, tags=["second"]),
        doc("fresh", [0.0, 0.0, 1.0], "fresh", metadata={"src": "b"}, tags=["second"]),
    ])
    assert (r.inserted, r.deduplicated, r.deduplicated_ids) == (1, 2, ["dup-content", "dup-vector"])
    # nothing of the skipped documents is visible, and the kept one is unchanged
    assert c.count(F.field("src").eq("b")) == 1
    assert ids(c.query(Query([1.0, 0.0, 0.0], limit=10, filter=F.tags_any("second")))) == ["fresh"]
    assert ids(c.query(Query([1.0, 0.0, 0.0], limit=10, filter=F.field("src").eq("a")))) == ["keep"]
    [keep] = c.get(["keep"])
    assert (keep.content, keep.metadata, keep.tags, keep.scope) == ("text", {"src": "a"}, ["first"],
                                                                    Scope(tenant="t1"))
    # after the original is deleted its content is no longer a duplicate
    c.delete(["keep"])
    assert c.upsert(doc("dup-content", [0.0, 1.0, 0.0], "text")).inserted == 1


def test_max_documents_with_updates_deletes_and_clear(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4, max_documents=3)
    assert c.upsert_batch([doc(f"d{i}", [1.0, float(i), 0.0, 0.0]) for i in range(3)]).inserted == 3
    # a full collection still takes updates, in the same batch as refused inserts
    r = c.upsert_batch([doc("d0", NEAR_NEW, "u"), doc("x1", NEAR_OLD), doc("d2", NEAR_NEW, "u")])
    assert (r.inserted, r.updated, r.failed, r.failed_ids) == (0, 2, 1, ["x1"])
    assert c.delete(["nope"]).not_found == 1
    with pytest.raises(CapacityError):
        c.upsert(doc("x2", NEAR_OLD))  # deleting a missing id frees nothing
    c.delete(["d1", "d2"])
    r = c.upsert_batch([doc("x1", NEAR_OLD), doc("x2", NEAR_OLD), doc("x3", NEAR_OLD)])
    assert (r.inserted, r.failed_ids) == (2, ["x3"])
    assert c.count() == 3
    c.clear()
    assert c.upsert_batch([doc(f"y{i}", NEAR_OLD) for i in range(4)]).inserted == 3
    assert sorted(ids(c.query(Query(NEAR_OLD, limit=10)))) == ["y0", "y1", "y2"]


def test_query_result_documents_have_no_store_internals(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert(doc("a", NEAR_OLD, "x", metadata={"k": [1, {"z": None}]}, tags=["t"], scope=Scope(user="u")))
    [m] = c.query(Query(NEAR_OLD, filter=filters.parse({"k": 1}))).matches
    d: Document = m.document
    assert (d.id, d.content, d.metadata, d.tags, d.scope) == ("a", "x", {"k": [1, {"z": None}]}, ["t"],
                                                             Scope(user="u"))
    assert d.embedding is None
    assert d.created_at is not None
