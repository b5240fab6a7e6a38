"""Qdrant through ``qdrant-client``: a Qdrant server (``qdrant.url``, or ``qdrant.host`` + ``port``,
with ``api_key``, ``https``, ``prefer_grpc``) or qdrant-client's in-process local mode
(``qdrant.local``: ``":memory:"`` or a directory; pure Python, exhaustive search, for tests and demos).

One aixpy collection is one Qdrant collection of the same name, created with the metric's
distance (cosine: ``Dot`` on unit vectors, see :data:`DISTANCES`; dot: ``Dot``; euclidean:
``Euclid``), the configured HNSW ``m``/``ef_construct`` and, on a server, keyword/integer payload
indexes of the reserved fields filters use. Its aixpy options (dimensions, metric, dedup, ttl,
max_documents) are stored in the collection's ``metadata`` (Qdrant >= 1.16), so reopening keeps
them; collections without that metadata are not aixpy's: :meth:`QdrantServerStore.list_collections`
hides them and :meth:`~QdrantServerStore.collection` refuses them. A collection whose dimensions
are not known yet is created without vectors and re-created on its first upsert.

Writes use ``wait=True`` (acknowledged = applied), in requests of :data:`UPSERT_BATCH` points: a
failed batch call may leave its earlier requests applied. Queries ask for ``hnsw_ef >= limit``
and re-rank candidates exactly, like the embedded mode. Every qdrant-client, HTTP and gRPC
exception is mapped to :class:`~aixpy.errors.StoreError` (or :class:`~aixpy.errors.NotFoundError`)
in :func:`map_error`; the API key never appears in messages or reprs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from aixpy.config.stores import QdrantStoreConfig
from aixpy.errors import AixpyError, InvalidInputError, MissingDependencyError, NotFoundError, StoreError, redact
from aixpy.vectorstores import _qdrant_common as qc
from aixpy.vectorstores import _qdrant_filters as qf
from aixpy.vectorstores._qdrant_common import QdrantCollectionBase
from aixpy.vectorstores.base import CollectionOptions, VectorStore
from aixpy.vectorstores.types import Metric
from aixpy.vectorstores.validation import validate_collection_name

__all__ = ["QdrantServerCollection", "QdrantServerStore", "client_kwargs", "map_error"]

INSTALL = "pip install 'aixpy[qdrant]'"
META_KEY = "aixpy"
FORMAT_VERSION = 1
UPSERT_BATCH = 256  # points per upsert request (384-d JSON: ~2 MB)
PAGE = 1_000  # ids per retrieve/delete request, records per scroll page
HNSW_EF_MIN = 256
DISTANCES: dict[Metric, str] = {"cosine": "Dot", "dot": "Dot", "euclidean": "Euclid"}
"""Qdrant distance per metric. Cosine collections hold unit vectors under ``Dot`` (same ranking and
scores as ``Cosine``): Qdrant's ``Cosine`` re-normalizes stored vectors in float32 (local mode
lazily, at the first search), which would change the vectors aixpy re-scores in float64."""


def _import_client() -> Any:
    try:
        return importlib.import_module("qdrant_client")
    except ImportError:
        raise MissingDependencyError("qdrant-client", INSTALL) from None


def client_kwargs(q: QdrantStoreConfig) -> dict[str, Any]:
    """The ``QdrantClient(...)`` arguments for a config (pure; includes the API key in clear)."""
    if q.local:
        return {"location": ":memory:"} if q.local == ":memory:" else \
            {"path": q.local, "force_disable_check_same_thread": True}  # calls are serialized by the store
    kw: dict[str, Any] = {"url": q.url} if q.url else {"host": q.host}
    kw.update(port=q.port, grpc_port=q.grpc_port, prefer_grpc=q.prefer_grpc, https=q.https,
              api_key=q.api_key.get_secret_value() if q.api_key else None, timeout=math.ceil(q.timeout),
              check_compatibility=False)  # no request before the first call; version errors surface then
    return kw


def map_error(e: BaseException, what: str, secrets: Sequence[str] = ()) -> AixpyError:
    """The aixpy error for an exception of qdrant-client, httpx or grpc raised while doing ``what``."""
    name, module = type(e).__name__, type(e).__module__
    status = getattr(e, "status_code", None)
    code = getattr(e, "code", None)
    if name == "UnexpectedResponse" and isinstance(status, int):  # REST: the server answered with an error
        body = bytes(getattr(e, "content", b"") or b"")[:300].decode("utf-8", "replace")
        detail = f"HTTP {status}" + (f": {body}" if body else "")
        kind = "auth" if status in (401, 403) else "missing" if status == 404 else "server"
    elif _is_rpc_error(e) and callable(code):  # gRPC: RpcError with a status code
        c = getattr(code(), "name", str(code()))
        details = getattr(e, "details", None)
        detail = f"gRPC {c}" + (f": {details()}" if callable(details) else "")
        kind = "auth" if c in ("UNAUTHENTICATED", "PERMISSION_DENIED") else "missing" if c == "NOT_FOUND" \
            else "network" if c in ("UNAVAILABLE", "DEADLINE_EXCEEDED") else "server"
    elif name == "ResponseHandlingException" or isinstance(e, OSError) or module.startswith(("httpx", "httpcore")):
        cause = getattr(e, "source", None) or e.__cause__ or e
        detail, kind = f"{type(cause).__name__}: {cause}", "network"
    else:  # local mode and client-side checks raise ValueError/RuntimeError/...
        detail, kind = f"{name}: {e}", "server"
    msg = {"auth": f"qdrant: {what}: authentication failed ({detail}); check qdrant.api_key",
           "missing": f"qdrant: {what}: not found ({detail})",
           "network": f"qdrant: {what}: cannot reach the server ({detail})",
           "server": f"qdrant: {what} failed ({detail})"}[kind]
    msg = redact(msg, list(secrets))
    return NotFoundError(msg) if kind == "missing" else StoreError(msg)


def _is_rpc_error(e: BaseException) -> bool:
    grpc = sys.modules.get("grpc")  # loaded by qdrant-client; never imported just for this check
    return grpc is not None and isinstance(e, grpc.RpcError)


# ------------------------------------------------------------------ collection


@dataclasses.dataclass(eq=False)
class _Handle:
    """State of one collection, shared by every wrapper handed out for it."""

    name: str
    options: CollectionOptions
    lock: threading.RLock
    created: bool = False  # the Qdrant collection has its vectors (dimensions known)
    closed: bool = False
    expiring: bool = True  # some point may have an expires_at (else the live filter can be skipped)
    keyword: bool = True  # the collection has the BM25 sparse vector (collections made before it do not)


class QdrantServerCollection(QdrantCollectionBase):
    """A collection of a Qdrant server (or of qdrant-client local mode).

    Get it from :meth:`QdrantServerStore.collection`.
    """

    _h: _Handle

    def __init__(self, store: QdrantServerStore, handle: _Handle) -> None:
        self._store = store
        super().__init__(handle)
        self._m = store._models

    def _call(self, what: str) -> contextlib.AbstractContextManager[None]:
        return self._store._call(f"{what} in collection {self.name!r}")

    def _flt(self, node: qf.Node) -> Any:
        return qf.to_client(self._m, node)

    # engine primitives -------------------------------------------------------

    def _storage(self, dims: int | None = None) -> bool:
        if self._h.closed:
            raise StoreError(f"qdrant collection {self.name!r} is closed (store closed or collection dropped)")
        if not self._h.created and dims is not None:
            self._store._materialize(self._h, dims)
        return self._h.created

    def _live_node(self, node: qf.Node) -> qf.Node:
        # Local mode evaluates filters in Python, point by point: skip the live filter while no
        # point can expire. Only safe with one writer, which local mode guarantees (a server does not).
        return super()._live_node(node) if self._h.expiring else node

    def _retrieve(self, pids: list[str], fields: list[str] | None, vectors: bool) -> list[Any]:
        sel: Any = True if fields is None else self._m.PayloadSelectorInclude(include=fields) if fields else False
        out: list[Any] = []
        for a in range(0, len(pids), PAGE):
            with self._call("retrieve"):
                out += self._store._client.retrieve(self.name, ids=pids[a:a + PAGE], with_payload=sel,
                                                    with_vectors=vectors)
        return out

    def _write(self, points: list[qc.PointData]) -> None:
        self._h.expiring = self._h.expiring or any(qf.F_EXPIRES in p for _, _, _, p in points)
        m = self._m
        for a in range(0, len(points), UPSERT_BATCH):
            chunk = points[a:a + UPSERT_BATCH]
            vectors: Any = [p[1] for p in chunk]
            if self._h.keyword:
                vectors = {"": vectors, qc.SPARSE: [m.SparseVector(indices=p[2][0], values=p[2][1]) if p[2] else
                                                    m.SparseVector(indices=[], values=[]) for p in chunk]}
            batch = m.Batch(ids=[p[0] for p in chunk], vectors=vectors, payloads=[p[3] for p in chunk])
            with self._call("upsert"):
                self._store._client.upsert(self.name, points=batch, wait=True)

    def _search(self, vector: list[float], limit: int, node: qf.Node, threshold: float | None) -> list[Any]:
        params = self._m.SearchParams(hnsw_ef=max(self._store.hnsw_ef, limit)) if self._store.remote else None
        with self._call("query"):
            res = self._store._client.query_points(
                self.name, query=vector, query_filter=self._flt(node), limit=limit, with_payload=True,
                with_vectors=True, score_threshold=threshold, search_params=params)
        return list(res.points)

    def _sparse_search(self, vector: qc.Sparse, limit: int, node: qf.Node) -> list[Any]:
        with self._call("keyword query"):
            res = self._store._client.query_points(
                self.name, query=self._m.SparseVector(indices=vector[0], values=vector[1]), using=qc.SPARSE,
                query_filter=self._flt(node), limit=limit, with_payload=True, with_vectors=True)
        return list(res.points)

    def _nearest(self, vectors: list[list[float]], limit: int, node: qf.Node) -> list[list[Any]]:
        m, flt = self._m, self._flt(node)
        params = m.SearchParams(exact=True) if self._store.remote else None  # local mode is always exact
        reqs = [m.QueryRequest(query=v, filter=flt, limit=limit, with_vector=True, with_payload=False,
                               params=params) for v in vectors]
        with self._call("dedup query"):
            return [list(r.points) for r in self._store._client.query_batch_points(self.name, requests=reqs)]

    def _count_where(self, node: qf.Node) -> int:
        with self._call("count"):
            return int(self._store._client.count(self.name, count_filter=self._flt(node), exact=True).count)

    def _scroll(self, node: qf.Node, fields: list[str] | None, vectors: bool = False) -> Iterator[Any]:
        sel: Any = True if fields is None else self._m.PayloadSelectorInclude(include=fields) if fields else False
        offset, flt = None, self._flt(node)
        while True:
            with self._call("scroll"):
                records, offset = self._store._client.scroll(self.name, scroll_filter=flt, limit=PAGE, offset=offset,
                                                             with_payload=sel, with_vectors=vectors)
            yield from records
            if offset is None or not records:
                return

    def _remove(self, pids: list[str]) -> None:
        for a in range(0, len(pids), PAGE):
            with self._call("delete"):
                self._store._client.delete(self.name, points_selector=self._m.PointIdsList(points=pids[a:a + PAGE]),
                                           wait=True)

    def _remove_where(self, node: qf.Node) -> None:
        with self._call("delete"):
            self._store._client.delete(self.name, points_selector=self._m.FilterSelector(filter=self._flt(node)),
                                       wait=True)

    def __repr__(self) -> str:
        return (f"QdrantServerCollection(name={self.name!r}, dimensions={self.dimensions}, "
                f"metric={self.metric!r}, where={self._store.where!r})")


# ------------------------------------------------------------------ store


class QdrantServerStore(VectorStore):
    """Collections of a Qdrant server, or of qdrant-client's local mode. Close it (or use ``with``).

    Build it from config with :meth:`from_config` (what ``vectorstores.new`` does), or pass an open
    ``qdrant_client.QdrantClient``: ``remote`` says whether it talks to a server (payload indexes and
    ``hnsw_ef`` are only sent to a server; local mode ignores them and warns).
    """

    provider = "qdrant"

    def __init__(self, client: Any, *, remote: bool, where: str, secrets: Sequence[str] = (), hnsw_m: int = 16,
                 hnsw_ef_construct: int = 100, hnsw_ef: int = HNSW_EF_MIN,
                 default_options: CollectionOptions | None = None) -> None:
        super().__init__(default_options=default_options)
        self._client = client
        self._models = importlib.import_module("qdrant_client.models")
        self.remote = remote
        self._secrets = [s for s in secrets if s]
        self.where = redact(where, self._secrets)
        self.hnsw_m, self.hnsw_ef_construct, self.hnsw_ef = hnsw_m, hnsw_ef_construct, hnsw_ef
        self._handles: dict[str, _Handle] = {}
        self._mutex = threading.RLock()
        self._closed = False

    @classmethod
    def from_config(cls, q: QdrantStoreConfig, *,
                    default_options: CollectionOptions | None = None) -> QdrantServerStore:
        """Open the store a ``qdrant:`` config block describes (``url``/``host`` or ``local``)."""
        mod = _import_client()
        kw = client_kwargs(q)
        secret = q.api_key.get_secret_value() if q.api_key else ""
        where = q.url or (f"local:{q.local}" if q.local else f"{q.host}:{q.grpc_port if q.prefer_grpc else q.port}")
        try:
            client = mod.QdrantClient(**kw)
        except Exception as e:
            raise map_error(e, f"opening {redact(where, [secret])}", [secret]) from e
        return cls(client, remote=not q.local, where=where, secrets=[secret], hnsw_m=q.hnsw_m,
                   hnsw_ef_construct=q.hnsw_ef_construct, hnsw_ef=q.hnsw_ef, default_options=default_options)

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        """Map every client exception raised inside to the aixpy error tree, once."""
        try:
            yield
        except AixpyError:
            raise
        except Exception as e:
            raise map_error(e, what, self._secrets) from e

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"qdrant store {self.where} is closed")

    # collection metadata -----------------------------------------------------------

    def _read(self, name: str) -> tuple[CollectionOptions, bool] | None:
        """The stored options of collection ``name`` and whether it has the BM25 sparse vector;
        ``None`` if it does not exist."""
        with self._call(f"reading collection {name!r}"):
            if not self._client.collection_exists(name):
                return None
            info = self._client.get_collection(name)
        meta = (info.config.metadata or {}).get(META_KEY)
        if not isinstance(meta, dict):
            raise InvalidInputError(f"qdrant collection {name!r} exists but was not created by aixpy "
                                    "(no aixpy metadata); use another name")
        try:
            if meta["format"] != FORMAT_VERSION:
                raise StoreError(f"qdrant collection {name!r}: metadata format {meta['format']} is not supported "
                                 f"(this aixpy reads format {FORMAT_VERSION})")
            return (qc.options_from_json(meta["dimensions"], meta["metric"], meta["options"]),
                    bool(meta.get("keyword", False)))
        except (KeyError, TypeError, ValueError) as e:
            raise StoreError(f"qdrant collection {name!r}: unreadable aixpy metadata: {e}") from e

    def _create(self, name: str, options: CollectionOptions) -> None:
        m, dims = self._models, options.dimensions
        meta = {META_KEY: {"format": FORMAT_VERSION, "dimensions": dims, "metric": options.metric,
                           "options": qc.options_to_json(options), "keyword": True}}
        vectors: Any = {} if dims is None else m.VectorParams(size=dims, distance=m.Distance(DISTANCES[options.metric]))
        with self._call(f"creating collection {name!r}"):
            self._client.create_collection(
                name, vectors_config=vectors, metadata=meta,
                sparse_vectors_config={qc.SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
                hnsw_config=m.HnswConfigDiff(m=self.hnsw_m, ef_construct=self.hnsw_ef_construct))
            if dims is not None and self.remote:
                for field, schema in self._indexes(options):
                    self._client.create_payload_index(name, field_name=field, field_schema=schema, wait=True)

    def _indexes(self, options: CollectionOptions) -> list[tuple[str, Any]]:
        """Payload indexes of the reserved fields filters read on every call (the live filter on
        ``expires_at`` too). User metadata stays unindexed: its types are not fixed."""
        m = self._models
        out: list[tuple[str, Any]] = [(qf.F_TENANT, m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD,
                                                                          is_tenant=True))]
        out += [(f, m.PayloadSchemaType.KEYWORD) for f in qc.KEYWORD_FIELDS if f != qf.F_TENANT]
        if options.dedup:
            out.append((qf.F_SHA, m.PayloadSchemaType.KEYWORD))
        out.append((qf.F_EXPIRES, m.IntegerIndexParams(type=m.IntegerIndexType.INTEGER, lookup=False, range=True)))
        return out

    def _has_expiring(self, name: str) -> bool:
        has = self._models.Filter(must_not=[self._models.IsEmptyCondition(
            is_empty=self._models.PayloadField(key=qf.F_EXPIRES))])
        with self._call(f"counting expiring documents of {name!r}"):
            return bool(self._client.count(name, count_filter=has, exact=True).count)

    def _materialize(self, h: _Handle, dims: int) -> None:
        """Give a collection created without dimensions its vectors (it holds no points yet)."""
        options = dataclasses.replace(h.options, dimensions=dims)  # the caller holds h.lock
        with self._call(f"re-creating collection {h.name!r} with {dims} dimensions"):
            self._client.delete_collection(h.name)
        self._create(h.name, options)
        h.options, h.created, h.keyword = options, True, True

    # VectorStore -------------------------------------------------------------------

    def collection(self, name: str, options: CollectionOptions | None = None) -> QdrantServerCollection:
        """Open collection ``name``, creating it with ``options`` (default: the store's) if new.

        An existing collection keeps its stored options; asking for different ones (other than
        ``dimensions=None``) raises :class:`InvalidInputError`.
        """
        validate_collection_name(name)
        with self._mutex:
            self._check_open()
            h = self._handles.get(name)
            if h is None:
                found = self._read(name)
                if found is None:
                    stored, keyword = options or self.default_options, True
                    self._create(name, stored)
                else:
                    stored, keyword = found
                lock = self._mutex if not self.remote else threading.RLock()  # local mode is not thread-safe
                h = _Handle(name, stored, lock, created=stored.dimensions is not None, keyword=keyword)
                h.expiring = self.remote or (h.created and self._has_expiring(name))
                self._handles[name] = h
            with h.lock:
                if options is not None:
                    same = dataclasses.replace(options, dimensions=None) == \
                        dataclasses.replace(h.options, dimensions=None)
                    dims = h.options.dimensions
                    if not same or (options.dimensions not in (None, dims) and dims is not None):
                        raise InvalidInputError(f"collection {name!r} exists with different options: {h.options}")
                    if dims is None and options.dimensions is not None:
                        self._materialize(h, options.dimensions)  # an empty collection learns its dimensions
                return QdrantServerCollection(self, h)

    def list_collections(self) -> list[str]:
        """Names of the aixpy collections (collections without aixpy metadata are not listed)."""
        with self._mutex:
            self._check_open()
            with self._call("listing collections"):
                names = [c.name for c in self._client.get_collections().collections]
                out = []
                for n in names:
                    if n in self._handles or (_valid(n) and isinstance(
                            (self._client.get_collection(n).config.metadata or {}).get(META_KEY), dict)):
                        out.append(n)
            return sorted(out)

    def drop_collection(self, name: str) -> bool:
        validate_collection_name(name)
        with self._mutex:
            self._check_open()
            h = self._handles.pop(name, None)
            if h is not None:
                h.closed = True
            elif self._read(name) is None:  # refuses collections that are not aixpy's
                return False
            with self._call(f"dropping collection {name!r}"):
                return bool(self._client.delete_collection(name)) or h is not None

    def close(self) -> None:
        """Close the client (and release a local directory's lock). Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            for h in self._handles.values():
                h.closed = True
            self._handles.clear()
            with self._call("closing the client"):
                self._client.close()

    def __repr__(self) -> str:
        return f"QdrantServerStore(where={self.where!r}, remote={self.remote})"


def _valid(name: str) -> bool:
    try:
        validate_collection_name(name)
    except InvalidInputError:
        return False
    return True
