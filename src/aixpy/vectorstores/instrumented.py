"""Instrumented vector stores: one :class:`~aixpy.telemetry.VectorStoreEvent` per operation.

:class:`InstrumentedStore` wraps any :class:`~aixpy.vectorstores.base.VectorStore`; the collections it
opens are :class:`InstrumentedCollection` s (usable wherever a collection is: indexers, the CLI).
Every operation of the collection protocol, sync and async, is timed and counted; the async methods
call the wrapped collection's own async methods (a native async backend stays native). Events carry
the backend, the collection name, the operation and counts — never documents, vectors or filters.
With nobody listening an operation goes straight through: no clock read, no event built.

::

    store = InstrumentedStore(vectorstores.new({"provider": "memory"}), on_event=print)
    docs = store.collection("docs")
    docs.upsert_batch([...])          # -> VectorStoreEvent(operation="upsert_batch", count=..., ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TypeVar

from aixpy.telemetry import Handler, Timer, VectorStoreEvent, emit, error_name, listening
from aixpy.vectorstores.base import BaseCollection, CollectionOptions, PreparedDoc, Vector, VectorStore
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.types import DeleteResult, Document, Match, Query, QueryResult, UpsertResult

__all__ = ["InstrumentedCollection", "InstrumentedStore"]

T = TypeVar("T")


class _Quiet:
    """The operation recorder when nobody listens: does nothing."""

    __slots__ = ()

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def got(self, value: T) -> T:
        return value


_QUIET = _Quiet()


class _Op(_Quiet):
    """One operation: counts what it returned (:meth:`got`) and emits its event on the way out."""

    __slots__ = ("_collection", "_count", "_deduplicated", "_failed", "_name", "_on_event", "_provider",
                 "_requested", "_timer")

    def __init__(self, provider: str, collection: str | None, name: str, requested: int | None,
                 on_event: Handler | None) -> None:
        self._provider, self._collection, self._name, self._requested = provider, collection, name, requested
        self._on_event = on_event
        self._count: int | None = None
        self._failed: int | None = None
        self._deduplicated: int | None = None
        self._timer = Timer()

    def got(self, value: T) -> T:
        if isinstance(value, UpsertResult):
            self._count, self._failed, self._deduplicated = value.succeeded, value.failed, value.deduplicated
        elif isinstance(value, QueryResult):
            self._count = len(value.matches)
        elif isinstance(value, DeleteResult):
            self._count = value.deleted
        elif isinstance(value, list):
            self._count = len(value)
        elif isinstance(value, bool | int):
            self._count = int(value)
        return value

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        emit(VectorStoreEvent(
            timestamp=self._timer.timestamp, duration=self._timer.elapsed(),
            error=None if e is None else error_name(e), provider=self._provider, operation=self._name,
            collection=self._collection, count=self._count, requested=self._requested, failed=self._failed,
            deduplicated=self._deduplicated,
        ), self._on_event)


def _size(items: Sequence[object]) -> int | None:
    try:
        return len(items)
    except TypeError:
        return None


class InstrumentedCollection(BaseCollection):
    """A collection that emits a :class:`~aixpy.telemetry.VectorStoreEvent` per operation of ``inner``.

    Attributes:
        inner: the wrapped collection.
        provider: the backend's name, for the events (``memory``, ``qdrant``...).
        on_event: this wrapper's own handler (global subscribers get the events too).
    """

    def __init__(self, inner: BaseCollection, *, provider: str = "", on_event: Handler | None = None) -> None:
        self.inner = inner
        self.provider = provider
        self.on_event = on_event
        self.name = inner.name

    def __repr__(self) -> str:
        return f"InstrumentedCollection({self.inner!r})"

    @property
    def options(self) -> CollectionOptions:
        return self.inner.options

    @options.setter
    def options(self, value: CollectionOptions) -> None:
        self.inner.options = value

    @property
    def dimensions(self) -> int | None:
        return self.inner.dimensions

    @property
    def supports_keyword(self) -> bool:
        return self.inner.supports_keyword

    def _op(self, name: str, requested: int | None = None) -> _Quiet:
        if not listening(self.on_event):
            return _QUIET
        return _Op(self.provider, self.name, name, requested, self.on_event)

    # ------------------------------------------------------------------ sync

    def upsert(self, doc: Document) -> UpsertResult:
        with self._op("upsert", 1) as op:
            return op.got(self.inner.upsert(doc))

    def upsert_batch(self, docs: Sequence[Document]) -> UpsertResult:
        with self._op("upsert_batch", _size(docs)) as op:
            return op.got(self.inner.upsert_batch(docs))

    def query(self, query: Query) -> QueryResult:
        with self._op("query", query.limit) as op:
            return op.got(self.inner.query(query))

    def get(self, ids: Sequence[str]) -> list[Document]:
        with self._op("get", _size(ids)) as op:
            return op.got(self.inner.get(ids))

    def delete(self, ids: Sequence[str]) -> DeleteResult:
        with self._op("delete", _size(ids)) as op:
            return op.got(self.inner.delete(ids))

    def count(self, filter: Filter | None = None) -> int:
        with self._op("count") as op:
            return op.got(self.inner.count(filter))

    def clear(self) -> None:
        with self._op("clear"):
            self.inner.clear()

    # ------------------------------------------------------------------ async (the inner's own)

    async def aupsert(self, doc: Document) -> UpsertResult:
        with self._op("upsert", 1) as op:
            return op.got(await self.inner.aupsert(doc))

    async def aupsert_batch(self, docs: Sequence[Document]) -> UpsertResult:
        with self._op("upsert_batch", _size(docs)) as op:
            return op.got(await self.inner.aupsert_batch(docs))

    async def aquery(self, query: Query) -> QueryResult:
        with self._op("query", query.limit) as op:
            return op.got(await self.inner.aquery(query))

    async def aget(self, ids: Sequence[str]) -> list[Document]:
        with self._op("get", _size(ids)) as op:
            return op.got(await self.inner.aget(ids))

    async def adelete(self, ids: Sequence[str]) -> DeleteResult:
        with self._op("delete", _size(ids)) as op:
            return op.got(await self.inner.adelete(ids))

    async def acount(self, filter: Filter | None = None) -> int:
        with self._op("count") as op:
            return op.got(await self.inner.acount(filter))

    async def aclear(self) -> None:
        with self._op("clear"):
            await self.inner.aclear()

    # ------------------------------------------------------------------ primitives: the inner's (the
    # public methods above never reach them; they keep this a complete BaseCollection)

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        return self.inner._upsert_prepared(docs)

    def _query(self, vec: Vector, query: Query) -> QueryResult:
        return self.inner._query(vec, query)

    def _keyword(self, terms: list[str], filter: Filter | None, limit: int, with_embeddings: bool) -> list[Match]:
        return self.inner._keyword(terms, filter, limit, with_embeddings)

    def _get(self, ids: list[str]) -> list[Document]:
        return self.inner._get(ids)

    def _delete(self, ids: list[str]) -> DeleteResult:
        return self.inner._delete(ids)

    def _count(self, filter: Filter | None) -> int:
        return self.inner._count(filter)

    def _clear(self) -> None:
        self.inner._clear()


class InstrumentedStore(VectorStore):
    """A store whose collections are :class:`InstrumentedCollection` s; opening, listing and dropping
    collections emit events too (``open``, ``list_collections``, ``drop_collection``)."""

    def __init__(self, inner: VectorStore, *, on_event: Handler | None = None) -> None:
        super().__init__(default_options=inner.default_options)
        self.inner = inner
        self.provider = inner.provider
        self.on_event = on_event

    def __repr__(self) -> str:
        return f"InstrumentedStore({self.inner!r})"

    def _op(self, name: str, collection: str | None = None) -> _Quiet:
        if not listening(self.on_event):
            return _QUIET
        return _Op(self.provider, collection, name, None, self.on_event)

    def collection(self, name: str, options: CollectionOptions | None = None) -> InstrumentedCollection:
        with self._op("open", name):
            inner = self.inner.collection(name, options)
        return InstrumentedCollection(inner, provider=self.provider, on_event=self.on_event)

    def list_collections(self) -> list[str]:
        with self._op("list_collections") as op:
            return op.got(self.inner.list_collections())

    def drop_collection(self, name: str) -> bool:
        with self._op("drop_collection", name) as op:
            return op.got(self.inner.drop_collection(name))

    def close(self) -> None:
        self.inner.close()
