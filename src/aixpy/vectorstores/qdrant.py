"""Qdrant: embedded (``qdrant.path``), a server (``qdrant.url`` / ``qdrant.host``) or qdrant-client's
local mode (``qdrant.local``). :func:`create` picks the mode from the config.

Embedded mode (``qdrant-edge-py``) runs Qdrant's own engine in-process, persisted on disk, no
server. Layout under the store path (``vectorstore.qdrant.path``, default ``./.aixpy/qdrant``)::

    .lock                      exclusive lock of the open store (one process at a time)
    <collection>/manifest.json dimensions, metric, options, format version (written atomically)
    <collection>/shard/        the Qdrant shard (segments, WAL, HNSW, payload indexes)

Every write call (``upsert``, ``upsert_batch``, ``delete``, ``clear``) flushes the shard before it
returns, so an acknowledged write is on disk. Until :meth:`QdrantCollection.optimize` builds the
HNSW index, search is exact (brute force, a few ms per 10k vectors). Candidates are re-scored in
float64 from the stored float32 vectors, so scores follow :mod:`aixpy.vectorstores.types` exactly.
Cosine collections store unit vectors (and each original norm) under Qdrant's ``Dot`` distance.

Server and local modes live in :mod:`aixpy.vectorstores._qdrant_server` (``QdrantServerStore``);
both modes share point ids, the payload layout and the collection logic
(:mod:`aixpy.vectorstores._qdrant_common`) and the filter compiler
(:mod:`aixpy.vectorstores._qdrant_filters`).
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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from aixpy.config.stores import QdrantStoreConfig, VectorStoreConfig
from aixpy.errors import AixpyError, InvalidInputError, MissingDependencyError, StoreError
from aixpy.vectorstores import _qdrant_common as qc
from aixpy.vectorstores import _qdrant_filters as qf
from aixpy.vectorstores._qdrant_common import QdrantCollectionBase
from aixpy.vectorstores.base import CollectionOptions, VectorStore
from aixpy.vectorstores.types import Metric, utcnow
from aixpy.vectorstores.validation import validate_collection_name

__all__ = ["DEFAULT_PATH", "QdrantCollection", "QdrantStore", "create"]

DEFAULT_PATH = "./.aixpy/qdrant"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shard"
LOCK_FILE = ".lock"
FULL_SCAN_THRESHOLD_KB = 10_000  # Qdrant's default: smaller (filtered) segments are searched exactly
_PAGE = 1_000


def create(config: VectorStoreConfig) -> VectorStore:
    """Registry factory. ``qdrant.path`` (or nothing): the embedded engine; ``qdrant.url`` /
    ``qdrant.host``: a Qdrant server; ``qdrant.local``: qdrant-client's local mode."""
    q = config.qdrant or QdrantStoreConfig()
    defaults = CollectionOptions(dimensions=config.embedding_dimensions, metric=config.metric)
    if q.url or q.host or q.local:
        from aixpy.vectorstores._qdrant_server import QdrantServerStore

        return QdrantServerStore.from_config(q, default_options=defaults)
    return QdrantStore(q.path or DEFAULT_PATH, hnsw_m=q.hnsw_m, hnsw_ef_construct=q.hnsw_ef_construct,
                       hnsw_ef=q.hnsw_ef, default_options=defaults)


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
        self.keyword = True  # the shard has the BM25 sparse vector (shards made before it existed do not)

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
            "dimensions": options.dimensions, "metric": options.metric, "options": qc.options_to_json(options),
            "shard_ready": self.ready, "keyword": self.keyword,
            "hnsw": {"m": self.store.hnsw_m, "ef_construct": self.store.hnsw_ef_construct},
        })

    def open_existing(self) -> None:
        try:
            data = json.loads((self.dir / MANIFEST).read_text(encoding="utf-8"))
            if data["format"] != FORMAT_VERSION:
                raise StoreError(f"qdrant collection {self.name!r}: manifest format {data['format']} is not "
                                 f"supported (this aixpy reads format {FORMAT_VERSION})")
            self.options = qc.options_from_json(data["dimensions"], data["metric"], data["options"])
            self.ready = bool(data["shard_ready"])
            self.keyword = bool(data.get("keyword", not self.ready))
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
        sparse = {qc.SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)} if self.keyword else None
        config = qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dims, distance=distance), sparse_vectors=sparse,
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


class QdrantCollection(QdrantCollectionBase):
    """A collection backed by one embedded Qdrant shard. Get it from :meth:`QdrantStore.collection`."""

    _h: _Handle

    def __init__(self, handle: _Handle) -> None:
        super().__init__(handle)  # every wrapper of one collection shares its lock and state
        self._qe = handle.qe

    def _shared_dimensions(self) -> int | None:
        return self._h.dims

    # engine primitives -------------------------------------------------------

    def _shard(self) -> Any:
        shard = self._h.check()
        if shard is None:
            raise StoreError(f"qdrant collection {self.name!r} has no data yet")
        return shard

    def _storage(self, dims: int | None = None) -> bool:
        shard = self._h.check()
        if shard is None and dims is not None:
            shard = self._h.ensure_shard(dims)
        return shard is not None

    def _live_node(self, node: qf.Node) -> qf.Node:
        return self._h.live(node)

    def _retrieve(self, pids: list[str], fields: list[str] | None, vectors: bool) -> list[Any]:
        sel: Any = True if fields is None else self._qe.PayloadSelector.Include(fields)
        with _engine("retrieve"):
            return list(self._shard().retrieve(pids, sel, vectors))

    def _write(self, points: list[qc.PointData]) -> None:
        qe, shard = self._qe, self._shard()
        self._h.expiring = self._h.expiring or any(qf.F_EXPIRES in p for _, _, _, p in points)

        def vector(dense: list[float], sparse: qc.Sparse | None) -> Any:
            return dense if sparse is None else {"": dense, qc.SPARSE: qe.SparseVector(*sparse)}

        with _engine("upsert"):
            shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, vector(v, sp), p) for i, v, sp, p in points]))
            shard.flush()

    def _sparse_search(self, vector: qc.Sparse, limit: int, node: qf.Node) -> list[Any]:
        qe = self._qe
        with _engine("keyword query"):
            return list(self._shard().query(qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(qe.SparseVector(*vector), using=qc.SPARSE),
                filter=qf.to_edge(qe, node), with_payload=True, with_vector=True)))

    def _search(self, vector: list[float], limit: int, node: qf.Node, threshold: float | None) -> list[Any]:
        qe = self._qe
        with _engine("query"):
            return list(self._shard().query(qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(vector), filter=qf.to_edge(qe, node), with_payload=True,
                with_vector=True, score_threshold=threshold,
                params=qe.SearchParams(hnsw_ef=max(self._h.store.hnsw_ef, limit)))))

    def _nearest(self, vectors: list[list[float]], limit: int, node: qf.Node) -> list[list[Any]]:
        qe = self._qe
        flt = qf.to_edge(qe, node)
        reqs = [qe.QueryRequest(limit=limit, query=qe.Query.Nearest(v), filter=flt, with_vector=True,
                                params=qe.SearchParams(exact=True)) for v in vectors]
        with _engine("dedup"):
            return [list(pts) for pts in self._shard().query_batch(qe.QueryBatchRequest(reqs))]

    def _count_where(self, node: qf.Node) -> int:
        qe = self._qe
        with _engine("count"):
            return int(self._shard().count(qe.CountRequest(exact=True, filter=qf.to_edge(qe, node))))

    def _scroll(self, node: qf.Node, fields: list[str] | None, vectors: bool = False) -> Iterator[Any]:
        qe, shard = self._qe, self._shard()
        payload: Any = True if fields is None else (qe.PayloadSelector.Include(fields) if fields else False)
        offset, flt = None, qf.to_edge(qe, node)
        while True:
            with _engine("scroll"):
                records, offset = shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=_PAGE, filter=flt, with_payload=payload, with_vector=vectors))
            yield from records
            if offset is None or not records:
                return

    def _remove(self, pids: list[str]) -> None:
        shard = self._shard()
        with _engine("delete"):
            shard.update(self._qe.UpdateOperation.delete_points(pids))
            shard.flush()

    def _remove_where(self, node: qf.Node) -> None:
        shard = self._shard()
        with _engine("delete"):
            shard.update(self._qe.UpdateOperation.delete_points_by_filter(qf.to_edge(self._qe, node)))
            shard.flush()

    # extras --------------------------------------------------------------------

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


# ------------------------------------------------------------------ store


class QdrantStore(VectorStore):
    """Embedded Qdrant: one shard per collection under ``path``. Close it (or use ``with``)."""

    provider = "qdrant"

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH, *, hnsw_m: int = 16,
                 hnsw_ef_construct: int = 100, hnsw_ef: int = 256,
                 default_options: CollectionOptions | None = None) -> None:
        super().__init__(default_options=default_options)
        self._qe = _import_edge()
        self.path = Path(path).expanduser().resolve()
        self.hnsw_m, self.hnsw_ef_construct, self.hnsw_ef = hnsw_m, hnsw_ef_construct, hnsw_ef
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
