"""Search helpers of the memory backend: top-k candidate selection (the hot path) and near-duplicate checks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from aixpy.vectorstores._dedup import CHUNK, EPS, content_hash

if TYPE_CHECKING:
    from aixpy.vectorstores.memory import MemoryCollection
    from aixpy.vectorstores.types import Document

__all__ = ["Dedup", "select_candidates"]

F32 = npt.NDArray[np.float32]
Rows = npt.NDArray[np.intp]


def select_candidates(s: F32, k: int, tol: float) -> Rows:
    """Indices of every score ``>= t - tol`` where ``t`` is the ``k``-th largest of ``s``.

    The result holds the exact top-k plus near-ties, so a float64 re-score and a sort by
    (score, id) give the exact answer. Large arrays use column groups: the maxima of ``sqrt(k*n)``
    strided groups pick the few groups that can hold the top-k, avoiding a partition of all ``n``.
    """
    n = int(s.shape[0])
    if k >= n:
        return np.arange(n, dtype=np.intp)
    if n < 4096 or k * 16 > n:
        t = float(np.partition(s, n - k)[n - k])
        return np.flatnonzero(s >= t - tol)
    groups = math.isqrt(k * n)
    per = n // groups
    m = per * groups
    grid = s[:m].reshape(per, groups)
    gmax = grid.max(axis=0)
    tail = s[m:]
    top = np.argpartition(gmax, groups - k)[groups - k:]
    cand = np.concatenate((grid[:, top].ravel(), tail))
    t = float(np.partition(cand, cand.size - k)[cand.size - k])
    thr = t - tol
    hit = np.flatnonzero(gmax >= thr)
    r, c = np.nonzero(grid[:, hit] >= thr)
    idx = r * groups + hit[c]
    return np.concatenate((idx, m + np.flatnonzero(tail >= thr)))


class Dedup:
    """Near-duplicate check for the new documents of one upsert, in order (the rule of
    :mod:`aixpy.vectorstores._dedup`; not a :class:`~aixpy.vectorstores._dedup.BatchDedup`: here the
    store is the matrix this call appends to, so what the call wrote is already among the stored rows
    and the store's content hashes are counted in ``_hash_count``).

    Cosines against the stored rows are computed in chunks of documents with one matrix product;
    rows written after a chunk's product ("stale") are masked out and compared directly.
    """

    def __init__(self, coll: MemoryCollection, new: list[int], unit: F32) -> None:
        self._c = coll
        self._new = new
        self._pos = {i: p for p, i in enumerate(new)}
        self._unit = unit
        self._thr = coll.options.dedup_threshold - EPS
        self._start = -1
        self._sims: F32 = np.empty((0, 0), dtype=np.float32)
        self._stale: list[int] = []

    def _cosines(self, rows: Rows | slice, u: F32) -> F32:
        c = self._c
        s: F32 = c._vecs[rows] @ u.T
        if not c._normalized:
            norms = c._norms[rows]
            shape = (-1, 1) if s.ndim == 2 else (-1,)
            np.divide(s, norms.reshape(shape), out=s, where=norms.reshape(shape) > 0)
        return s

    def is_duplicate(self, i: int, doc: Document) -> bool:
        c = self._c
        h = content_hash(doc.content)
        if h is not None and h in c._hash_count:
            return True
        u = self._unit[i]
        if not np.any(u):
            return False
        p = self._pos[i]
        if self._start < 0 or p >= self._start + CHUNK:
            self._start = p
            block = self._unit[self._new[p : p + CHUNK]]
            self._sims = self._cosines(slice(0, c._n), block).T.copy()  # (docs, rows)
            self._stale = []
        sims = self._sims[p - self._start]
        stale = [r for r in self._stale if r < sims.shape[0]]
        if stale:
            sims = sims.copy()
            sims[stale] = -np.inf
        if sims.size and float(sims.max()) >= self._thr:
            return True
        if self._stale:
            fresh = self._cosines(np.asarray(self._stale, dtype=np.intp), u)
            return bool(float(fresh.max()) >= self._thr)
        return False

    def written(self, row: int) -> None:
        self._stale.append(row)
