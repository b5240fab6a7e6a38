"""Top-k candidate selection over a float32 score vector (the memory backend's hot path)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["select_candidates"]

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
