"""``InstrumentedStore``/``InstrumentedCollection`` on the memory store: every operation of the
collection protocol, sync and async, with exact counts; errors by type; no documents in events."""

from __future__ import annotations

import pytest

from aixpy.errors import InvalidInputError
from aixpy.telemetry import VectorStoreEvent
from aixpy.vectorstores import Document, InstrumentedCollection, InstrumentedStore, Query
from aixpy.vectorstores import filters as F
from aixpy.vectorstores import instrumented as instrumented_module
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.memory import MemoryStore

from .conftest import Events, assert_no_content


def docs() -> list[Document]:
    return [Document("d1", "zebra-otter secret", [1.0, 0.0, 0.0], metadata={"k": "quokka-lynx"}),
            Document("d2", "second", [0.0, 1.0, 0.0], metadata={"k": "v"}),
            Document("d3", "third", [0.0, 0.0, 1.0])]


def ops(events: Events) -> list[tuple[str, str | None, int | None, int | None]]:
    out = []
    for e in events.of(VectorStoreEvent):
        assert isinstance(e, VectorStoreEvent)
        assert e.provider == "memory"
        assert e.duration >= 0
        out.append((e.operation, e.collection, e.count, e.requested))
    return out


def test_every_sync_operation_is_one_event_with_exact_counts(events: Events) -> None:
    store = InstrumentedStore(MemoryStore())
    coll = store.collection("docs")
    assert isinstance(coll, BaseCollection)  # usable wherever a collection is
    assert coll.upsert_batch(docs()).inserted == 3
    assert coll.upsert(Document("d1", "again", [1.0, 0.1, 0.0])).updated == 1
    assert len(coll.query(Query(embedding=[1.0, 0.0, 0.0], limit=2))) == 2
    assert [d.id for d in coll.get(["d2", "nope"])] == ["d2"]
    assert coll.count(F.field("k").eq("v")) == 1
    assert coll.delete(["d3", "nope"]).deleted == 1
    assert coll.dimensions == 3
    assert coll.name == "docs"
    coll.clear()
    assert store.list_collections() == ["docs"]
    assert store.drop_collection("docs") is True
    assert ops(events) == [
        ("open", "docs", None, None),
        ("upsert_batch", "docs", 3, 3),
        ("upsert", "docs", 1, 1),
        ("query", "docs", 2, 2),
        ("get", "docs", 1, 2),
        ("count", "docs", 1, None),
        ("delete", "docs", 1, 2),
        ("clear", "docs", None, None),
        ("list_collections", None, 1, None),
        ("drop_collection", "docs", 1, None),
    ]
    assert_no_content(events, "zebra-otter", "quokka-lynx", "secret")


async def test_every_async_operation_calls_the_inner_async_method(events: Events) -> None:
    coll = InstrumentedStore(MemoryStore()).collection("docs")
    assert (await coll.aupsert_batch(docs())).inserted == 3
    assert (await coll.aupsert(Document("d4", "four", [1.0, 1.0, 0.0]))).inserted == 1
    assert len(await coll.aquery(Query(embedding=[1.0, 0.0, 0.0], limit=3))) == 3
    assert len(await coll.aget(["d1", "d2"])) == 2
    assert await coll.acount() == 4
    assert (await coll.adelete(["d1"])).deleted == 1
    await coll.aclear()
    assert ops(events)[1:] == [
        ("upsert_batch", "docs", 3, 3), ("upsert", "docs", 1, 1), ("query", "docs", 3, 3), ("get", "docs", 2, 2),
        ("count", "docs", 4, None), ("delete", "docs", 1, 1), ("clear", "docs", None, None)]


def test_batch_failures_and_duplicates_are_counted(events: Events) -> None:
    from aixpy.vectorstores import CollectionOptions

    coll = InstrumentedStore(MemoryStore()).collection("d", CollectionOptions(dedup=True))
    batch = [*docs(), Document("bad", "x", [float("nan"), 0.0, 0.0]), Document("dup", "zebra-otter secret",
                                                                               [1.0, 0.0, 0.0])]
    result = coll.upsert_batch(batch)
    assert (result.inserted, result.failed, result.deduplicated) == (3, 1, 1)
    e = events.of(VectorStoreEvent)[-1]
    assert isinstance(e, VectorStoreEvent)
    assert (e.count, e.requested, e.failed, e.deduplicated, e.error) == (3, 5, 1, 1, None)


def test_an_error_is_recorded_by_type_and_reraised(events: Events) -> None:
    coll = InstrumentedCollection(MemoryStore().collection("docs"), provider="memory")
    coll.upsert_batch(docs())
    with pytest.raises(InvalidInputError):
        coll.query(Query(embedding=[0.0, 0.0, 0.0]))  # a zero vector has no cosine similarity
    e = events.of(VectorStoreEvent)[-1]
    assert isinstance(e, VectorStoreEvent)
    assert (e.operation, e.error, e.count, e.ok) == ("query", "InvalidInputError", None, False)


def test_nothing_is_measured_nor_built_when_nobody_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("built while nobody listens")

    monkeypatch.setattr(instrumented_module, "Timer", forbidden)
    monkeypatch.setattr(instrumented_module, "VectorStoreEvent", forbidden)
    store = InstrumentedStore(MemoryStore())
    coll = store.collection("docs")
    assert coll.upsert_batch(docs()).inserted == 3
    assert len(coll.query(Query(embedding=[1.0, 0.0, 0.0]))) == 3
    assert store.drop_collection("docs")


def test_own_handler_and_a_broken_one() -> None:
    mine: list[object] = []
    InstrumentedStore(MemoryStore(), on_event=mine.append).collection("a").count()
    assert [getattr(e, "operation", None) for e in mine] == ["open", "count"]

    def broken(e: object) -> None:
        raise RuntimeError("exporter down")

    coll = InstrumentedStore(MemoryStore(), on_event=broken).collection("b")
    assert coll.upsert_batch(docs()).inserted == 3
