"""Embedded Qdrant (``qdrant-edge-py``): Qdrant's own engine in-process, persisted on disk, no server.

Layout under the store path (``vectorstore.qdrant.path``, default ``./.aixpy/qdrant``)::

    .lock                      exclusive lock of the open store (one process at a time)
    <collection>/manifest.json dimensions, metric, options, format version (written atomically)
    <collection>/shard/        the Qdrant shard (segments, WAL, HNSW, payload indexes)

Every write call (``upsert``, ``upsert_batch``, ``delete``, ``clear``) flushes the shard before it
returns, so an acknowledged write is on disk. Until :meth:`QdrantCollection.optimize` builds the
HNSW index, search is exact (brute force, a few ms per 10k vectors). Candidates are re-scored in
float64 from the stored float32 vectors, so scores follow :mod:`aixpy.vectorstores.types` exactly.
Cosine collections store unit vectors (and each original norm) under Qdrant's ``Dot`` distance.

Server mode (``qdrant.url`` / ``qdrant.host``) is not available yet; the payload layout, point ids
and the filter compiler it will need live in :mod:`aixpy.vectorstores._qdrant_filters`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from aixpy.config.stores import QdrantStoreConfig, VectorStoreConfig
from aixpy.errors import AixpyError, ConfigError, InvalidInputError, MissingDependencyError, StoreError
from aixpy.vectorstores import _qdrant_filters as qf
from aixpy.vectorstores.base import BaseCollection, CollectionOptions, PreparedDoc, Vector, VectorStore
from aixpy.vectorstores.filters import Filter, matches, parse
from aixpy.vectorstores.types import DeleteResult, Document, Match, Metric, Query, QueryResult, UpsertResult, utcnow
from aixpy.vectorstores.validation import validate_collection_name

__all__ = ["DEFAULT_PATH", "QdrantCollection", "QdrantStore", "create"]

DEFAULT_PATH = "./.aixpy/qdrant"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shard"
LOCK_FILE = ".lock"
FULL_SCAN_THRESHOLD_KB = 10_000  # Qdrant's default: smaller (filtered) segments are searched exactly
_PAGE = 1_000
_EPS32 = 2.0**-24
F64 = npt.NDArray[np.float64]


def create(config: VectorStoreConfig) -> QdrantStore:
    """Registry factory: an embedded store at ``config.qdrant.path``."""
    q = config.qdrant or QdrantStoreConfig()
    if q.url or q.host:
        raise ConfigError("Qdrant server mode (qdrant.url / qdrant.host) is not available yet; use the "
                          "embedded engine by setting qdrant.path instead", path="vectorstore.qdrant")
    defaults = CollectionOptions(dimensions=config.embedding_dimensions, metric=config.metric)
    return QdrantStore(q.path or DEFAULT_PATH, hnsw_m=q.hnsw_m, hnsw_ef_construct=q.hnsw_ef_construct,
                       default_options=defaults)


def _import_edge() -> Any:
    try:
        return importlib.import_module("qdrant_edge")
    except ImportError:
        raise MissingDependencyError("qdrant-edge-py", "pip install 'aixpy[qdrant]'") from None


@contextlib.contextmanager
def _engine(what: str) -> Iterator[None]:
    """Map engine exceptions (plain ``Exception`` from the Rust bindings) to :class:`StoreError`."""
    try:
        yield
    except AixpyError:
        raise
    except Exception as e:
        raise StoreError(f"qdrant: {what} failed: {e}") from e


def _lock_exclusive(path: Path) -> IO[str]:
    """Hold an exclusive lock on ``path``. A second opener of a shard corrupts the first one's
    state (qdrant-edge 0.9 truncates the payload journal before it fails on the WAL lock)."""
    f = open(path, "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise StoreError(f"qdrant store {path.parent}: store is in use by another process "
                         "(or by another open store in this process)") from None
    return f


def _fsync_dir(path: Path) -> None:
    if sys.platform != "win32":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _vector_of(record: Any) -> Any:
    vec = record.vector
    return vec.get("") if isinstance(vec, dict) else vec


# ------------------------------------------------------------------ one collection's shard


class _Handle:
    """Manifest and open shard of one collection, shared by every wrapper handed out for it."""

    def __init__(self, store: QdrantStore, name: str) -> None:
        self.store, self.qe, self.name = store, store._qe, name
        self.dir = store.path / name
        self.lock = threading.RLock()
        self.shard: Any = None
        self.options = CollectionOptions()
        self.ready = False  # the shard exists with all its payload indexes
        self.expiring = False  # some point has an expires_at (else the live filter can be skipped)
        self.closed = False

    @property
    def dims(self) -> int | None:
        return self.options.dimensions

    @property
    def metric(self) -> Metric:
        return self.options.metric

    def write_manifest(self, options: CollectionOptions) -> None:
        self.options = options
        _write_json_atomic(self.dir / MANIFEST, {
            "format": FORMAT_VERSION, "engine": "qdrant-edge", "name": self.name,
            "dimensions": options.dimensions, "metric": options.metric, "options": qf.options_to_json(options),
            "shard_ready": self.ready, "hnsw": {"m": self.store.hnsw_m, "ef_construct": self.store.hnsw_ef_construct},
        })

    def open_existing(self) -> None:
        try:
            data = json.loads((self.dir / MANIFEST).read_text(encoding="utf-8"))
            if data["format"] != FORMAT_VERSION:
                raise StoreError(f"qdrant collection {self.name!r}: manifest format {data['format']} is not "
                                 f"supported (this aixpy reads format {FORMAT_VERSION})")
            self.options = qf.options_from_json(data["dimensions"], data["metric"], data["options"])
            self.ready = bool(data["shard_ready"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreError(f"qdrant collection {self.name!r}: unreadable manifest: {e}") from e
        if self.ready:
            qe = self.qe
            with _engine(f"opening collection {self.name!r}"):
                self.shard = qe.EdgeShard.load(str(self.dir / SHARD_DIR))
                has = qe.Filter(must_not=[qe.IsEmptyCondition(qf.F_EXPIRES)])
                self.expiring = self.shard.count(qe.CountRequest(exact=True, filter=has)) > 0

    def live(self, node: qf.Node) -> qf.Node:
        """``node`` restricted to unexpired points."""
        return qf.all_of((qf.live_node(utcnow()), node)) if self.expiring else node

    def ensure_shard(self, dims: int) -> Any:
        """The shard, created with its payload indexes on first use. Until the manifest says
        ``shard_ready`` no document was written, so an interrupted creation is simply redone."""
        if self.shard is not None:
            return self.shard
        if self.dims is None:
            self.write_manifest(dataclasses.replace(self.options, dimensions=dims))
        qe, keyword = self.qe, self.qe.PayloadSchemaType.Keyword
        distance = qe.Distance.Euclid if self.metric == "euclidean" else qe.Distance.Dot
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dims, distance=distance),
            hnsw_config=qe.HnswIndexConfig(m=self.store.hnsw_m, ef_construct=self.store.hnsw_ef_construct,
                                           full_scan_threshold=FULL_SCAN_THRESHOLD_KB))
        # Payload indexes of the reserved fields that filters use on every call (the live filter on
        # expires_at would otherwise read every payload: 128 ms instead of 6 ms per query at 10k).
        # Each creation costs ~0.1 s, so metadata helper fields stay unindexed.
        indexes = [(qf.F_TENANT, qe.KeywordIndexParams(is_tenant=True)),
                   *((f, keyword) for f in (qf.F_USER, qf.F_SESSION, qf.F_TAGS)),
                   *([(qf.F_SHA, keyword)] if self.options.dedup else []),
                   (qf.F_EXPIRES, qe.IntegerIndexParams(lookup=False, range=True))]
        path = self.dir / SHARD_DIR
        shutil.rmtree(path, ignore_errors=True)  # left by a creation that a crash interrupted
        with _engine(f"creating collection {self.name!r}"):
            shard = qe.EdgeShard.create(str(path), config)
            for field, schema in indexes:
                shard.update(qe.UpdateOperation.create_field_index(field, schema))
            shard.flush()
        self.shard, self.ready = shard, True
        self.write_manifest(self.options)
        return shard

    def close(self) -> None:
        with self.lock:
            shard, self.shard, self.closed = self.shard, None, True
            if shard is not None:
                with _engine(f"closing collection {self.name!r}"):
                    shard.flush()
                    shard.close()

    def check(self) -> Any:
        if self.closed:
            raise StoreError(f"qdrant collection {self.name!r} is closed (store closed or collection dropped)")
        return self.shard


# ------------------------------------------------------------------ collection


class QdrantCollection(BaseCollection):
    """A collection backed by one embedded Qdrant shard. Get it from :meth:`QdrantStore.collection`."""

    def __init__(self, handle: _Handle) -> None:
        self._h = handle
        super().__init__(handle.name, handle.options)
        self._lock = handle.lock  # every wrapper of one collection shares its lock and state
        self._qe = handle.qe

    @property
    def _dimensions(self) -> int | None:
        return self._h.dims

    @_dimensions.setter
    def _dimensions(self, value: int | None) -> None:  # BaseCollection.__init__ assigns it
        pass

    @property
    def options(self) -> CollectionOptions:
        return self._h.options

    @options.setter
    def options(self, value: CollectionOptions) -> None:
        pass

    # helpers -------------------------------------------------------------------

    def _filter(self, node: qf.Node) -> Any:
        return qf.to_edge(self._qe, node)

    def _scroll(self, shard: Any, node: qf.Node, *, payload: Any = True, vector: bool = False) -> Iterator[Any]:
        offset, flt = None, self._filter(node)
        while True:
            with _engine("scroll"):
                records, offset = shard.scroll(self._qe.ScrollRequest(
                    offset=offset, limit=_PAGE, filter=flt, with_payload=payload, with_vector=vector))
            yield from records
            if offset is None or not records:
                return

    def _live(self, shard: Any, ids: list[str], fields: list[str] | None, vectors: bool = False,
              pids: list[str] | None = None) -> dict[str, Any]:
        """Records of the live (unexpired) documents among ``ids``, by document id."""
        pids = list(dict.fromkeys(pids if pids is not None else [qf.point_id(i) for i in ids]))
        sel: Any = True if fields is None else self._qe.PayloadSelector.Include([qf.F_ID, qf.F_EXPIRES, *fields])
        with _engine("retrieve"):
            records = shard.retrieve(pids, sel, vectors)
        now = qf.to_micros(utcnow())
        out: dict[str, Any] = {}
        for r in records:
            p = r.payload or {}
            if qf.F_ID in p and (p.get(qf.F_EXPIRES) is None or p[qf.F_EXPIRES] > now):
                out[p[qf.F_ID]] = r
        return out

    def _raw(self, records: list[Any]) -> F64:
        """The original vectors of ``records`` as float64 rows (cosine rows are stored as unit vectors)."""
        x = np.asarray([_vector_of(r) for r in records], dtype=np.float32).astype(np.float64)
        if self._h.metric == "cosine":
            norms = np.asarray([float((r.payload or {}).get(qf.F_NORM, 1.0)) for r in records], dtype=np.float64)
            x *= norms[:, None]
        return x

    def _docs(self, records: list[Any], with_vector: bool) -> list[Document]:
        raw = self._raw(records).astype(np.float32).tolist() if with_vector and records else None
        return [qf.doc_from_payload(r.payload or {}, raw[i] if raw is not None else None)
                for i, r in enumerate(records)]

    # primitives ----------------------------------------------------------------

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        self._h.check()
        shard = self._h.ensure_shard(int(docs[0].vector.shape[0]))
        qe, opts, result = self._qe, self._h.options, UpsertResult()
        pids = [qf.point_id(p.doc.id) for p in docs]
        existing = self._live(shard, [p.doc.id for p in docs], [qf.F_CREATED], pids=pids)
        live = self._count(None) if opts.max_documents is not None else 0
        v64 = np.stack([p.vector for p in docs]).astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", v64, v64))
        unit = (v64 / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
        stored = (unit if self._h.metric == "cosine" else v64.astype(np.float32)).tolist()
        new = [i for i, p in enumerate(docs) if p.doc.id not in existing]
        dedup = _Dedup(self, shard, docs, new, unit) if opts.dedup and new else None
        points = []
        for i, p in enumerate(docs):
            d, old = p.doc, existing.get(p.doc.id)
            if old is not None and (old.payload or {}).get(qf.F_CREATED) is not None:
                d.created_at = qf.from_micros(old.payload[qf.F_CREATED])
            try:
                payload = qf.payload_from_doc(d, float(np.float32(norms[i])))
            except InvalidInputError as e:
                result.add_failure(d.id, e)
                continue
            if old is not None:
                result.updated += 1
            elif dedup is not None and dedup.is_duplicate(i, d):
                result.deduplicated += 1
                result.deduplicated_ids.append(d.id)
                continue
            elif opts.max_documents is not None and live + result.inserted >= opts.max_documents:
                result.add_failure(d.id, f"max_documents limit of {opts.max_documents} reached; not inserted")
                continue
            else:
                result.inserted += 1
            if dedup is not None:
                dedup.written(i, pids[i], d.content, updated=old is not None)
            self._h.expiring = self._h.expiring or qf.F_EXPIRES in payload
            points.append(qe.Point(pids[i], stored[i], payload))
        if points:
            with _engine("upsert"):
                shard.update(qe.UpdateOperation.upsert_points(points))
                shard.flush()
        return result

    def _query(self, vec: Vector, query: Query) -> QueryResult:
        t0 = time.perf_counter()
        metric = self._h.metric
        if query.metric is not None and query.metric != metric:
            raise InvalidInputError(f"collection {self.name!r} uses metric {metric!r}; a query cannot ask for "
                                    f"{query.metric!r} (Qdrant indexes one metric per collection)")
        q64 = vec.astype(np.float64)
        qn = float(np.sqrt(q64 @ q64))
        if metric == "cosine" and qn == 0.0:
            raise InvalidInputError("a zero query vector has no cosine similarity")
        flt_spec = parse(query.filter)
        compiled = qf.compile_filter(flt_spec)
        shard = self._h.check()
        empty = QueryResult([], query.offset, query.limit)
        min_score = query.min_score
        if shard is None or compiled.node == qf.FALSE or (metric == "euclidean" and (min_score or 0) > 1):
            return empty
        # The engine ranks candidates in float32; they are re-scored in float64 and sorted by
        # (score desc, id asc). Candidates are fetched until none unseen can reach the cut.
        send = (q64 / qn).astype(np.float32).tolist() if metric == "cosine" else vec.tolist()
        flt = self._filter(self._h.live(compiled.node))
        eps = (2 * int(vec.shape[0]) + 8) * _EPS32
        max_d = None if metric != "euclidean" or min_score is None or min_score <= 0 else 1.0 / min_score - 1.0
        need = query.offset + query.limit
        n = need + 1
        while True:
            with _engine("query"):
                points = shard.query(self._qe.QueryRequest(limit=n, query=self._qe.Query.Nearest(send),
                                                           filter=flt, with_payload=True, with_vector=True))
            if not points:
                return empty
            x = self._raw(points)
            scores, dists = qf.exact_scores(metric, x, q64, qn)
            docs = self._docs(points, False)
            keep = [i for i in range(len(points)) if (min_score is None or scores[i] >= min_score)
                    and (compiled.exact or matches(flt_spec, docs[i]))]
            keep.sort(key=lambda i: (-scores[i], docs[i].id))
            if len(points) < n:
                break  # every candidate seen
            # Stop once no unseen candidate can reach the cut, allowing for the engine's float32 error.
            last = float(points[-1].score)  # the engine's score: cosine/dot similarity, or L2 distance
            big = float(np.sqrt(np.einsum("ij,ij->i", x, x)).max())
            if metric == "euclidean":
                tol = float(np.sqrt(eps)) * (qn + big)
                if max_d is not None and last > max_d + tol:
                    break
                if len(keep) >= need and last > float(dists[keep[need - 1]]) + tol:
                    break
            else:
                tol = eps * (1.0 if metric == "cosine" else qn * big)
                if min_score is not None and last < min_score - tol:
                    break
                if len(keep) >= need and last < float(scores[keep[need - 1]]) - tol:
                    break
            n *= 2
        page = keep[query.offset:need]
        out: list[Document] = self._docs([points[i] for i in page], True) if query.include_embeddings else \
            [docs[i] for i in page]
        matches_ = [Match(out[j], float(scores[i]), float(dists[i]), query.offset + j + 1)
                    for j, i in enumerate(page)]
        return QueryResult(matches_, query.offset, query.limit, (time.perf_counter() - t0) * 1000.0)

    def _get(self, ids: list[str]) -> list[Document]:
        shard = self._h.check()
        if shard is None:
            return []
        found = self._live(shard, ids, None, vectors=True)
        docs = dict(zip(found, self._docs(list(found.values()), True), strict=True))
        return [docs[i] for i in ids if i in docs]

    def _delete(self, ids: list[str]) -> DeleteResult:
        shard = self._h.check()
        live = self._live(shard, ids, []) if shard is not None else {}
        missing = [i for i in ids if i not in live]
        if shard is not None:
            with _engine("delete"):  # expired copies too: they are invisible already
                shard.update(self._qe.UpdateOperation.delete_points([qf.point_id(i) for i in ids]))
                shard.flush()
        return DeleteResult(deleted=len(ids) - len(missing), not_found=len(missing), not_found_ids=missing)

    def _count(self, filter: Filter | None) -> int:
        shard = self._h.check()
        spec = parse(filter)
        compiled = qf.compile_filter(spec)
        if shard is None or compiled.node == qf.FALSE:
            return 0
        node = self._h.live(compiled.node)
        if compiled.exact:
            with _engine("count"):
                return int(shard.count(self._qe.CountRequest(exact=True, filter=self._filter(node))))
        return sum(1 for r in self._scroll(shard, node) if matches(spec, qf.doc_from_payload(r.payload or {})))

    def _clear(self) -> None:
        shard = self._h.check()
        if shard is not None:
            with _engine("clear"):
                shard.update(self._qe.UpdateOperation.delete_points_by_filter(self._qe.Filter()))
                shard.flush()

    # extras --------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Physically delete expired documents (already invisible); return how many there were."""
        with self._lock:
            shard = self._h.check()
            if shard is None:
                return 0
            qe = self._qe
            expired = qe.Filter(must=[qe.FieldCondition(
                key=qf.F_EXPIRES, range=qe.RangeFloat(lte=float(qf.to_micros(utcnow()))))])
            with _engine("purge"):
                n = int(shard.count(qe.CountRequest(exact=True, filter=expired)))
                if n:
                    shard.update(qe.UpdateOperation.delete_points_by_filter(expired))
                    shard.flush()
            return n

    def optimize(self) -> bool:
        """Purge expired documents, merge segments and build the HNSW index. Blocking: seconds for
        10k vectors, minutes for 100k. Returns whether anything changed."""
        with self._lock:
            self.purge_expired()
            shard = self._h.check()
            if shard is None:
                return False
            with _engine("optimize"):
                changed = bool(shard.optimize())
                shard.flush()
            return changed

    def __repr__(self) -> str:
        return f"QdrantCollection(name={self.name!r}, dimensions={self.dimensions}, metric={self._h.metric!r})"


class _Dedup(qf.BatchDedup):
    """Duplicate checks of one upsert call, in order, against the stored live documents (minus those
    this call replaced) and what this call wrote. Stored matches are looked up for a chunk of new
    documents at once: one scroll for content hashes, batched exact queries for vectors."""

    TOP = 4

    def __init__(self, coll: QdrantCollection, shard: Any, docs: list[PreparedDoc], new: list[int],
                 unit: npt.NDArray[np.float32]) -> None:
        super().__init__(coll.options.dedup_threshold, unit, new)
        self.coll, self.shard, self.qe = coll, shard, coll._qe
        self.hits: dict[int, list[str]] = {}  # batch index -> stored point ids with cosine >= threshold
        self.stored_sha: dict[str, set[str]] = {}
        self._matrix: tuple[list[str], npt.NDArray[np.float32]] | None = None
        shas = list({qf.content_sha256(docs[i].doc.content) for i in new if docs[i].doc.content})
        if shas:
            node = qf.all_of((qf.live_node(utcnow()), qf.MatchAny(qf.F_SHA, tuple(shas))))
            for r in coll._scroll(shard, node, payload=self.qe.PayloadSelector.Include([qf.F_SHA])):
                self.stored_sha.setdefault(r.payload[qf.F_SHA], set()).add(str(r.id))

    def _live_filter(self) -> Any:
        f = qf.to_edge(self.qe, qf.live_node(utcnow()))
        return self.qe.Filter(must=[f], must_not=[self.qe.HasIdCondition(set(self.replaced))]) if self.replaced else f

    def _nearest(self, vecs: list[npt.NDArray[np.float32]], limit: int) -> list[list[tuple[str, float]]]:
        """Exact top-``limit`` stored live rows (cosine shards store unit vectors: dot = cosine)."""
        qe, flt = self.qe, self._live_filter()
        reqs = [qe.QueryRequest(limit=limit, query=qe.Query.Nearest(v.tolist()), filter=flt, with_vector=True,
                                params=qe.SearchParams(exact=True)) for v in vecs]
        with _engine("dedup"):
            found = self.shard.query_batch(qe.QueryBatchRequest(reqs)) if reqs else []
        return [[(str(h.id), float(np.asarray(_vector_of(h), dtype=np.float32) @ v)) for h in pts]
                for v, pts in zip(vecs, found, strict=True)]

    def _lookup(self, i: int) -> None:
        """Stored near-duplicates of the chunk of new documents that holds batch index ``i``."""
        k = self.pos[i] - self.pos[i] % self.CHUNK
        chunk = [j for j in self.new[k:k + self.CHUNK] if np.any(self.unit[j])]
        if self.coll._h.metric == "cosine":
            for j, hits in zip(chunk, self._nearest([self.unit[j] for j in chunk], self.TOP), strict=True):
                self.hits[j] = [p for p, c in hits if c >= self.threshold]
                if len(hits) == self.TOP and hits[-1][1] >= self.threshold:
                    self.hits[j].append("*")  # maybe more beyond TOP: ask again if these get replaced
            return
        if self._matrix is None:  # dot/euclidean shards cannot rank by cosine: one scan per call
            recs = list(self.coll._scroll(self.shard, qf.live_node(utcnow()), payload=False, vector=True))
            x = np.asarray([_vector_of(r) for r in recs], dtype=np.float64).reshape(len(recs), self.unit.shape[1])
            n = np.sqrt(np.einsum("ij,ij->i", x, x))
            self._matrix = ([str(r.id) for r, ok in zip(recs, n > 0, strict=True) if ok],
                            (x[n > 0] / n[n > 0, None]).astype(np.float32))
        ids, matrix = self._matrix
        sims = matrix @ self.unit[chunk].T
        for c, j in enumerate(chunk):
            self.hits[j] = [ids[r] for r in np.flatnonzero(sims[:, c] >= self.threshold)]

    def is_duplicate(self, i: int, doc: Document) -> bool:
        unit = self.unit[i]
        if self.near_written(i, doc.content):
            return True
        if doc.content and any(p not in self.replaced for p in self.stored_sha.get(qf.content_sha256(doc.content), ())):
            return True
        if not np.any(unit):
            return False
        if i not in self.hits:
            self._lookup(i)
        fresh = [p for p in self.hits[i] if p not in self.replaced]
        if fresh == ["*"]:  # every hit seen was replaced by this call: ask again without them
            return any(c >= self.threshold for _, c in self._nearest([unit], 1)[0])
        return bool(fresh)


# ------------------------------------------------------------------ store


class QdrantStore(VectorStore):
    """Embedded Qdrant: one shard per collection under ``path``. Close it (or use ``with``)."""

    provider = "qdrant"

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, hnsw_m: int = 16,
                 hnsw_ef_construct: int = 100, default_options: CollectionOptions | None = None) -> None:
        super().__init__(default_options=default_options)
        self._qe = _import_edge()
        self.path = Path(path).expanduser().resolve()
        self.hnsw_m, self.hnsw_ef_construct = hnsw_m, hnsw_ef_construct
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"qdrant store: cannot create {self.path}: {e}") from e
        self._lockfile: IO[str] | None = _lock_exclusive(self.path / LOCK_FILE)
        self._handles: dict[str, _Handle] = {}
        self._mutex = threading.RLock()

    def _check_open(self) -> None:
        if self._lockfile is None:
            raise StoreError(f"qdrant store {self.path} is closed")

    def collection(self, name: str, options: CollectionOptions | None = None) -> QdrantCollection:
        """Open collection ``name``, creating it with ``options`` (default: the store's) if new.

        An existing collection keeps its stored options; asking for different ones (other than
        ``dimensions=None``) raises :class:`InvalidInputError`.
        """
        validate_collection_name(name)
        with self._mutex:
            self._check_open()
            h = self._handles.get(name)
            if h is None:
                h = _Handle(self, name)
                if (h.dir / MANIFEST).exists():
                    h.open_existing()
                else:
                    h.dir.mkdir(exist_ok=True)
                    h.write_manifest(options or self.default_options)
                self._handles[name] = h
            with h.lock:
                if options is not None:
                    same = dataclasses.replace(options, dimensions=None) == \
                        dataclasses.replace(h.options, dimensions=None)
                    if not same or (options.dimensions not in (None, h.dims) and h.dims is not None):
                        raise InvalidInputError(f"collection {name!r} exists with different options: {h.options}")
                    if h.dims is None and options.dimensions is not None:
                        h.write_manifest(options)  # an empty collection learns its dimensions
                if h.dims is not None:
                    h.ensure_shard(h.dims)
                return QdrantCollection(h)

    def list_collections(self) -> list[str]:
        with self._mutex:
            self._check_open()
            return sorted(p.parent.name for p in self.path.glob(f"*/{MANIFEST}"))

    def drop_collection(self, name: str) -> bool:
        validate_collection_name(name)
        with self._mutex:
            self._check_open()
            h = self._handles.pop(name, None)
            if h is not None:
                h.close()
            target = self.path / name
            if not (target / MANIFEST).exists():
                return False
            (target / MANIFEST).unlink()  # first: a crash mid-way leaves a directory that is no collection
            shutil.rmtree(target, ignore_errors=True)
            return True

    def close(self) -> None:
        """Flush and close every shard, then release the store lock. Idempotent."""
        with self._mutex:
            if self._lockfile is None:
                return
            try:
                for h in self._handles.values():
                    h.close()
            finally:
                self._handles.clear()
                self._lockfile.close()
                self._lockfile = None

    def __repr__(self) -> str:
        return f"QdrantStore(path={str(self.path)!r})"
