"""Copies of the memory backend: documents and metadata leave and enter the store as deep copies, so a
caller never shares mutable state with a stored document."""

from __future__ import annotations

from typing import Any

from aixpy.vectorstores.types import Document, Scope

__all__ = ["clone", "copy_doc"]


def clone(v: Any) -> Any:
    """Deep copy of a JSON-like value as plain built-in types (tuples become lists)."""
    if isinstance(v, dict):
        return {str(k): clone(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [clone(x) for x in v]
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    return v


def copy_doc(d: Document, embedding: list[float] | None) -> Document:
    s = d.scope
    return Document(d.id, d.content, embedding, d.embedding_model, clone(d.metadata) if d.metadata else {},
                    list(d.tags), Scope(s.tenant, s.user, s.session), d.created_at, d.updated_at, d.expires_at)
