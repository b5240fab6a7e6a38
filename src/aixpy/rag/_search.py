"""The query a RAG search sends to its collection (vector or hybrid), shared by every search entry point."""

from __future__ import annotations

from collections.abc import Sequence

from aixpy.errors import InvalidInputError
from aixpy.rag.manifest import CHUNKS
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.types import Query

__all__ = ["search_query"]


def search_query(vector: Sequence[float], text: str, *, limit: int, min_score: float | None, filter: Filter | None,
                 hybrid: bool) -> Query:
    """The query over the collection's chunks (never its ``_aixpy:*`` records): the nearest neighbours
    of ``vector``, or with ``hybrid`` those fused with the BM25 ranking of ``text``."""
    flt: Filter = CHUNKS if filter is None else CHUNKS & filter
    if not hybrid:
        return Query(embedding=vector, limit=limit, min_score=min_score, filter=flt)
    if min_score is not None:
        raise InvalidInputError("min_score cannot be combined with hybrid search (fused scores are rank-based)")
    return Query(embedding=vector, limit=limit, filter=flt, text=text, mode="hybrid")
