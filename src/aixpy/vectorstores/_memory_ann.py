"""Optional HNSW index of the memory backend (faiss ``IndexHNSWFlat``; extra ``ann``).

The index only proposes candidates; the collection re-scores them exactly in float64 and sorts by
(score, id), so results have the same format and order as the exact path. Design:

- **Metrics.** cosine: inner product on the stored unit rows; euclidean: L2 on the raw rows; dot:
  inner product on the raw rows. Maximum-inner-product is not a metric space, so the dot graph is
  weaker: it searches with twice the ``ef`` and falls back to exact search for filters that keep
  less than a quarter of the rows (recall measured >= 0.97 on low-rank data).
- **Slots.** faiss HNSW cannot remove vectors. Each collection row maps to a *slot* of the index;
  an update or delete turns the slot into a tombstone, excluded from every search by a bitmap
  selector (so tombstones cost traversal time but never recall). New and updated rows are added in
  one batch at the next query. When tombstones exceed :data:`REBUILD_FRACTION` of the slots the
  index is rebuilt from the live rows.
- **Filters.** The filter's rows become the selector bitmap and ``ef`` grows as the kept fraction
  shrinks. Below :data:`MIN_FRACTION` of the rows (the filtered-HNSW trap: recall collapses, see
  ``tests/vectorstores/test_memory_hnsw.py``) the collection searches the filtered rows exactly,
  which is also the cheaper plan there.
- **Persistence.** Never pickled: snapshots hold the rows, the index is rebuilt lazily on the first
  query after a load.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from aixpy.errors import MissingDependencyError
from aixpy.vectorstores._memory_search import select_candidates
from aixpy.vectorstores.types import Metric

if TYPE_CHECKING:
    from aixpy.config.stores import MemoryStoreConfig

__all__ = ["EF_CAP", "MIN_FRACTION", "REBUILD_FRACTION", "AnnSettings", "HnswIndex", "load_faiss"]

F32 = npt.NDArray[np.float32]
Rows = npt.NDArray[np.intp]

MIN_FRACTION: dict[Metric, float] = {"cosine": 0.1, "euclidean": 0.1, "dot": 0.25}
"""Filters keeping less than this fraction of the rows are answered exactly."""
REBUILD_FRACTION = 0.3
"""Rebuild the graph when more than this fraction of its slots are tombstones."""
EF_CAP = 4096
"""Largest ``efSearch`` used; a query needing more (huge offset+limit) is answered exactly."""
_REBUILD_MIN = 1024


def load_faiss() -> Any:
    """Import faiss, or raise :class:`MissingDependencyError` naming the ``ann`` extra."""
    try:
        return importlib.import_module("faiss")
    except ImportError:
        raise MissingDependencyError("faiss-cpu (HNSW index of the memory vector store)",
                                     "pip install 'aixpy[ann]'") from None


@dataclass(frozen=True, slots=True)
class AnnSettings:
    """When and how a memory collection uses an HNSW index (see ``MemoryStoreConfig``).

    Args:
        index: ``exact`` never, ``hnsw`` always, ``auto`` once a collection holds more than
            ``threshold`` live documents (dropped again below half of it).
        threshold: document count that switches ``auto`` to the index.
        m: graph degree (faiss ``M``).
        ef_construction: candidate list size while building.
        ef_search: base candidate list size while searching (raised for deep pages and filters).
    """

    index: Literal["exact", "hnsw", "auto"] = "exact"
    threshold: int = 20_000
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 256

    @classmethod
    def from_config(cls, mem: MemoryStoreConfig) -> AnnSettings:
        return cls(mem.index, mem.hnsw_threshold, mem.hnsw_m, mem.hnsw_ef_construction, mem.hnsw_ef_search)

    def wanted(self, live: int, built: bool) -> bool:
        """Whether a collection of ``live`` documents should search through the index."""
        if self.index == "hnsw":
            return True
        if self.index == "auto":
            return live > self.threshold or (built and live * 2 > self.threshold)
        return False

    def plan(self, metric: Metric, k: int, live: int, allowed: int | None) -> int | None:
        """``efSearch`` for a query wanting the best ``k`` of ``allowed`` (``None``: all ``live``)
        rows, or ``None`` when exact search is the better (or only reliable) plan."""
        ef = max(self.ef_search, 2 * k) * (2 if metric == "dot" else 1)
        if allowed is not None:
            if allowed == 0 or allowed < MIN_FRACTION[metric] * live:
                return None
            ef = math.ceil(ef * live / allowed)
        ef = min(ef, max(EF_CAP, 2 * self.ef_search))
        return None if ef < k else ef


class HnswIndex:
    """The HNSW graph over one collection's rows, kept in step through the ``changed``/``removed`` hooks."""

    def __init__(self, settings: AnnSettings, dims: int, metric: Metric) -> None:
        self._faiss = load_faiss()
        self._settings = settings
        self._dims = dims
        self._metric = metric
        self._row_slot: Rows = np.empty(0, dtype=np.intp)  # row -> slot, -1 = not in the graph yet
        self._slot_row: Rows = np.empty(0, dtype=np.intp)  # slot -> row, -1 = tombstone
        self._dead = 0
        self._live_bits: npt.NDArray[np.uint8] | None = None
        self._index: Any = self._new_index()

    def _new_index(self) -> Any:
        f = self._faiss
        kind = f.METRIC_L2 if self._metric == "euclidean" else f.METRIC_INNER_PRODUCT
        index = f.IndexHNSWFlat(self._dims, self._settings.m, kind)
        index.hnsw.efConstruction = self._settings.ef_construction
        return index

    @property
    def slots(self) -> int:
        return int(self._slot_row.shape[0])

    @property
    def tombstones(self) -> int:
        return self._dead

    # ------------------------------------------------------------------ hooks (called under the collection lock)

    def changed(self, row: int) -> None:
        """``row`` was written (inserted or updated): its old slot, if any, becomes a tombstone."""
        if row >= self._row_slot.shape[0]:
            grown = np.full(max(row + 1, 2 * self._row_slot.shape[0], 16), -1, dtype=np.intp)
            grown[: self._row_slot.shape[0]] = self._row_slot
            self._row_slot = grown
        self._kill(row)

    def removed(self, row: int, last: int) -> None:
        """``row`` was deleted and the collection moved its ``last`` row into its place."""
        self._kill(row)
        if row != last:
            slot = int(self._row_slot[last])
            self._row_slot[row] = slot
            self._row_slot[last] = -1
            if slot >= 0:
                self._slot_row[slot] = row

    def _kill(self, row: int) -> None:
        slot = int(self._row_slot[row])
        if slot >= 0:
            self._slot_row[slot] = -1
            self._row_slot[row] = -1
            self._dead += 1
            self._live_bits = None

    # ------------------------------------------------------------------ maintenance and search

    def sync(self, vecs: F32) -> None:
        """Add the rows not in the graph yet (``vecs`` = the collection's ``n`` live rows, as stored);
        rebuild first when tombstones dominate."""
        n = int(vecs.shape[0])
        if self._dead > max(_REBUILD_MIN, REBUILD_FRACTION * self.slots) or (self._dead and self._dead == self.slots):
            self._index = self._new_index()
            self._row_slot[:] = -1
            self._slot_row = np.empty(0, dtype=np.intp)
            self._dead = 0
        if self._row_slot.shape[0] < n:
            self.changed(n - 1)
        pending = np.flatnonzero(self._row_slot[:n] < 0)
        if pending.size == 0:
            return
        start = self.slots
        self._index.add(np.ascontiguousarray(vecs[pending], dtype=np.float32))
        self._row_slot[pending] = np.arange(start, start + pending.size, dtype=np.intp)
        self._slot_row = np.concatenate((self._slot_row, pending.astype(np.intp)))
        self._live_bits = None

    def _bitmap(self, rows: Rows | None) -> npt.NDArray[np.uint8] | None:
        """Packed selector bits of the allowed slots (``rows`` = allowed rows; ``None`` = every live row)."""
        if rows is None:
            if self._dead == 0:
                return None
            if self._live_bits is None:
                self._live_bits = np.packbits(self._slot_row >= 0, bitorder="little")
            return self._live_bits
        ok = np.zeros(self.slots, dtype=bool)
        ok[self._row_slot[rows]] = True
        return np.packbits(ok, bitorder="little")

    def search(self, qs: F32, ef: int, rows: Rows | None) -> tuple[F32, Rows]:
        """Up to ``ef`` candidates per query: (selection scores, higher is better; collection rows, -1 = none).

        ``rows`` restricts the search to those collection rows (a filter). Call :meth:`sync` first.
        """
        f = self._faiss
        params = f.SearchParametersHNSW()
        params.efSearch = ef
        bits = self._bitmap(rows)
        if bits is not None:
            params.sel = f.IDSelectorBitmap(self.slots, f.swig_ptr(bits))
        k = min(ef, self.slots)
        dist, labels = self._index.search(np.ascontiguousarray(qs, dtype=np.float32), k, params=params)
        found = labels >= 0
        out_rows = np.where(found, self._slot_row[np.where(found, labels, 0)], -1).astype(np.intp)
        scores = np.where(found, -dist if self._metric == "euclidean" else dist, -np.inf).astype(np.float32)
        return scores, out_rows

    def candidates(self, qs: F32, ks: Sequence[int], tols: Sequence[float], live: int,
                   rows: Rows | None) -> list[Rows | None]:
        """Per query vector (rows of ``qs``, as the collection multiplies them): the rows that can be
        in its exact top-``k`` (the graph's best plus near-ties within ``tol``), or ``None`` where
        exact search must answer (plan says so, or the graph found fewer than ``k`` allowed rows).

        ``live`` is the collection's row count; ``rows`` the rows a filter allows (``None``: all).
        Call :meth:`sync` first.
        """
        allowed = live if rows is None else int(rows.shape[0])
        plans = [self._settings.plan(self._metric, k, live, None if rows is None else allowed) for k in ks]
        run = [i for i, ef in enumerate(plans) if ef is not None]
        out: list[Rows | None] = [None] * len(plans)
        if not run:
            return out
        scores, hits = self.search(qs[run], max(plans[i] or 0 for i in run), rows)
        for pos, i in enumerate(run):
            ok = hits[pos] >= 0
            if int(np.count_nonzero(ok)) >= min(ks[i], allowed):
                found: Rows = hits[pos][ok]
                out[i] = found[select_candidates(scores[pos][ok], ks[i], tols[i])]
        return out
