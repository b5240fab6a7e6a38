"""The ``Collection`` protocol every backend implements, and the ``VectorStore`` that hands them out.

Backends subclass :class:`BaseCollection` and implement the synchronous ``_``-prefixed primitives;
validation, defaults and the async twins live here once, so every backend behaves the same.
A backend with a native async driver may override the ``a*`` methods.
"""

from __future__ import annotations

import asyncio
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aixpy.errors import InvalidInputError, UnsupportedQueryError
from aixpy.vectorstores import keyword as kw
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.types import (
    METRICS,
    DeleteResult,
    Document,
    Match,
    Metric,
    Query,
    QueryResult,
    UpsertResult,
    utcnow,
)
from aixpy.vectorstores.validation import (
    check_ids,
    validate_collection_name,
    validate_document,
    validate_query,
)

__all__ = ["BaseCollection", "Collection", "CollectionOptions", "PreparedDoc", "SharedStateCollection", "VectorStore"]

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class CollectionOptions:
    """Per-collection behaviour. Same meaning on every backend.

    Args:
        dimensions: vector length; ``None`` takes it from the first document.
        metric: ``cosine`` (default), ``dot`` or ``euclidean``.
        dedup: skip a *new* document whose content is identical to (sha256), or whose embedding is
            within ``dedup_threshold`` cosine of, a stored one. Updates of an existing id are never
            deduplicated.
        dedup_threshold: cosine similarity at or above which two embeddings are duplicates.
        ttl: default lifetime for documents that have no ``expires_at``.
        max_documents: refuse inserts beyond this many live documents (updates always allowed).
    """

    dimensions: int | None = None
    metric: Metric = "cosine"
    dedup: bool = False
    dedup_threshold: float = 0.99
    ttl: timedelta | None = None
    max_documents: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InvalidInputError(f"unknown metric {self.metric!r}; use one of {', '.join(METRICS)}")
        for name in ("dimensions", "max_documents"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InvalidInputError(f"{name} must be a positive integer, got {v!r}")
        if not 0.0 < self.dedup_threshold <= 1.0:
            raise InvalidInputError("dedup_threshold must be in (0, 1]")
        if self.ttl is not None and self.ttl.total_seconds() <= 0:
            raise InvalidInputError("ttl must be positive")


def _json_copy(value: Any) -> Any:
    """Deep copy of JSON-like metadata; tuples become lists (what every backend stores)."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_copy(v) for v in value]
    return value


@dataclass(slots=True)
class PreparedDoc:
    """A validated document with its vector as float32 and times filled in."""

    doc: Document
    vector: Vector


@runtime_checkable
class Collection(Protocol):
    """What every vector-store collection offers, sync and async."""

    name: str
    options: CollectionOptions

    @property
    def dimensions(self) -> int | None: ...
    def upsert(self, doc: Document) -> UpsertResult: ...
    def upsert_batch(self, docs: Sequence[Document]) -> UpsertResult: ...
    def query(self, query: Query) -> QueryResult: ...
    def get(self, ids: Sequence[str]) -> list[Document]: ...
    def delete(self, ids: Sequence[str]) -> DeleteResult: ...
    def count(self, filter: Filter | None = None) -> int: ...
    def clear(self) -> None: ...
    async def aupsert(self, doc: Document) -> UpsertResult: ...
    async def aupsert_batch(self, docs: Sequence[Document]) -> UpsertResult: ...
    async def aquery(self, query: Query) -> QueryResult: ...
    async def aget(self, ids: Sequence[str]) -> list[Document]: ...
    async def adelete(self, ids: Sequence[str]) -> DeleteResult: ...
    async def acount(self, filter: Filter | None = None) -> int: ...
    async def aclear(self) -> None: ...


class BaseCollection(ABC):
    """Shared logic of every backend: validation, times, TTL defaults, async twins.

    Subclasses implement ``_upsert_prepared``, ``_query``, ``_get``, ``_delete``, ``_count`` and
    ``_clear``. All public methods are thread-safe through ``self._lock``.
    """

    def __init__(self, name: str, options: CollectionOptions | None = None) -> None:
        self.name = validate_collection_name(name)
        self.options = options or CollectionOptions()
        self._dimensions = self.options.dimensions
        self._lock = threading.RLock()

    @property
    def dimensions(self) -> int | None:
        return self._dimensions

    # ------------------------------------------------------------------ preparation (no I/O)

    def _prepare(self, doc: Document, dims: int | None) -> PreparedDoc:
        vec = validate_document(doc, dims)
        now = utcnow()
        expires = doc.expires_at
        if expires is None and self.options.ttl is not None:
            expires = now + self.options.ttl
        stored = Document(
            id=doc.id,
            content=doc.content,
            embedding=None,
            embedding_model=doc.embedding_model,
            metadata=_json_copy(doc.metadata),
            tags=list(dict.fromkeys(doc.tags)),
            scope=type(doc.scope)(doc.scope.tenant, doc.scope.user, doc.scope.session),
            created_at=doc.created_at or now,
            updated_at=now,
            expires_at=expires,
        )
        if self.options.metric == "cosine":
            n = float(np.linalg.norm(vec))
            if n == 0.0:
                raise InvalidInputError(f"document {doc.id!r}: a zero vector has no cosine similarity")
        return PreparedDoc(stored, vec)

    def _prepare_batch(self, docs: Sequence[Document], result: UpsertResult) -> list[PreparedDoc]:
        if isinstance(docs, Document):
            raise InvalidInputError("upsert_batch takes a list of documents; use upsert() for one")
        prepared: list[PreparedDoc] = []
        seen: dict[str, int] = {}
        dims = self._dimensions
        for doc in docs:
            try:
                p = self._prepare(doc, dims)
            except InvalidInputError as e:
                result.add_failure(getattr(doc, "id", repr(doc)), e)
                continue
            if dims is None:
                dims = int(p.vector.shape[0])
            if p.doc.id in seen:  # last write wins inside one batch, like sequential upserts
                prepared[seen[p.doc.id]] = p
                continue
            seen[p.doc.id] = len(prepared)
            prepared.append(p)
        return prepared

    # ------------------------------------------------------------------ public sync API

    def upsert(self, doc: Document) -> UpsertResult:
        """Insert or update one document. Invalid input raises instead of being reported."""
        with self._lock:
            p = self._prepare(doc, self._dimensions)
            result = self._upsert_prepared([p])
        return self._single(result)

    @staticmethod
    def _single(result: UpsertResult) -> UpsertResult:
        """A one-document upsert raises what a batch would report (capacity or invalid input)."""
        if result.errors:
            raise result.errors[0].error
        return result

    def upsert_batch(self, docs: Sequence[Document]) -> UpsertResult:
        """Insert or update many; invalid documents are reported in the result, never raised."""
        result = UpsertResult()
        with self._lock:
            prepared = self._prepare_batch(docs, result)
            if prepared:
                result.merge(self._upsert_prepared(prepared))
        return result

    def query(self, query: Query) -> QueryResult:
        """Run ``query`` in its mode: vector, keyword (BM25) or hybrid (both, fused by RRF)."""
        vec = self._checked_query(query, self._dimensions)
        if query.mode != "vector":
            with self._lock:
                return self._text_query(vec, query)
        if vec is None:
            return QueryResult([], query.offset, query.limit)
        with self._lock:
            return self._query(vec, query)

    def _checked_query(self, query: Query, dims: int | None) -> Vector | None:
        """The validated query vector; ``None`` when the collection is still empty of any dimension
        (or for a keyword query, which has none). Raises for a keyword mode the backend cannot run."""
        vec = validate_query(query, dims)
        if query.mode != "vector" and not self.supports_keyword:
            self._keyword_unsupported()
        if query.mode == "keyword":
            return None
        if (query.metric or self.options.metric) == "cosine" and not np.any(vec):
            raise InvalidInputError("a zero query vector has no cosine similarity")
        return None if dims is None else vec

    # ------------------------------------------------------------------ keyword and hybrid search

    @property
    def supports_keyword(self) -> bool:
        """Whether this collection has a keyword index (``mode="keyword"`` / ``"hybrid"`` queries)."""
        return False

    def _keyword_unsupported(self) -> None:
        raise UnsupportedQueryError(f"collection {self.name!r} ({type(self).__name__}) has no keyword index: "
                                    "keyword and hybrid queries are not supported; use mode='vector'")

    def _text_query(self, vec: Vector | None, query: Query) -> QueryResult:
        """A keyword or hybrid query (validated): :func:`~aixpy.vectorstores.keyword.text_plan` driven
        with the ``_keyword`` and ``_query`` primitives."""
        t0 = time.perf_counter()
        plan = kw.text_plan(query, vec is not None)
        try:
            leg = next(plan)
            while True:
                q = leg.query
                found = self._keyword(leg.terms, q.filter, q.limit, q.include_embeddings) if leg.terms is not None \
                    else self._query(vec, q).matches  # type: ignore[arg-type]  # a vector leg only comes with vec
                leg = plan.send(found)
        except StopIteration as stop:
            result: QueryResult = stop.value
        result.took_ms = (time.perf_counter() - t0) * 1000.0
        return result

    def _keyword(self, terms: list[str], filter: Filter | None, limit: int, with_embeddings: bool) -> list[Match]:
        """The best ``limit`` live documents matching ``filter`` that contain any of ``terms``, by BM25
        score descending then id (``score`` = the score, ``distance`` = ``-score``, ranks from 1).
        Backends with a keyword index override this and set ``supports_keyword``."""
        self._keyword_unsupported()
        return []

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Documents for ``ids`` in the order asked (each once); missing or expired ids are omitted."""
        wanted = list(dict.fromkeys(check_ids(ids)))
        with self._lock:
            return self._get(wanted)

    def delete(self, ids: Sequence[str]) -> DeleteResult:
        wanted = list(dict.fromkeys(check_ids(ids)))
        with self._lock:
            return self._delete(wanted)

    def count(self, filter: Filter | None = None) -> int:
        """Live (unexpired) documents matching ``filter``."""
        with self._lock:
            return self._count(filter)

    def clear(self) -> None:
        with self._lock:
            self._clear()

    # ------------------------------------------------------------------ async twins

    async def aupsert(self, doc: Document) -> UpsertResult:
        return await asyncio.to_thread(self.upsert, doc)

    async def aupsert_batch(self, docs: Sequence[Document]) -> UpsertResult:
        return await asyncio.to_thread(self.upsert_batch, docs)

    async def aquery(self, query: Query) -> QueryResult:
        return await asyncio.to_thread(self.query, query)

    async def aget(self, ids: Sequence[str]) -> list[Document]:
        return await asyncio.to_thread(self.get, ids)

    async def adelete(self, ids: Sequence[str]) -> DeleteResult:
        return await asyncio.to_thread(self.delete, ids)

    async def acount(self, filter: Filter | None = None) -> int:
        return await asyncio.to_thread(self.count, filter)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    # ------------------------------------------------------------------ backend primitives

    @abstractmethod
    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        """Store validated docs (ids unique within the list). Apply dedup and max_documents.

        Must set ``self._dimensions`` from the first vector when it is ``None``.
        Returned ``created_at`` of an updated document must be the original one.
        """

    @abstractmethod
    def _query(self, vec: Vector, query: Query) -> QueryResult: ...

    @abstractmethod
    def _get(self, ids: list[str]) -> list[Document]: ...

    @abstractmethod
    def _delete(self, ids: list[str]) -> DeleteResult: ...

    @abstractmethod
    def _count(self, filter: Filter | None) -> int: ...

    @abstractmethod
    def _clear(self) -> None: ...


class SharedStateCollection(BaseCollection):
    """A collection object that is a view on state its store owns (``handle``: ``name``, ``options``,
    ``lock``). Every object opened on one collection shares its options, dimensions and lock, so each
    sees what another wrote (e.g. the dimensions learned from the first document).
    """

    def __init__(self, handle: Any) -> None:
        self._h = handle
        super().__init__(handle.name, handle.options)
        self._lock = handle.lock

    def _shared_dimensions(self) -> int | None:
        """The collection's dimensions as the store knows them now (backends may look them up)."""
        dims: int | None = self._h.options.dimensions
        return dims

    @property
    def _dimensions(self) -> int | None:
        return self._shared_dimensions()

    @_dimensions.setter
    def _dimensions(self, value: int | None) -> None:  # BaseCollection.__init__ assigns it
        pass

    @property
    def options(self) -> CollectionOptions:
        opts: CollectionOptions = self._h.options
        return opts

    @options.setter
    def options(self, value: CollectionOptions) -> None:
        pass


class VectorStore(ABC):
    """A backend instance: hands out named collections and owns their resources."""

    provider: str = ""

    def __init__(self, *, default_options: CollectionOptions | None = None) -> None:
        self.default_options = default_options or CollectionOptions()

    @abstractmethod
    def collection(self, name: str, options: CollectionOptions | None = None) -> BaseCollection:
        """Open (creating if needed) collection ``name``."""

    @abstractmethod
    def list_collections(self) -> list[str]: ...

    @abstractmethod
    def drop_collection(self, name: str) -> bool:
        """Delete a collection and its data; return whether it existed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (files, connections). Idempotent."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
