"""In-memory vector store: the exact-search reference backend.

Every collection keeps its vectors in one contiguous float32 matrix (rows pre-normalised for the
cosine metric) and answers queries with one matrix product and a vectorised top-k. Optionally
(``memory.index: hnsw|auto``, extra ``ann``) large collections search through a faiss HNSW index
instead; see :mod:`aixpy.vectorstores._memory_ann`. Data lives in
process memory and is **lost on restart unless you call** :meth:`MemoryStore.save`; when
``memory.path`` is configured, the snapshot at that path is loaded on open (never written
implicitly).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.config.stores import MemoryStoreConfig, VectorStoreConfig
from aixpy.errors import InvalidInputError, StoreError
from aixpy.vectorstores import _memory_snapshot as snap
from aixpy.vectorstores._dedup import content_hash, unit_rows
from aixpy.vectorstores._memory_ann import AnnSettings, HnswIndex, load_faiss
from aixpy.vectorstores._memory_bm25 import BM25Index
from aixpy.vectorstores._memory_copy import clone, copy_doc
from aixpy.vectorstores._memory_filter import FilterIndex
from aixpy.vectorstores._memory_search import Dedup, select_candidates
from aixpy.vectorstores.base import BaseCollection, CollectionOptions, PreparedDoc, VectorStore
from aixpy.vectorstores.filters import Filter, parse
from aixpy.vectorstores.types import (
    DeleteResult,
    Document,
    Match,
    Metric,
    Query,
    QueryResult,
    UpsertResult,
    utcnow,
)
from aixpy.vectorstores.validation import validate_collection_name, validate_query

__all__ = ["MemoryCollection", "MemoryStore", "create"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Rows = npt.NDArray[np.intp]

_MIN_CAPACITY = 16
_EXACT_CHUNK = 8192
_BATCH_BYTES = 128 << 20  # most bytes of the score buffer of one query_batch chunk
_EPS32 = 2.0**-24
_ANN_BATCH = 256  # queries per faiss search in query_batch
# Below this many rows one BLAS matrix product beats HNSW for a batch of queries (measured at 100k x 384
# on 2 cores: exact 850 q/s, HNSW 420 q/s; exact cost grows with n, HNSW's with log n).
ANN_BATCH_MIN_ROWS = 250_000


# ------------------------------------------------------------------ collection


class MemoryCollection(BaseCollection):
    """One collection held in process memory; exact nearest-neighbour search, or HNSW candidates
    re-scored exactly when the store's ``ann`` settings say so (same result format and order).

    Expired documents are invisible from their ``expires_at`` on and are purged at the next call.
    Metadata is stored as a deep copy (tuples become lists). Content dedup ignores empty content.
    Filtered queries build per-field columns once and reuse them until the next write.
    """

    def __init__(self, name: str, options: CollectionOptions | None = None, ann: AnnSettings | None = None) -> None:
        super().__init__(name, options)
        self._ann_settings = ann or AnnSettings()
        self._ann: HnswIndex | None = None
        self._normalized = self.options.metric == "cosine"
        self._n = 0
        self._vecs: F32 = np.empty((0, self._dimensions or 0), dtype=np.float32)
        self._norms: F32 = np.empty(0, dtype=np.float32)
        self._expires: F64 = np.empty(0, dtype=np.float64)
        self._next_expiry = math.inf
        self._ids: list[str] = []
        self._docs: list[Document] = []
        self._rows: dict[str, int] = {}
        self._hashes: list[str | None] = []
        self._hash_count: dict[str, int] = {}
        self._index: FilterIndex | None = None
        self._bm25: BM25Index | None = None
        self._max_norm: float | None = None

    # ------------------------------------------------------------------ storage

    def _changed(self) -> None:
        self._index = None
        self._bm25 = None
        self._max_norm = None

    def _reserve(self, total: int) -> None:
        cap = self._vecs.shape[0]
        if total <= cap:
            return
        new_cap = max(total, 2 * cap, _MIN_CAPACITY)
        dims = self._dimensions or 0
        vecs = np.empty((new_cap, dims), dtype=np.float32)
        vecs[: self._n] = self._vecs[: self._n]
        norms = np.empty(new_cap, dtype=np.float32)
        norms[: self._n] = self._norms[: self._n]
        expires = np.empty(new_cap, dtype=np.float64)
        expires[: self._n] = self._expires[: self._n]
        self._vecs, self._norms, self._expires = vecs, norms, expires

    def _write(self, row: int, doc: Document, vec: F32, norm: float) -> None:
        if self._ann is not None:
            self._ann.changed(row)
        self._vecs[row] = vec
        self._norms[row] = norm
        exp = math.inf if doc.expires_at is None else doc.expires_at.timestamp()
        self._expires[row] = exp
        self._next_expiry = min(self._next_expiry, exp)
        self._docs[row] = doc
        if self.options.dedup:
            old = self._hashes[row]
            if old is not None:
                self._unhash(old)
            h = content_hash(doc.content)
            self._hashes[row] = h
            if h is not None:
                self._hash_count[h] = self._hash_count.get(h, 0) + 1

    def _unhash(self, h: str) -> None:
        left = self._hash_count[h] - 1
        if left:
            self._hash_count[h] = left
        else:
            del self._hash_count[h]

    def _append(self, doc: Document, vec: F32, norm: float) -> int:
        row = self._n
        self._reserve(row + 1)
        self._ids.append(doc.id)
        self._docs.append(doc)
        self._hashes.append(None)
        self._rows[doc.id] = row
        self._n += 1
        self._write(row, doc, vec, norm)
        return row

    def _remove(self, row: int) -> None:
        """Delete ``row`` by moving the last row into its place."""
        last = self._n - 1
        if self._ann is not None:
            self._ann.removed(row, last)
        h = self._hashes[row]
        if h is not None:
            self._unhash(h)
        del self._rows[self._ids[row]]
        if row != last:
            self._vecs[row] = self._vecs[last]
            self._norms[row] = self._norms[last]
            self._expires[row] = self._expires[last]
            self._docs[row] = self._docs[last]
            self._ids[row] = self._ids[last]
            self._hashes[row] = self._hashes[last]
            self._rows[self._ids[row]] = row
        self._docs.pop()
        self._ids.pop()
        self._hashes.pop()
        self._n = last

    def _purge(self) -> None:
        """Drop every document whose ``expires_at`` has passed."""
        now = utcnow().timestamp()
        if self._next_expiry > now:
            return
        expired = np.flatnonzero(self._expires[: self._n] <= now)
        for row in expired[::-1].tolist():  # descending: the moved-in last row is never expired
            self._remove(row)
        self._next_expiry = float(self._expires[: self._n].min()) if self._n else math.inf
        if expired.size:
            self._changed()

    def _raw(self, rows: Rows) -> F64:
        """The original vectors of ``rows`` as float64."""
        x = self._vecs[rows].astype(np.float64)
        if self._normalized:
            x *= self._norms[rows].astype(np.float64)[:, None]
        return x

    def _export(self, row: int, with_embedding: bool) -> Document:
        emb = None
        if with_embedding:
            emb = self._raw(np.array([row], dtype=np.intp))[0].astype(np.float32).tolist()
        return copy_doc(self._docs[row], emb)

    def _filter_rows(self, flt: Filter) -> Rows:
        if self._index is None:
            self._index = FilterIndex(self._docs)
        return np.flatnonzero(self._index.mask(flt))

    # ------------------------------------------------------------------ upsert

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        self._purge()
        if self._dimensions is None:
            self._dimensions = int(docs[0].vector.shape[0])
            self._vecs = np.empty((0, self._dimensions), dtype=np.float32)
        unit64, norms = unit_rows([p.vector for p in docs])
        unit = unit64.astype(np.float32)
        stored = unit if self._normalized else np.stack([p.vector for p in docs]).astype(np.float32)
        norms32 = norms.astype(np.float32)
        dedup = Dedup(self, [i for i, p in enumerate(docs) if p.doc.id not in self._rows], unit) \
            if self.options.dedup else None
        limit = self.options.max_documents
        result = UpsertResult()
        for i, p in enumerate(docs):
            doc = p.doc
            doc.metadata = clone(doc.metadata)
            row = self._rows.get(doc.id)
            if row is not None:
                doc.created_at = self._docs[row].created_at
                self._write(row, doc, stored[i], float(norms32[i]))
                result.add_updated(doc.id)
            elif dedup is not None and dedup.is_duplicate(i, doc):
                result.add_deduplicated(doc.id)
                continue
            elif limit is not None and self._n >= limit:
                result.add_over_limit(doc.id, limit)
                continue
            else:
                row = self._append(doc, stored[i], float(norms32[i]))
                result.add_inserted(doc.id)
            if dedup is not None:
                dedup.written(row)
        self._changed()
        return result

    # ------------------------------------------------------------------ query

    def _max_norm_now(self) -> float:
        if self._max_norm is None:
            self._max_norm = float(self._norms[: self._n].max()) if self._n else 0.0
        return self._max_norm

    def _query_vector(self, vec: F32, metric: Metric) -> tuple[F32, F64, float, float]:
        """(vector to multiply with, float64 query, its norm, score tolerance of the float32 pass)."""
        q64 = vec.astype(np.float64)
        qn = float(np.sqrt(q64 @ q64))
        if metric == "cosine":
            if qn == 0.0:
                raise InvalidInputError("a zero query vector has no cosine similarity")
            qv = (q64 / qn).astype(np.float32)
            scale = 1.0
        else:
            qv = vec
            mx = self._max_norm_now()
            scale = mx * qn if metric == "dot" else (mx + qn) ** 2
        tol = (2 * int(vec.shape[0]) + 8) * _EPS32 * scale
        return qv, q64, qn, tol

    def _transform(self, base: F32, metric: Metric, rows: Rows | None) -> F32:
        """Turn dot products with the stored rows into selection scores (higher is better), in place."""
        norms = self._norms[: self._n] if rows is None else self._norms[rows]
        if metric == "cosine":
            if not self._normalized:
                np.divide(base, norms, out=base, where=norms > 0)
        elif self._normalized:
            base *= norms
        if metric == "euclidean":
            base *= 2.0
            base -= norms * norms
        return base

    def _exact(self, rows: Rows, metric: Metric, q64: F64, qn: float) -> tuple[F64, F64]:
        """Float64 (score, distance) of ``rows`` under the score conventions of ``types``."""
        scores = np.empty(rows.size)
        dists = np.empty(rows.size)
        for a in range(0, rows.size, _EXACT_CHUNK):
            x = self._raw(rows[a : a + _EXACT_CHUNK])
            sl = slice(a, a + x.shape[0])
            if metric == "euclidean":
                diff = x - q64
                d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
                dists[sl], scores[sl] = d, 1.0 / (1.0 + d)
                continue
            dots = np.einsum("ij,j->i", x, q64)
            if metric == "cosine":
                xn = np.sqrt(np.einsum("ij,ij->i", x, x))
                s = np.divide(dots, xn * qn, out=np.zeros_like(dots), where=xn > 0)
                scores[sl], dists[sl] = s, 1.0 - s
            else:
                scores[sl], dists[sl] = dots, -dots
        return scores, dists

    def _finish(self, rows: Rows, metric: Metric, q64: F64, qn: float, query: Query, t0: float) -> QueryResult:
        scores, dists = self._exact(rows, metric, q64, qn)
        sc, ds, rl, ids = scores.tolist(), dists.tolist(), rows.tolist(), self._ids
        order = sorted(range(len(rl)), key=lambda i: (-sc[i], ids[rl[i]]))
        page = order[query.offset : query.offset + query.limit]
        out: list[Match] = []
        for rank, i in enumerate(page, start=query.offset + 1):
            if query.min_score is not None and sc[i] < query.min_score:
                break
            out.append(Match(self._export(rl[i], query.include_embeddings), sc[i], ds[i], rank))
        return QueryResult(out, query.offset, query.limit, (time.perf_counter() - t0) * 1000.0)

    def _query(self, vec: F32, query: Query) -> QueryResult:
        t0 = time.perf_counter()
        self._purge()
        metric: Metric = query.metric or self.options.metric
        flt = parse(query.filter)
        k = query.offset + query.limit
        qv, q64, qn, tol = self._query_vector(vec, metric)
        n = self._n
        if n == 0:
            return QueryResult([], query.offset, query.limit)
        ann = self._index_for(metric)
        sub = None if flt is None else self._filter_rows(flt)
        if sub is not None and sub.size == 0:
            return QueryResult([], query.offset, query.limit)
        rows = None if ann is None else ann.candidates(qv[None, :], [k], [tol], n, sub)[0]
        if rows is None:
            rows = self._exact_rows(qv, metric, k, tol, sub)
        return self._finish(rows, metric, q64, qn, query, t0)

    @property
    def supports_keyword(self) -> bool:
        return True

    def _keyword(self, terms: list[str], filter: Filter | None, limit: int, with_embeddings: bool) -> list[Match]:
        self._purge()
        flt = parse(filter)
        sub = None if flt is None else self._filter_rows(flt)
        if self._bm25 is None:
            self._bm25 = BM25Index(self._docs)
        found = self._bm25.top(terms, sub, self._ids, limit)
        return [Match(self._export(r, with_embeddings), s, -s, rank) for rank, (r, s) in enumerate(found, start=1)]

    def _exact_rows(self, qv: F32, metric: Metric, k: int, tol: float, sub: Rows | None) -> Rows:
        """Brute-force candidates: the exact top-``k`` plus near-ties (of ``sub`` if given)."""
        n = self._n
        if sub is None:
            return select_candidates(self._transform(self._vecs[:n] @ qv, metric, None), k, tol)
        base = self._vecs[sub] @ qv if sub.size * 2 < n else (self._vecs[:n] @ qv)[sub]
        picked: Rows = sub[select_candidates(self._transform(base, metric, sub), k, tol)]
        return picked

    # ------------------------------------------------------------------ HNSW (optional)

    def _index_for(self, metric: Metric) -> HnswIndex | None:
        """The synced HNSW index when a query with ``metric`` should use it, else ``None``.

        Only the collection's own metric is indexed; ``auto`` drops the index again when the
        collection shrinks below half the threshold.
        """
        st = self._ann_settings
        if not st.wanted(self._n, self._ann is not None):
            self._ann = None
            return None
        if metric != self.options.metric or self._n == 0:
            return None
        if self._ann is None:
            self._ann = HnswIndex(st, self._dimensions or 0, self.options.metric)
        self._ann.sync(self._vecs[: self._n])
        return self._ann

    def index_stats(self) -> dict[str, Any]:
        """How searches run now: ``{"index": "exact" | "hnsw", "slots": int, "tombstones": int}``.

        The HNSW graph is built (or dropped, for ``auto``) at the next query, not at upsert.
        """
        with self._lock:
            a = self._ann
            return {"index": "exact" if a is None else "hnsw", "slots": a.slots if a else 0,
                    "tombstones": a.tombstones if a else 0}

    def query_batch(self, queries: Sequence[Query]) -> list[QueryResult]:
        """Run many queries at once; each result equals ``query()`` of that query.

        Unfiltered queries share one float32 matrix product per chunk of queries (much faster than
        a loop of ``query()``), or, when the HNSW index is on and the collection holds at least
        ``ANN_BATCH_MIN_ROWS`` documents, one HNSW search per chunk; filtered ones run one by one.
        """
        if isinstance(queries, Query):
            raise InvalidInputError("query_batch takes a list of queries; use query() for one")
        qs = list(queries)
        vecs = [validate_query(q, self._dimensions) for q in qs]
        if self._dimensions is None:
            return [QueryResult([], q.offset, q.limit) for q in qs]
        out: list[QueryResult | None] = [None] * len(qs)
        with self._lock:
            self._purge()
            groups: dict[Metric, list[int]] = {}
            for i, q in enumerate(qs):
                if q.mode != "vector":
                    out[i] = self.query(q)
                elif parse(q.filter) is not None or self._n == 0:
                    out[i] = self._query(vecs[i], q)
                else:
                    groups.setdefault(q.metric or self.options.metric, []).append(i)
            for metric, idx in groups.items():
                self._batch(metric, [(qs[i], vecs[i]) for i in idx], idx, out)
        return [r for r in out if r is not None]

    def _batch(self, metric: Metric, items: list[tuple[Query, F32]], idx: list[int],
               out: list[QueryResult | None]) -> None:
        ann = self._index_for(metric) if self._n >= ANN_BATCH_MIN_ROWS else None
        if ann is not None:
            for a in range(0, len(items), _ANN_BATCH):
                self._batch_ann(ann, metric, items[a : a + _ANN_BATCH], idx[a : a + _ANN_BATCH], out)
            return
        n = self._n
        step = max(1, min(len(items), _BATCH_BYTES // (4 * n)))
        buf = np.empty((step, n), dtype=np.float32)
        mat = self._vecs[:n]
        for a in range(0, len(items), step):
            t0 = time.perf_counter()
            chunk = items[a : a + step]
            prepped = [self._query_vector(v, metric) for _, v in chunk]
            s = np.matmul(np.stack([p[0] for p in prepped]), mat.T, out=buf[: len(chunk)])
            self._transform(s, metric, None)
            shared = (time.perf_counter() - t0) / len(chunk)
            for j, ((q, _), (_, q64, qn, tol)) in enumerate(zip(chunk, prepped, strict=True)):
                t1 = time.perf_counter() - shared
                rows = select_candidates(s[j], q.offset + q.limit, tol)
                out[idx[a + j]] = self._finish(rows, metric, q64, qn, q, t1)

    def _batch_ann(self, ann: HnswIndex, metric: Metric, items: list[tuple[Query, F32]], idx: list[int],
                   out: list[QueryResult | None]) -> None:
        """One faiss search for a chunk of unfiltered queries; each is re-scored like ``query()``."""
        t0 = time.perf_counter()
        prepped = [self._query_vector(v, metric) for _, v in items]
        found = ann.candidates(np.stack([p[0] for p in prepped]), [q.offset + q.limit for q, _ in items],
                               [p[3] for p in prepped], self._n, None)
        shared = (time.perf_counter() - t0) / len(items)
        for j, ((q, v), (_, q64, qn, _), rows) in enumerate(zip(items, prepped, found, strict=True)):
            t1 = time.perf_counter() - shared
            out[idx[j]] = self._query(v, q) if rows is None else self._finish(rows, metric, q64, qn, q, t1)

    async def aquery_batch(self, queries: Sequence[Query]) -> list[QueryResult]:
        return await asyncio.to_thread(self.query_batch, queries)

    # ------------------------------------------------------------------ get / delete / count / clear

    def _get(self, ids: list[str]) -> list[Document]:
        self._purge()
        return [self._export(r, True) for r in (self._rows.get(i) for i in ids) if r is not None]

    def _delete(self, ids: list[str]) -> DeleteResult:
        self._purge()
        result = DeleteResult()
        for i in ids:
            row = self._rows.get(i)
            if row is None:
                result.not_found += 1
                result.not_found_ids.append(i)
            else:
                self._remove(row)
                result.deleted += 1
        if result.deleted:
            self._next_expiry = float(self._expires[: self._n].min()) if self._n else math.inf
            self._changed()
        return result

    def _count(self, filter: Filter | None) -> int:
        self._purge()
        flt = parse(filter)
        return self._n if flt is None else int(self._filter_rows(flt).size)

    def _clear(self) -> None:
        self._n = 0
        self._vecs = np.empty((0, self._dimensions or 0), dtype=np.float32)
        self._norms = np.empty(0, dtype=np.float32)
        self._expires = np.empty(0, dtype=np.float64)
        self._next_expiry = math.inf
        self._ids, self._docs, self._hashes = [], [], []
        self._rows, self._hash_count = {}, {}
        self._ann = None
        self._changed()

    # ------------------------------------------------------------------ snapshots

    def _snapshot(self) -> snap.CollectionData:
        with self._lock:
            self._purge()
            n = self._n
            return snap.CollectionData(self.name, self.options, self._dimensions, self._vecs[:n].copy(),
                                       self._norms[:n].copy(), list(self._docs))

    @classmethod
    def _restore(cls, data: snap.CollectionData, ann: AnnSettings | None = None) -> MemoryCollection:
        c = cls(data.name, data.options, ann)
        n = len(data.documents)
        if data.dimensions is not None:
            c._dimensions = data.dimensions
            c._vecs = np.empty((0, data.dimensions), dtype=np.float32)
        if n and c._normalized:
            lengths = np.sqrt(np.einsum("ij,ij->i", data.vectors, data.vectors, dtype=np.float64))
            if not np.allclose(lengths, 1.0, atol=1e-3):
                raise StoreError(f"snapshot collection {data.name!r}: cosine rows are not unit vectors")
        for i, doc in enumerate(data.documents):
            c._append(doc, data.vectors[i], float(data.norms[i]))
        return c


# ------------------------------------------------------------------ store


def _same_options(c: MemoryCollection, options: CollectionOptions) -> bool:
    if options.dimensions not in (None, c.dimensions):
        return False
    return replace(options, dimensions=None) == replace(c.options, dimensions=None)


class MemoryStore(VectorStore):
    """Collections in process memory. Lost on restart unless saved with :meth:`save`.

    ``ann`` turns on the optional HNSW index (``index="hnsw"`` or ``"auto"``; needs faiss, extra
    ``ann``, checked here so a missing package fails at open, not at the 20,000th document).
    """

    provider = "memory"

    def __init__(self, *, default_options: CollectionOptions | None = None,
                 path: str | os.PathLike[str] | None = None, ann: AnnSettings | None = None) -> None:
        super().__init__(default_options=default_options)
        self.ann = ann or AnnSettings()
        if self.ann.index != "exact":
            load_faiss()
        self.path = Path(path).expanduser() if path is not None else None
        self._collections: dict[str, MemoryCollection] = {}
        self._lock = threading.RLock()

    def collection(self, name: str, options: CollectionOptions | None = None) -> MemoryCollection:
        """Open collection ``name``, creating it with ``options`` (default: the store's) if new.

        Reopening with different options raises :class:`InvalidInputError`.
        """
        validate_collection_name(name)
        with self._lock:
            c = self._collections.get(name)
            if c is None:
                c = MemoryCollection(name, options or self.default_options, self.ann)
                self._collections[name] = c
            elif options is not None and not _same_options(c, options):
                raise InvalidInputError(f"collection {name!r} exists with different options: {c.options}")
            return c

    def list_collections(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def drop_collection(self, name: str) -> bool:
        with self._lock:
            return self._collections.pop(name, None) is not None

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Atomically write every collection to ``path`` (default: the configured ``memory.path``)."""
        target = Path(path).expanduser() if path is not None else self.path
        if target is None:
            raise InvalidInputError("save() needs a path: pass one or set vectorstore.memory.path")
        with self._lock:
            data = [self._collections[n]._snapshot() for n in sorted(self._collections)]
        snap.write_snapshot(target, data)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, default_options: CollectionOptions | None = None,
             ann: AnnSettings | None = None) -> MemoryStore:
        """A new store holding the collections of the snapshot at ``path`` (:class:`StoreError` if bad).

        HNSW indexes are not part of snapshots; they are rebuilt on each collection's first query.
        """
        store = cls(default_options=default_options, path=path, ann=ann)
        for data in snap.read_snapshot(Path(path).expanduser()):
            store._collections[data.name] = MemoryCollection._restore(data, store.ann)
        return store


def create(config: VectorStoreConfig) -> MemoryStore:
    """Registry factory: a :class:`MemoryStore` for ``config`` (loads ``memory.path`` if it exists)."""
    mem = config.memory or MemoryStoreConfig()
    options = CollectionOptions(dimensions=config.embedding_dimensions, metric=config.metric,
                                max_documents=mem.max_documents)
    ann = AnnSettings.from_config(mem)
    if mem.path is not None and Path(mem.path).expanduser().exists():
        return MemoryStore.load(mem.path, default_options=options, ann=ann)
    return MemoryStore(default_options=options, path=mem.path, ann=ann)
