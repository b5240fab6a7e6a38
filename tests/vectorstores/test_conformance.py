"""Conformance suite: every backend must pass it unchanged, through the public API only.

Filters and strict scope isolation live in ``test_conformance_filters.py``; search quality, metrics,
min_score and paging in ``test_conformance_search.py``; what writes do to later reads (update
semantics, mixed batches, clear, TTL, dedup and max_documents interplay) in
``test_conformance_lifecycle.py``.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest

from aixpy.errors import CapacityError, DimensionMismatchError, InvalidInputError
from aixpy.vectorstores import CollectionOptions, Document, Query, Scope, VectorStore, filters
from aixpy.vectorstores.types import utcnow

from ._support import doc, doc_fields, ids, summary
from .conftest import MakeCollection

V = [1.0, 0.0, 0.0, 0.0]


def vec(i: int) -> list[float]:
    """A distinct, non-zero 4-d vector for document number ``i``."""
    return [1.0, float(i % 7) + 0.5, float(i // 7) - 1.0, 0.25 * i]


# ------------------------------------------------------------------ upsert


def test_upsert_batch_counts_inserts_then_updates(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    r = c.upsert_batch([doc("a", vec(1)), doc("b", vec(2)), doc("c", vec(3))])
    assert (r.inserted, r.updated, r.failed, r.deduplicated) == (3, 0, 0, 0)
    assert r.succeeded == 3
    assert sorted(r.inserted_ids) == ["a", "b", "c"]
    r = c.upsert_batch([doc("a", vec(4)), doc("d", vec(5)), doc("b", vec(6))])
    assert (r.inserted, r.updated, r.failed) == (1, 2, 0)
    assert (r.inserted_ids, sorted(r.updated_ids)) == (["d"], ["a", "b"])
    assert c.count() == 4


def test_single_upsert_insert_then_update(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    r = c.upsert(doc("a", vec(1), "first"))
    assert (r.inserted, r.updated) == (1, 0)
    r = c.upsert(doc("a", vec(2), "second"))
    assert (r.inserted, r.updated) == (0, 1)
    [got] = c.get(["a"])
    assert got.content == "second"
    assert got.embedding is not None
    assert list(got.embedding) == pytest.approx(vec(2), rel=1e-5)
    assert c.count() == 1


def test_store_sets_times_and_update_keeps_created_at(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    before = utcnow()
    c.upsert(doc("a", vec(1), "v1"))
    [first] = c.get(["a"])
    assert first.created_at is not None
    assert first.updated_at is not None
    assert first.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= first.created_at <= utcnow() + timedelta(seconds=1)
    time.sleep(0.01)
    long_ago = utcnow() - timedelta(days=365)
    c.upsert(doc("a", vec(2), "v2", created_at=long_ago))
    [second] = c.get(["a"])
    assert second.content == "v2"
    assert second.created_at == first.created_at
    assert second.updated_at is not None
    assert second.updated_at > first.updated_at


def test_batch_reports_every_invalid_document(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    batch = [
        doc("ok1", vec(1)),
        doc("", vec(2)),
        doc(" padded", vec(3)),
        doc("nan", [1.0, float("nan"), 0.0, 0.0]),
        doc("inf", [1.0, float("inf"), 0.0, 0.0]),
        doc("short", [1.0, 2.0, 3.0]),
        Document(id="noemb", content="x"),
        doc("badtag", vec(4), tags=["has space"]),
        doc("ok2", vec(5)),
    ]
    r = c.upsert_batch(batch)
    assert (r.inserted, r.updated, r.failed) == (2, 0, 7)
    assert r.failed_ids == ["", " padded", "nan", "inf", "short", "noemb", "badtag"]
    assert len(r.errors) == 7
    assert [e.doc_id for e in r.errors] == r.failed_ids
    assert all(str(e).startswith(f"{i}: ") for e, i in zip(r.errors, r.failed_ids, strict=True))
    assert all(isinstance(e.error, InvalidInputError) and e.type is type(e.error) for e in r.errors)
    assert r.errors[4].type is DimensionMismatchError
    assert r.errors[4].message == "document 'short' embedding has 3 dimensions, expected 4"
    assert str(r.errors[4]) == "short: document 'short' embedding has 3 dimensions, expected 4"
    assert sorted(d.id for d in c.get(["ok1", "ok2", "nan", "short"])) == ["ok1", "ok2"]
    assert c.count() == 2


def test_single_upsert_raises_on_invalid_input(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    with pytest.raises(DimensionMismatchError) as info:
        c.upsert(doc("a", [1.0, 2.0, 3.0]))
    assert (info.value.expected, info.value.got) == (4, 3)
    with pytest.raises(InvalidInputError, match="NaN"):
        c.upsert(doc("a", [1.0, float("nan"), 0.0, 0.0]))
    with pytest.raises(InvalidInputError):
        c.upsert(doc("", vec(1)))
    with pytest.raises(InvalidInputError):
        c.upsert(doc("a", vec(1), metadata={"$bad": 1}))
    with pytest.raises(InvalidInputError):
        c.upsert_batch(doc("a", vec(1)))  # type: ignore[arg-type]
    assert c.count() == 0


def test_cosine_rejects_zero_vectors(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4, metric="cosine")
    with pytest.raises(InvalidInputError, match="zero vector"):
        c.upsert(doc("z", [0.0, 0.0, 0.0, 0.0]))
    c.upsert(doc("a", vec(1)))
    with pytest.raises(InvalidInputError, match="zero"):
        c.query(Query([0.0, 0.0, 0.0, 0.0]))


def test_duplicate_ids_in_one_batch_last_wins(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    r = c.upsert_batch([doc("a", vec(1), "first"), doc("b", vec(2)), doc("a", vec(3), "second")])
    assert (r.inserted, r.updated, r.failed) == (2, 0, 0)
    [a] = c.get(["a"])
    assert a.content == "second"
    assert a.embedding is not None
    assert list(a.embedding) == pytest.approx(vec(3), rel=1e-5)
    assert c.count() == 2


def test_dimensions_inferred_from_first_document(make_collection: MakeCollection) -> None:
    c = make_collection()
    before = c.dimensions
    assert before is None
    assert c.query(Query([1.0, 2.0, 3.0])).matches == []
    r = c.upsert_batch([doc("a", [1.0, 2.0, 3.0]), doc("b", [1.0, 2.0, 3.0, 4.0])])
    assert (r.inserted, r.failed, r.failed_ids) == (1, 1, ["b"])
    assert c.dimensions == 3
    with pytest.raises(DimensionMismatchError):
        c.upsert(doc("c", [1.0, 2.0]))
    with pytest.raises(DimensionMismatchError):
        c.query(Query([1.0, 2.0]))
    assert ids(c.query(Query([1.0, 2.0, 3.0]))) == ["a"]


def test_query_rejects_bad_parameters(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert(doc("a", vec(1)))
    for bad in (Query(V, limit=0), Query(V, limit=10_001), Query(V, offset=-1),
                Query(V, min_score=float("nan")), Query([1.0, float("inf"), 0.0, 0.0])):
        with pytest.raises(InvalidInputError):
            c.query(bad)


# ------------------------------------------------------------------ get / delete / count / clear


def test_get_keeps_requested_order_and_omits_missing(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert_batch([doc(i, vec(n)) for n, i in enumerate(["a", "b", "c", "d"])])
    assert ids(c.get(["c", "missing", "a", "d"])) == ["c", "a", "d"]
    assert c.get([]) == []
    assert c.get(["nope"]) == []
    with pytest.raises(InvalidInputError):
        c.get("a")


def test_delete_reports_deleted_and_not_found(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert_batch([doc(i, vec(n)) for n, i in enumerate(["a", "b", "c"])])
    r = c.delete(["b", "x", "b", "y"])
    assert (r.deleted, r.not_found, r.not_found_ids) == (1, 2, ["x", "y"])
    assert c.count() == 2
    assert ids(c.get(["a", "b", "c"])) == ["a", "c"]
    assert sorted(ids(c.query(Query(vec(2), limit=10)))) == ["a", "c"]
    r = c.delete(["a", "c"])
    assert (r.deleted, r.not_found) == (2, 0)
    assert c.count() == 0
    assert c.query(Query(vec(2))).matches == []


def test_count_with_filter_and_clear(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    c.upsert_batch([doc(f"d{i}", vec(i), metadata={"even": i % 2 == 0}) for i in range(10)])
    assert c.count() == 10
    assert c.count(filters.field("even").eq(True)) == 5
    assert c.count(filters.parse({"even": False})) == 5
    c.clear()
    assert c.count() == 0
    assert c.get(["d1"]) == []
    assert c.query(Query(vec(1))).matches == []
    c.upsert(doc("again", vec(1)))
    assert ids(c.query(Query(vec(1)))) == ["again"]


def test_returned_documents_are_copies(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    original = doc("a", vec(1), "text", metadata={"nested": {"k": [1, 2]}, "list": ["x"]}, tags=["t"])
    c.upsert(original)
    original.metadata["nested"]["k"].append(3)
    original.metadata["list"].append("y")
    original.tags.append("u")
    [got] = c.get(["a"])
    assert got.metadata == {"nested": {"k": [1, 2]}, "list": ["x"]}
    assert got.tags == ["t"]
    got.metadata["nested"]["k"].append(99)
    got.tags.append("changed")
    hit = c.query(Query(vec(1), limit=1)).matches[0].document
    hit.metadata["list"].append("z")
    [again] = c.get(["a"])
    assert again.metadata == {"nested": {"k": [1, 2]}, "list": ["x"]}
    assert again.tags == ["t"]


def test_metadata_and_fields_round_trip(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    meta = {
        "nested": {"a": {"b": [1, 2.5, "three", True, None]}},
        "list": ["x", 1, 2.0, False],
        "unicode": "naïve café — 日本語 🚀",
        "ключ": "значение",
        "int": -(2**40),
        "float": 3.25,
        "bool": False,
        "none": None,
        "empty_list": [],
        "empty_dict": {},
    }
    expires = utcnow() + timedelta(days=3)
    d = doc("ü-1", vec(1), "Grüße 👋 \n second line", metadata=meta, tags=["b", "a", "b"],
            scope=Scope(tenant="acme", user="u1", session="s1"), embedding_model="m-1", expires_at=expires)
    c.upsert(d)
    [got] = c.get(["ü-1"])
    assert got.content == "Grüße 👋 \n second line"
    assert got.metadata == meta
    assert got.tags == ["b", "a"]
    assert got.scope == Scope(tenant="acme", user="u1", session="s1")
    assert got.embedding_model == "m-1"
    assert got.expires_at is not None
    assert abs((got.expires_at - expires).total_seconds()) < 1e-3
    assert got.embedding is not None
    assert list(got.embedding) == pytest.approx(vec(1), rel=1e-5)
    [m] = c.query(Query(vec(1), limit=1)).matches
    assert m.document.metadata == meta
    assert m.document.embedding is None


# ------------------------------------------------------------------ TTL


def test_expired_documents_are_never_visible(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4)
    past = utcnow() - timedelta(seconds=1)
    future = utcnow() + timedelta(hours=1)
    c.upsert_batch([
        doc("live", vec(1), metadata={"k": 1}),
        doc("old", vec(1), metadata={"k": 1}, expires_at=past),
        doc("later", vec(2), metadata={"k": 1}, expires_at=future),
    ])
    assert c.count() == 2
    assert c.count(filters.field("k").eq(1)) == 2
    assert ids(c.get(["old", "live", "later"])) == ["live", "later"]
    assert sorted(ids(c.query(Query(vec(1), limit=10)))) == ["later", "live"]
    assert sorted(ids(c.query(Query(vec(1), limit=10, filter=filters.field("k").eq(1))))) == ["later", "live"]
    # an update that sets a past expiry hides a visible document
    c.upsert(doc("live", vec(1), expires_at=past))
    assert c.count() == 1
    assert c.get(["live"]) == []


def test_ttl_option_sets_expiry_and_hides_documents(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4, ttl=timedelta(seconds=0.5))
    start = utcnow()
    explicit = utcnow() + timedelta(hours=2)
    c.upsert_batch([doc("short", vec(1)), doc("explicit", vec(2), expires_at=explicit)])
    got = {d.id: d for d in c.get(["short", "explicit"])}
    exp = got["short"].expires_at
    assert exp is not None
    assert start + timedelta(seconds=0.5) <= exp + timedelta(milliseconds=1)
    assert exp <= utcnow() + timedelta(seconds=0.5)
    assert got["explicit"].expires_at is not None
    assert abs((got["explicit"].expires_at - explicit).total_seconds()) < 1e-3
    time.sleep(0.7)
    assert c.count() == 1
    assert c.get(["short"]) == []
    assert ids(c.query(Query(vec(1), limit=10))) == ["explicit"]


# ------------------------------------------------------------------ dedup and capacity


def test_dedup_exact_content_and_near_duplicates(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=3, dedup=True, dedup_threshold=0.95)
    assert c.upsert(doc("a", [1.0, 0.0, 0.0], "same text")).inserted == 1
    r = c.upsert_batch([
        doc("b", [0.0, 1.0, 0.0], "same text"),        # exact content of a
        doc("c", [0.999, 0.01, 0.0], "other"),         # cosine ~0.99995 with a
        doc("d", [0.0, 0.0, 1.0], "far"),              # new
        doc("e", [0.0, 0.7, 0.7], "e"),                # new
        doc("f", [0.0, 0.72, 0.69], "f"),              # near-duplicate of e, same batch
        doc("g", [0.1, 0.1, 1.0], "far"),              # exact content of d, same batch
    ])
    assert (r.inserted, r.updated, r.failed) == (2, 0, 0)
    assert (r.deduplicated, r.deduplicated_ids) == (4, ["b", "c", "f", "g"])
    assert c.count() == 3
    assert ids(c.get(["a", "b", "c", "d", "e", "f", "g"])) == ["a", "d", "e"]
    # updates of an existing id are never deduplicated
    r = c.upsert(doc("a", [0.0, 0.0, 1.0], "far"))
    assert (r.updated, r.deduplicated) == (1, 0)
    # below the threshold is not a duplicate
    assert c.upsert(doc("h", [1.0, 1.0, 0.0], "h")).inserted == 1


def test_no_dedup_by_default(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=3)
    r = c.upsert_batch([doc("a", [1.0, 0.0, 0.0], "same"), doc("b", [1.0, 0.0, 0.0], "same")])
    assert (r.inserted, r.deduplicated) == (2, 0)


def test_max_documents(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4, max_documents=3)
    r = c.upsert_batch([doc(f"d{i}", vec(i)) for i in range(1, 6)])
    assert (r.inserted, r.failed, r.failed_ids) == (3, 2, ["d4", "d5"])
    assert [e.type for e in r.errors] == [CapacityError, CapacityError]
    assert [str(e) for e in r.errors] == [f"{i}: max_documents limit of 3 reached; not inserted" for i in ("d4", "d5")]
    with pytest.raises(CapacityError, match="max_documents") as info:
        c.upsert(doc("d6", vec(6)))
    assert c.upsert_batch([doc("d7", vec(7))]).errors[0].type is type(info.value)
    assert c.upsert(doc("d1", vec(7), "updated")).updated == 1
    r = c.upsert_batch([doc("d2", vec(8)), doc("d9", vec(9))])
    assert (r.updated, r.failed, r.failed_ids) == (1, 1, ["d9"])
    assert c.count() == 3
    c.delete(["d3"])
    assert c.upsert(doc("d6", vec(6))).inserted == 1
    assert c.count() == 3


# ------------------------------------------------------------------ async twins


async def test_async_twins_match_sync(store: VectorStore) -> None:
    sync = store.collection("sync", CollectionOptions(dimensions=4))
    asy = store.collection("asy", CollectionOptions(dimensions=4))
    batch = [doc(f"d{i}", vec(i), f"text {i}", metadata={"i": i, "odd": i % 2 == 1}, tags=[f"t{i % 3}"])
             for i in range(12)]
    bad = [*batch[:2], doc("bad", [1.0, 2.0])]
    r_sync, r_async = sync.upsert_batch(batch), await asy.aupsert_batch(batch)
    assert r_sync == r_async
    assert sync.upsert_batch(bad) == await asy.aupsert_batch(bad)
    assert sync.upsert(doc("x", vec(20), "x")) == await asy.aupsert(doc("x", vec(20), "x"))
    for q in (Query(vec(3), limit=5), Query(vec(4), limit=4, offset=2, include_embeddings=True),
              Query(vec(5), limit=20, filter=filters.field("odd").eq(True)), Query(vec(6), min_score=0.9)):
        assert summary(sync.query(q)) == summary(await asy.aquery(q))
    assert [doc_fields(d) for d in sync.get(["d3", "zz", "d1"])] == \
        [doc_fields(d) for d in await asy.aget(["d3", "zz", "d1"])]
    f = filters.tags_any("t1")
    assert sync.count() == await asy.acount() == 13
    assert sync.count(f) == await asy.acount(f) == 4
    assert sync.delete(["d1", "nope"]) == await asy.adelete(["d1", "nope"])
    with pytest.raises(DimensionMismatchError):
        await asy.aupsert(doc("y", [1.0]))
    sync.clear()
    await asy.aclear()
    assert sync.count() == await asy.acount() == 0


def test_collections_are_isolated(store: VectorStore) -> None:
    a = store.collection("iso-a", CollectionOptions(dimensions=4))
    b = store.collection("iso-b", CollectionOptions(dimensions=4))
    a.upsert(doc("same", vec(1), "in a"))
    b.upsert(doc("same", vec(2), "in b"))
    assert [d.content for d in a.get(["same"])] == ["in a"]
    assert [d.content for d in b.get(["same"])] == ["in b"]
    assert {"iso-a", "iso-b"} <= set(store.list_collections())
    assert store.drop_collection("iso-a") is True
    assert store.drop_collection("iso-a") is False
    assert "iso-a" not in store.list_collections()
    assert b.count() == 1
    assert store.collection("iso-a", CollectionOptions(dimensions=4)).count() == 0


def test_include_embeddings(make_collection: MakeCollection) -> None:
    c = make_collection(dimensions=4, metric="dot")
    raw = [0.5, -2.0, 3.0, 10.0]
    c.upsert(doc("a", raw))
    [m] = c.query(Query(raw, include_embeddings=True)).matches
    assert isinstance(m.document.embedding, list)
    assert m.document.embedding == pytest.approx(raw, rel=1e-6)
    assert c.query(Query(raw)).matches[0].document.embedding is None
    vals = np.asarray(c.get(["a"])[0].embedding)
    assert vals.tolist() == pytest.approx(raw, rel=1e-6)
