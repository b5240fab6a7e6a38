"""Duplicate detection of one Firestore upsert call (same rules as the memory backend).

A new document is a duplicate when its non-empty content equals (sha256), or its embedding is
within the collection's ``dedup_threshold`` cosine of, a live document: one stored before this
call (minus those this call already replaced: their stored version is stale) or one this call
wrote earlier. Stored content matches come from one ``in`` query per 30 hashes; stored near
vectors from ``find_nearest`` (COSINE) per new document, re-checked in float64.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from aixpy.vectorstores import _firestore_codec as fc
from aixpy.vectorstores import _firestore_filters as ff
from aixpy.vectorstores._dedup import BatchDedup, new_hashes, unit_rows
from aixpy.vectorstores.types import utcnow

if TYPE_CHECKING:
    from aixpy.vectorstores.base import PreparedDoc
    from aixpy.vectorstores.firestore import FirestoreCollection

__all__ = ["Dedup"]

F64 = npt.NDArray[np.float64]
_IN_MAX = 30  # values of one Firestore "in" filter
_FIRST = 4  # neighbours asked first per document


class Dedup(BatchDedup):
    """:class:`~aixpy.vectorstores._dedup.BatchDedup` against the Firestore collection (keys are
    document names); stored near vectors are re-checked with the float64 unit vectors."""

    def __init__(self, coll: FirestoreCollection, docs: list[PreparedDoc], new: list[int]) -> None:
        unit, _ = unit_rows([p.vector for p in docs])
        super().__init__(coll.options.dedup_threshold, unit.astype(np.float32), new)
        self.coll, self.unit64 = coll, unit
        self.now = utcnow()
        self._lookup_hashes(new_hashes(docs, new))

    def _lookup_hashes(self, shas: list[str]) -> None:
        conn = self.coll._h.check()
        for a in range(0, len(shas), _IN_MAX):
            flt = fc.field_filter(fc.F_SHA, "IN", fc.encode(shas[a:a + _IN_MAX]))
            q = fc.base_query(flt, [fc.F_SHA, fc.F_EXPIRES])
            for d in conn.run_query(self.coll._h.catalog, q):
                row = fc.decode_row(d)
                if row.live(self.now):
                    self.stored_sha.setdefault(str(fc.decode(d.fields[fc.F_SHA])), set()).add(d.name)

    def near_stored(self, i: int) -> bool:
        return self._near_stored(self.unit64[i])

    def _near_stored(self, u: F64) -> bool:
        """A live stored document (not replaced by this call) within the threshold of unit vector ``u``."""
        conn, h = self.coll._h.check(), self.coll._h
        k = _FIRST
        while True:
            q = fc.nearest_query(None, u.tolist(), "cosine", k, [fc.F_EMBEDDING, fc.F_EXPIRES])
            docs = list(conn.run_query(h.catalog, q))
            for d in docs:
                row = fc.decode_row(d)
                if row.vector is None or d.name in self.replaced or not row.live(self.now):
                    continue
                norm = float(np.sqrt(row.vector @ row.vector))
                if norm > 0 and float(row.vector @ u) / norm >= self.threshold:
                    return True
            if len(docs) < k:
                return False
            last = fc.engine_score("cosine", fc.decode_row(docs[-1]).distance or 0.0)
            if last < self.threshold - 1e-9:
                return False  # every unseen document is farther still
            if k >= fc.MAX_NEAREST:
                return self._scan_near(u)
            k = min(fc.MAX_NEAREST, 2 * k)

    def _scan_near(self, u: F64) -> bool:
        """More than 1,000 stored neighbours were stale or expired: check every document."""
        for row in self.coll._scan(ff.Plan((), True), None, self.now, [fc.F_EMBEDDING, fc.F_EXPIRES]):
            if row.vector is None or f"{self.coll._h.catalog}/{fc.DOCS}/{row.key}" in self.replaced:
                continue
            norm = float(np.sqrt(row.vector @ row.vector))
            if norm > 0 and float(row.vector @ u) / norm >= self.threshold:
                return True
        return False
