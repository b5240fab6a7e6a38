"""Near-duplicate detection of one upsert call, shared by the vector-store backends (no I/O).

The rule, the same on every backend: with ``dedup`` on, a *new* document (not an update) is a
duplicate when its non-empty content has the sha256 of, or its embedding is within
``dedup_threshold`` cosine (minus :data:`EPS`, the float32 slack) of, a live document: one stored
before the call (minus those the call already replaced: their stored version is stale) or one the
call wrote earlier. Documents are decided in order.

:class:`BatchDedup` is that rule for the backends whose documents live in a server (Qdrant,
pgvector, Firestore): what the call wrote so far (content hashes, unit vectors, replaced keys) and
the stored content hashes are handled here; a backend fills :attr:`BatchDedup.stored_sha` and says
how it finds stored near vectors (:meth:`BatchDedup.near_stored`: exact queries, SQL, a scan). The
memory backend keeps its own check (:class:`aixpy.vectorstores._memory_search.Dedup`): its store *is*
the matrix the call appends to, so "written by this call" and "stored" are one lookup there and the
content hashes of the store are already counted; it shares :func:`content_hash`, :func:`unit_rows`,
:data:`EPS` and :data:`CHUNK`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aixpy.vectorstores.base import PreparedDoc

__all__ = ["CHUNK", "EPS", "BatchDedup", "content_hash", "content_sha256", "new_hashes", "unit_rows"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

EPS = 1e-6
"""Slack of the threshold comparison (cosines are computed in float32)."""

CHUNK = 64
"""New documents compared per matrix product (one BLAS call instead of 64 vector products)."""


def content_sha256(content: str) -> str:
    """The sha256 (hex) of ``content``, as stored for content deduplication."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def content_hash(content: str) -> str | None:
    """sha256 of the content; empty content is never a content duplicate."""
    return content_sha256(content) if content else None


def unit_rows(vectors: Sequence[npt.NDArray[np.floating]]) -> tuple[F64, F64]:
    """``(unit vectors, L2 norms)`` of ``vectors`` as float64 rows; a zero vector stays zero."""
    v64 = np.stack(vectors).astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", v64, v64))
    return v64 / np.where(norms > 0, norms, 1.0)[:, None], norms


def new_hashes(docs: Sequence[PreparedDoc], new: Sequence[int]) -> list[str]:
    """The distinct content hashes of the new documents (``new``: their batch indices), sorted."""
    return sorted({content_sha256(docs[i].doc.content) for i in new if docs[i].doc.content})


class BatchDedup(ABC):
    """Duplicate checks of one upsert call, in order (see the module docstring).

    ``unit`` holds the unit vectors of the whole batch, ``new`` the batch indices of the documents
    that are not updates. Keys (``stored_sha`` values, ``replaced``) are whatever the backend names
    a stored document by (a document id, a point id, a Firestore document name).
    """

    def __init__(self, threshold: float, unit: F32, new: list[int]) -> None:
        self.threshold = threshold - EPS
        self.unit, self.new = unit, new
        self.pos = {i: k for k, i in enumerate(new)}  # batch index -> rank among the new documents
        self.hashes: set[str] = set()  # content written by this call
        self.rows: list[int] = []  # batch indices written by this call (non-zero vectors)
        self.replaced: set[str] = set()  # stored keys this call overwrote
        self.stored_sha: dict[str, set[str]] = {}  # content hash -> live stored keys
        self._block: tuple[int, int, F32] | None = None

    @abstractmethod
    def near_stored(self, i: int) -> bool:
        """Whether a live stored document not replaced by this call is within the threshold of the
        (non-zero) vector of batch index ``i``."""

    def is_duplicate(self, i: int, content: str) -> bool:
        """Whether new document ``i`` (with ``content``) is a duplicate; call in batch order."""
        if self.near_written(i, content):
            return True
        if content and any(k not in self.replaced for k in self.stored_sha.get(content_sha256(content), ())):
            return True
        return bool(np.any(self.unit[i])) and self.near_stored(i)

    def near_written(self, i: int, content: str) -> bool:
        """Same content (non-empty) as, or cosine >= threshold with, a document this call wrote."""
        if content and content_sha256(content) in self.hashes:
            return True
        if not self.rows or not np.any(self.unit[i]):
            return False
        start = self.pos[i] - self.pos[i] % CHUNK
        if self._block is None or self._block[0] != start:
            chunk = self.new[start:start + CHUNK]
            self._block = (start, len(self.rows), self.unit[self.rows] @ self.unit[chunk].T)
        _, n0, sims = self._block
        if n0 and float(sims[:, self.pos[i] - start].max()) >= self.threshold:
            return True
        later = self.rows[n0:]  # written after the chunk's product
        return bool(later) and float(np.max(self.unit[later] @ self.unit[i])) >= self.threshold

    def written(self, i: int, key: str, content: str, *, updated: bool) -> None:
        """Batch index ``i`` was written under ``key`` (replacing a stored document if ``updated``)."""
        if content:
            self.hashes.add(content_sha256(content))
        if np.any(self.unit[i]):
            self.rows.append(i)
        if updated:
            self.replaced.add(key)
