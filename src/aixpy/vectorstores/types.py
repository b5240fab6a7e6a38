"""Documents, queries and results shared by every vector-store backend.

Score conventions (identical on every backend):

- ``cosine``: ``score`` = cosine similarity in [-1, 1]; ``distance`` = 1 - score.
- ``dot``: ``score`` = dot product; ``distance`` = -score.
- ``euclidean``: ``distance`` = L2 distance; ``score`` = 1 / (1 + distance).

Higher score is always better; results are ordered by score descending, ties by id ascending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aixpy.errors import AixpyError, CapacityError

if TYPE_CHECKING:
    from aixpy.vectorstores.filters import Filter

__all__ = [
    "DeleteResult",
    "Document",
    "DocumentError",
    "Match",
    "Metric",
    "Query",
    "QueryResult",
    "Scope",
    "SearchMode",
    "UpsertResult",
    "utcnow",
]

Metric = Literal["cosine", "dot", "euclidean"]
METRICS: tuple[Metric, ...] = ("cosine", "dot", "euclidean")
SearchMode = Literal["vector", "keyword", "hybrid"]
MODES: tuple[SearchMode, ...] = ("vector", "keyword", "hybrid")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of time aixpy stores)."""
    return datetime.now(UTC)


@dataclass(slots=True)
class Scope:
    """Who a document belongs to. ``None`` means "not scoped" on that axis.

    Isolation is strict: a scope filter on ``tenant="acme"`` never matches a document whose tenant
    is ``None``.
    """

    tenant: str | None = None
    user: str | None = None
    session: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("tenant", self.tenant), ("user", self.user),
                                  ("session", self.session)) if v is not None}


@dataclass(slots=True)
class Document:
    """One stored item: text content, its embedding and everything used to filter it.

    ``embedding`` may be any float sequence (list, tuple, numpy array); backends validate it
    (length, NaN/Inf) on upsert. ``created_at``/``updated_at`` are set by the store.
    ``expires_at`` makes a document invisible from that instant on (it is never returned after).
    """

    id: str
    content: str = ""
    embedding: Sequence[float] | None = None
    embedding_model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    scope: Scope = field(default_factory=Scope)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def __repr__(self) -> str:
        dims = None if self.embedding is None else len(self.embedding)
        text = self.content if len(self.content) <= 40 else self.content[:37] + "..."
        return f"Document(id={self.id!r}, content={text!r}, dims={dims}, tags={self.tags!r})"


@dataclass(slots=True)
class Query:
    """A nearest-neighbour, keyword or hybrid query.

    Args:
        embedding: the query vector (required by the ``vector`` and ``hybrid`` modes).
        limit: how many matches to return, 1..10000.
        offset: how many of the best matches to skip first (paging).
        min_score: drop matches scoring below this (in the metric's score convention). Vector mode
            only: a similarity threshold means nothing for BM25 or fused ranks (``InvalidInputError``).
        metric: ``None`` means the collection's metric. The exact ``memory`` backend can score any
            metric; indexed backends (qdrant, pgvector, firestore) raise ``InvalidInputError`` for a
            metric other than the collection's.
        filter: a filter from :mod:`aixpy.vectorstores.filters`, or ``None``.
        include_embeddings: return each match's vector too.
        text: the query words (required by the ``keyword`` and ``hybrid`` modes).
        mode: ``"vector"`` (default: nearest neighbours of ``embedding``), ``"keyword"`` (BM25 over the
            documents' content: ``score`` is the BM25 score) or ``"hybrid"`` (both, fused by reciprocal
            rank fusion: ``score`` is the fused score). See :mod:`aixpy.vectorstores.keyword`. In the
            last two modes ``distance`` is ``-score``. A backend without a keyword index (firestore)
            raises :class:`~aixpy.errors.UnsupportedQueryError`.
        rrf_k: the ``k`` of reciprocal rank fusion (hybrid mode), a positive integer; 60 by default.
    """

    embedding: Sequence[float] | None = None
    limit: int = 10
    offset: int = 0
    min_score: float | None = None
    metric: Metric | None = None
    filter: Filter | None = None
    include_embeddings: bool = False
    text: str | None = None
    mode: SearchMode = "vector"
    rrf_k: int = 60


@dataclass(slots=True)
class Match:
    document: Document
    score: float
    distance: float
    rank: int


@dataclass(slots=True)
class QueryResult:
    matches: list[Match]
    offset: int
    limit: int
    took_ms: float = 0.0

    def __len__(self) -> int:
        return len(self.matches)

    def __iter__(self) -> Any:
        return iter(self.matches)


@dataclass(frozen=True, slots=True, eq=False)
class DocumentError:
    """Why one document of an upsert was not stored: its id and the typed error.

    ``str()`` is ``"<id>: <message>"``; ``error`` is what a one-document ``upsert`` raises
    (:class:`~aixpy.errors.CapacityError` for ``max_documents``, an
    :class:`~aixpy.errors.InvalidInputError` such as :class:`~aixpy.errors.DimensionMismatchError`...).
    """

    doc_id: str
    error: AixpyError

    @property
    def type(self) -> type[AixpyError]:
        return type(self.error)

    @property
    def message(self) -> str:
        return str(self.error)

    def __str__(self) -> str:
        return f"{self.doc_id}: {self.error}"

    def __eq__(self, other: object) -> bool:  # exceptions compare by identity: compare what they say
        if not isinstance(other, DocumentError):
            return NotImplemented
        return (self.doc_id, self.type, self.message) == (other.doc_id, other.type, other.message)

    def __hash__(self) -> int:
        return hash((self.doc_id, self.type, self.message))


@dataclass(slots=True)
class UpsertResult:
    """Outcome of an upsert. Nothing is silent: every input id is in exactly one bucket."""

    inserted: int = 0
    updated: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)
    errors: list[DocumentError] = field(default_factory=list)
    deduplicated: int = 0
    deduplicated_ids: list[str] = field(default_factory=list)
    inserted_ids: list[str] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return self.inserted + self.updated

    def add_inserted(self, doc_id: str) -> None:
        self.inserted += 1
        self.inserted_ids.append(doc_id)

    def add_updated(self, doc_id: str) -> None:
        self.updated += 1
        self.updated_ids.append(doc_id)

    def add_deduplicated(self, doc_id: str) -> None:
        self.deduplicated += 1
        self.deduplicated_ids.append(doc_id)

    def add_failure(self, doc_id: str, error: AixpyError) -> None:
        self.failed += 1
        self.failed_ids.append(doc_id)
        self.errors.append(DocumentError(doc_id, error))

    def add_over_limit(self, doc_id: str, max_documents: int) -> None:
        """``doc_id`` was not inserted: the collection holds ``max_documents`` already."""
        self.add_failure(doc_id, CapacityError(f"max_documents limit of {max_documents} reached; not inserted"))

    def merge(self, other: UpsertResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.failed += other.failed
        self.failed_ids.extend(other.failed_ids)
        self.errors.extend(other.errors)
        self.deduplicated += other.deduplicated
        self.deduplicated_ids.extend(other.deduplicated_ids)
        self.inserted_ids.extend(other.inserted_ids)
        self.updated_ids.extend(other.updated_ids)


@dataclass(slots=True)
class DeleteResult:
    deleted: int = 0
    not_found: int = 0
    not_found_ids: list[str] = field(default_factory=list)
