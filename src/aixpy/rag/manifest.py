"""What an indexed collection records about itself, as *index records* stored in the collection.

Records are ordinary documents with reserved ids and an ``aixpy_record`` metadata field, so they work
on every vector-store backend (and third-party ones) with no schema change, and each is written
atomically by a single upsert:

- ``_aixpy:signature``: the embedding ``provider``, ``model`` and ``dimensions`` the collection was
  built with, and the ``roots`` (absolute folders or files) indexed into it;
- ``_aixpy:root:<hash>``: for one root, the ``files`` (paths relative to it) that may have chunks.
  It is written *before* a run adds files (a superset), so a run killed at any point leaves no
  chunk that the next run, or a prune, cannot find.

Their vector is a fixed unit vector; :data:`CHUNKS` is the filter that leaves them out, which
:func:`aixpy.rag.search` and the chunk counts use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aixpy.errors import EmbeddingMismatchError
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter, field
from aixpy.vectorstores.types import Document

__all__ = ["CHUNKS", "RECORD_KEY", "SIGNATURE_ID", "RootRecord", "Signature", "check_signature", "read_root",
           "read_signature", "record_doc", "root_doc", "root_from", "root_id", "signature_doc", "signature_from",
           "verify_signature", "write_record", "write_root", "write_signature"]

RECORD_KEY = "aixpy_record"
SIGNATURE_ID = "_aixpy:signature"
CHUNKS: Filter = ~field(RECORD_KEY).exists()
"""Matches chunks only (not index records)."""


def root_id(root: str) -> str:
    return "_aixpy:root:" + hashlib.sha256(root.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Signature:
    """The embedding a collection's vectors come from. Two signatures are compatible when ``model``
    and ``dimensions`` agree: the provider is recorded, but two providers may serve one model."""

    provider: str
    model: str
    dimensions: int

    def describe(self) -> str:
        return f"{self.provider}:{self.model} ({self.dimensions} dimensions)"

    def compatible(self, other: Signature) -> bool:
        return (self.model, self.dimensions) == (other.model, other.dimensions)

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "dimensions": self.dimensions}


def _vector(dims: int) -> list[float]:
    return [1.0] + [0.0] * (dims - 1)


def record_doc(doc_id: str, kind: str, meta: dict[str, Any], dims: int, model: str | None = None) -> Document:
    """An index record as a document (what :func:`write_record` upserts)."""
    return Document(id=doc_id, content="", embedding=_vector(dims), embedding_model=model,
                    metadata={RECORD_KEY: kind, **meta})


def write_record(coll: BaseCollection, doc_id: str, kind: str, meta: dict[str, Any], dims: int,
                 model: str | None = None) -> None:
    coll.upsert(record_doc(doc_id, kind, meta, dims, model))


def signature_from(found: list[Document]) -> tuple[Signature, list[str]] | None:
    """:func:`read_signature` on the result of ``get([SIGNATURE_ID])`` (for callers doing their own I/O)."""
    if not found:
        return None
    m = found[0].metadata
    sig = Signature(str(m.get("provider", "")), str(m.get("model", "")), int(m.get("dimensions", 0)))
    return sig, [str(r) for r in m.get("roots", [])]


def read_signature(coll: BaseCollection) -> tuple[Signature, list[str]] | None:
    """The collection's signature and indexed roots, or ``None`` when it has no signature record."""
    return signature_from(coll.get([SIGNATURE_ID]))


def check_signature(coll: BaseCollection, sig: Signature, action: str) -> tuple[Signature, list[str]] | None:
    """Raise EmbeddingMismatchError when ``coll`` was built with a model incompatible with ``sig``; return
    what :func:`read_signature` returns. Without a record, the collection's dimensions are still checked."""
    return verify_signature(coll, read_signature(coll), sig, action)


def verify_signature(coll: BaseCollection, found: tuple[Signature, list[str]] | None, sig: Signature,
                     action: str) -> tuple[Signature, list[str]] | None:
    """:func:`check_signature` given what :func:`read_signature` (or :func:`signature_from`) returned."""
    if found is not None:
        have = found[0]
        if not have.compatible(sig):
            dims = (f"; dimensions differ: {have.dimensions} vs {sig.dimensions}"
                    if have.dimensions != sig.dimensions else "")
            raise EmbeddingMismatchError(
                f"collection {coll.name!r} was built with {have.describe()}, but this {action} uses "
                f"{sig.describe()}{dims}; use the same embedding model, or another collection")
        return found
    if coll.dimensions is not None and coll.dimensions != sig.dimensions:
        raise EmbeddingMismatchError(
            f"collection {coll.name!r} holds {coll.dimensions}-dimension vectors, but this {action} uses "
            f"{sig.describe()}; use the model it was built with, or another collection")
    return None


def signature_doc(sig: Signature, roots: list[str]) -> Document:
    return record_doc(SIGNATURE_ID, "signature", {**sig.as_dict(), "roots": sorted(roots)}, sig.dimensions, sig.model)


def write_signature(coll: BaseCollection, sig: Signature, roots: list[str]) -> None:
    coll.upsert(signature_doc(sig, roots))


@dataclass(slots=True)
class RootRecord:
    """An indexed ``root`` (folder or file); ``files`` are relative to ``base`` (the root, or a file's folder)."""

    root: str
    base: str
    files: list[str]


def read_root(coll: BaseCollection, root: str, base: str) -> RootRecord:
    """The record of ``root``; an empty one (with ``base``) when there is none."""
    return root_from(coll.get([root_id(root)]), root, base)


def root_from(found: list[Document], root: str, base: str) -> RootRecord:
    """:func:`read_root` on the result of ``get([root_id(root)])``."""
    if not found:
        return RootRecord(root, base, [])
    m = found[0].metadata
    return RootRecord(root, str(m.get("base", base)), [str(f) for f in m.get("files", [])])


def root_doc(rec: RootRecord, dims: int) -> Document:
    return record_doc(root_id(rec.root), "root", {"root": rec.root, "base": rec.base, "files": sorted(set(rec.files))},
                      dims)


def write_root(coll: BaseCollection, rec: RootRecord, dims: int) -> None:
    coll.upsert(root_doc(rec, dims))
