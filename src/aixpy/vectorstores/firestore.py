"""Google Cloud Firestore vector search: native ``Vector`` fields and ``find_nearest``.

Layout: ``<namespace>/<collection>`` holds a collection's options (the catalog) and
``<namespace>/<collection>/documents/<id>`` its documents (fields: :mod:`._firestore_codec`).

Search: ``find_nearest`` (COSINE / DOT_PRODUCT / EUCLIDEAN, distances in a result field) with the
filter as pre-filter ``where`` clauses; the candidates are re-scored in float64 from their stored
vectors and ordered by (score desc, id asc), fetching more while a tie or an unseen candidate could
still reach the page. Firestore returns at most 1,000 neighbours: when ``offset + limit`` needs
more, or a filter Firestore cannot express exactly keeps rejecting candidates, the query becomes
an exact client-side scan of the documents matching the native part of the filter (streamed in
pages of 1,000; slower, never wrong). Filters Firestore cannot express exactly are re-checked
with the reference evaluator, never dropped (:mod:`._firestore_filters`). Expired documents are
never returned; :meth:`FirestoreCollection.purge_expired` deletes them (or set a Firestore TTL
policy on the ``live_until`` field of the ``documents`` collection group).

Production Firestore needs a vector index per dimension, and a composite one per filter shape
(the error message of a query that lacks one names the ``gcloud`` command)::

    gcloud firestore indexes composite create --collection-group=documents --query-scope=COLLECTION \\
        --field-config=field-path=embedding,vector-config='{"dimension":"384","flat":{}}'

Credentials: ``emulator_host`` (or ``FIRESTORE_EMULATOR_HOST``) -> the emulator, no credentials;
else ``credentials_file`` (a service-account JSON key); else Application Default Credentials.
Writes go in batches of at most 500 documents (and about 8 MiB).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.config.stores import FirestoreStoreConfig, VectorStoreConfig
from aixpy.errors import AixpyError, ConfigError, InvalidInputError, MissingDependencyError, StoreError
from aixpy.vectorstores import _firestore_codec as fc
from aixpy.vectorstores import _firestore_filters as ff
from aixpy.vectorstores.base import CollectionOptions, PreparedDoc, SharedStateCollection, Vector, VectorStore
from aixpy.vectorstores.filters import Filter, matches, parse
from aixpy.vectorstores.types import DeleteResult, Document, Match, Query, QueryResult, UpsertResult, utcnow
from aixpy.vectorstores.validation import validate_collection_name

__all__ = ["MAX_DIMENSIONS", "MAX_NEAREST", "FirestoreCollection", "FirestoreStore", "create"]

MAX_NEAREST = fc.MAX_NEAREST
MAX_DIMENSIONS = 2048  # Firestore's largest vector
MAX_BATCH = 500  # writes per commit
MAX_BATCH_BYTES = 8 << 20  # a commit request may hold 10 MiB
PAGE = 1000
SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/datastore")
_FILTER_FIELDS = (fc.F_ID, fc.F_META, fc.F_META_JSON, fc.F_TAGS, "tenant", "user", "session", fc.F_EXPIRES)
F64 = npt.NDArray[np.float64]


def create(config: VectorStoreConfig) -> FirestoreStore:
    """Registry factory: a store for ``config.firestore``."""
    fs = config.firestore
    if fs is None:
        raise ConfigError("provider 'firestore' needs a firestore: block", path="vectorstore.firestore")
    defaults = CollectionOptions(dimensions=config.embedding_dimensions, metric=config.metric)
    return FirestoreStore(fs.project_id, namespace=fs.namespace, database=fs.database,
                          credentials_file=fs.credentials_file, emulator_host=fs.emulator_host,
                          timeout=fs.timeout, default_options=defaults)


@contextlib.contextmanager
def _rpc(what: str) -> Iterator[None]:
    """Map google-api-core / google-auth errors to :class:`StoreError` (once, at the boundary)."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    try:
        yield
    except AixpyError:
        raise
    except gexc.FailedPrecondition as e:
        raise StoreError(f"firestore: {what} failed: {e.message} (a filtered vector query needs a composite "
                         "vector index in production Firestore; the message above says which)") from e
    except (gexc.Unauthenticated, gexc.PermissionDenied) as e:
        raise StoreError(f"firestore: {what} failed: not authorized ({type(e).__name__}: {e.message})") from e
    except gexc.GoogleAPICallError as e:
        raise StoreError(f"firestore: {what} failed: {type(e).__name__}: {e.message}") from e
    except (gexc.RetryError, aexc.GoogleAuthError) as e:
        raise StoreError(f"firestore: {what} failed: {type(e).__name__}: {e}") from e


def _import_gapic() -> Any:
    try:
        import grpc  # type: ignore[import-untyped]
        from google.cloud.firestore_v1.services.firestore import FirestoreClient
        from google.cloud.firestore_v1.services.firestore.transports.grpc import FirestoreGrpcTransport
    except ImportError:
        raise MissingDependencyError("google-cloud-firestore", "pip install 'aixpy[firestore]'") from None
    return grpc, FirestoreClient, FirestoreGrpcTransport


def _retry(timeout: float) -> Any:
    """Retry transient failures (our writes are idempotent sets and deletes) for at most ``timeout`` s."""
    from google.api_core import exceptions as gexc
    from google.api_core import retry

    transient = retry.if_exception_type(gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError,
                                        gexc.ResourceExhausted, gexc.Aborted)
    return retry.Retry(predicate=transient, initial=0.1, maximum=5.0, multiplier=1.5, timeout=timeout)


def _credentials(credentials_file: str | None) -> Any:
    from google.auth import exceptions as aexc

    if credentials_file is not None:
        from google.oauth2 import service_account

        path = os.path.expanduser(credentials_file)
        try:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=SCOPES)
        except (OSError, ValueError, KeyError, aexc.GoogleAuthError) as e:
            # never echo the file's content: only its path and the kind of problem
            raise ConfigError(f"cannot load the service-account key {path!r}: {type(e).__name__}",
                              path="vectorstore.firestore.credentials_file") from None
    import google.auth

    try:
        creds, _ = google.auth.default(scopes=SCOPES)
    except aexc.DefaultCredentialsError as e:
        raise ConfigError("no Google credentials found: set vectorstore.firestore.credentials_file, run "
                          "`gcloud auth application-default login`, or set FIRESTORE_EMULATOR_HOST for the "
                          "emulator", path="vectorstore.firestore") from e
    return creds


class _Conn:
    """The one place that talks to Firestore: a GAPIC client, request metadata, error mapping."""

    def __init__(self, project_id: str, database: str, credentials_file: str | None, emulator_host: str | None,
                 timeout: float) -> None:
        grpc, client_cls, transport_cls = _import_gapic()
        self.database = f"projects/{project_id}/databases/{database}"
        self.timeout = timeout
        self.emulator = emulator_host or os.environ.get("FIRESTORE_EMULATOR_HOST") or None
        self.metadata: list[tuple[str, str]] = [("google-cloud-resource-prefix", self.database)]
        self.retry = _retry(timeout)
        if self.emulator:
            opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
            self._channel: Any = grpc.insecure_channel(self.emulator, options=opts)
            self.api = client_cls(transport=transport_cls(channel=self._channel))
            self.metadata.append(("authorization", "Bearer owner"))  # what the emulator expects
            self.credentials: Any = None
        else:
            self.credentials = _credentials(credentials_file)
            self.api = client_cls(credentials=self.credentials)
            self._channel = None

    @property
    def root(self) -> str:
        return f"{self.database}/documents"

    def commit(self, writes: list[Any]) -> None:
        """Commit ``writes`` in batches of <= 500 (and <= 8 MiB); each batch is atomic."""
        start, size = 0, 0
        for i, w in enumerate(writes):
            n = w.ByteSize()
            if i > start and (i - start >= MAX_BATCH or size + n > MAX_BATCH_BYTES):
                self._commit(writes[start:i], start, len(writes))
                start, size = i, 0
            size += n
        if start < len(writes):
            self._commit(writes[start:], start, len(writes))

    def _commit(self, chunk: list[Any], done: int, total: int) -> None:
        p = fc.pb()
        req = p.CommitRequest.wrap(p.CommitRequestPb(database=self.database, writes=chunk))
        what = f"commit of {len(chunk)} writes ({done} of {total} already written)" if done else \
            f"commit of {len(chunk)} writes"
        with _rpc(what):
            self.api.commit(request=req, metadata=self.metadata, timeout=self.timeout,
                            retry=self.retry)

    def run_query(self, parent: str, query: Any) -> Iterator[Any]:
        p = fc.pb()
        req = p.RunQueryRequest.wrap(p.RunQueryRequestPb(parent=parent, structured_query=query))
        with _rpc("query"):
            for r in self.api.run_query(request=req, metadata=self.metadata, timeout=self.timeout,
                            retry=self.retry):
                raw = type(r).pb(r)
                if raw.HasField("document"):
                    yield raw.document

    def count(self, parent: str, query: Any) -> int:
        p = fc.pb()
        req = p.RunAggregationQueryRequest.wrap(p.RunAggregationQueryRequestPb(
            parent=parent, structured_aggregation_query=fc.count_query(query)))
        total = 0
        with _rpc("count"):
            for r in self.api.run_aggregation_query(request=req, metadata=self.metadata, timeout=self.timeout,
                            retry=self.retry):
                raw = type(r).pb(r)
                if raw.HasField("result"):
                    total = int(raw.result.aggregate_fields["n"].integer_value)
        return total

    def get(self, names: Sequence[str], fields: Sequence[str] | None = None) -> dict[str, Any]:
        """Existing documents among ``names`` (full or projected), by name."""
        p = fc.pb()
        out: dict[str, Any] = {}
        for a in range(0, len(names), PAGE):
            raw_req = p.BatchGetDocumentsRequestPb(database=self.database, documents=list(names[a:a + PAGE]))
            if fields is not None:
                raw_req.mask.CopyFrom(p.DocumentMask(field_paths=list(fields) or [fc.F_ID]))
            with _rpc("get"):
                for r in self.api.batch_get_documents(request=p.BatchGetDocumentsRequest.wrap(raw_req),
                                                      metadata=self.metadata, timeout=self.timeout,
                            retry=self.retry):
                    raw = type(r).pb(r)
                    if raw.HasField("found"):
                        out[raw.found.name] = raw.found
        return out

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        else:
            with contextlib.suppress(Exception):
                self.api.transport.close()


def _options_json(o: CollectionOptions) -> dict[str, Any]:
    return {"dedup": o.dedup, "dedup_threshold": o.dedup_threshold, "max_documents": o.max_documents,
            "ttl_seconds": None if o.ttl is None else o.ttl.total_seconds()}


def _options_from(fields: Any) -> CollectionOptions:
    try:
        dims, metric = fc.decode(fields["dimensions"]), fc.decode(fields["metric"])
        o = fc.decode(fields["options"])
        ttl = o["ttl_seconds"]
        return CollectionOptions(dimensions=dims, metric=metric, dedup=o["dedup"],
                                 dedup_threshold=o["dedup_threshold"], max_documents=o["max_documents"],
                                 ttl=None if ttl is None else timedelta(seconds=ttl))
    except (KeyError, TypeError, InvalidInputError) as e:
        raise StoreError(f"firestore: unreadable collection catalog entry: {e}") from e


def _check_dims(dims: int | None) -> None:
    if dims is not None and dims > MAX_DIMENSIONS:
        raise InvalidInputError(f"Firestore vectors have at most {MAX_DIMENSIONS} dimensions, got {dims}")


class _Handle:
    """State of one collection shared by every wrapper handed out for it."""

    def __init__(self, store: FirestoreStore, name: str, options: CollectionOptions) -> None:
        self.conn, self.name, self.options = store._conn, name, options
        self.catalog = f"{store._conn.root}/{store.namespace}/{name}"
        self.lock = threading.RLock()
        self.closed = False

    def write_catalog(self, options: CollectionOptions) -> None:
        p = fc.pb()
        fields = fc.catalog_fields(self.name, options.dimensions, options.metric, _options_json(options))
        self.conn.commit([p.Write(update=p.Document(name=self.catalog, fields=fields))])
        self.options = options

    def doc_name(self, doc_id: str) -> str:
        return f"{self.catalog}/{fc.DOCS}/{fc.doc_key(doc_id)}"

    def check(self) -> _Conn:
        if self.closed:
            raise StoreError(f"firestore collection {self.name!r} is closed (store closed or collection dropped)")
        return self.conn


class FirestoreCollection(SharedStateCollection):
    """A collection stored in Firestore. Get it from :meth:`FirestoreStore.collection`."""

    _h: _Handle

    def __init__(self, handle: _Handle) -> None:
        super().__init__(handle)

    # reading -------------------------------------------------------------------

    def _scan(self, plan: ff.Plan, spec: Filter | None, now: datetime,
              fields: Sequence[str] | None = None) -> Iterator[fc.Row]:
        """Every live document matching ``spec``: the plan's equality/array clauses run in Firestore
        (in key order, pages of 1,000); ranges, expiry and inexact parts are checked here."""
        conn = self._h.check()
        eq = [a for a in plan.atoms if not isinstance(a, ff.NumRange)]
        exact = plan.exact and len(eq) == len(plan.atoms)
        flt, after, parent = fc.where(eq), None, self._h.catalog
        while True:
            docs = list(conn.run_query(parent, fc.scan_query(flt, PAGE, after, fields)))
            for d in docs:
                row = fc.decode_row(d)
                if row.live(now) and (exact or matches(spec, row.doc)):
                    yield row
            if len(docs) < PAGE:
                return
            after = docs[-1].name

    def _nearest(self, vec: Vector, q64: F64, query: Query, plan: ff.Plan, spec: Filter | None,
                 now: datetime) -> tuple[list[fc.Row], F64, F64, list[int]] | None:
        """Ranked candidates from ``find_nearest``; ``None`` when 1,000 neighbours are not enough."""
        conn, metric = self._h.check(), self._h.options.metric
        need, min_score = query.offset + query.limit, query.min_score
        flt, send = fc.where(plan.atoms), vec.tolist()
        n = min(MAX_NEAREST, need + 1 if plan.exact else max(2 * need, need + 16))
        while True:
            rows = [fc.decode_row(d) for d in conn.run_query(self._h.catalog, fc.nearest_query(flt, send, metric, n))]
            x = np.stack([r.vector for r in rows if r.vector is not None]) if rows else np.empty((0, vec.shape[0]))
            if x.shape[0] != len(rows):
                raise StoreError(f"firestore collection {self.name!r}: a stored document has no embedding")
            scores, dists = fc.exact_scores(metric, x, q64)
            passed = [i for i, r in enumerate(rows) if r.live(now) and (plan.exact or matches(spec, r.doc))]
            keep = [i for i in passed if min_score is None or scores[i] >= min_score]
            keep.sort(key=lambda i: (-scores[i], rows[i].doc.id))
            if len(rows) < n:
                return rows, scores, dists, keep  # every candidate seen
            # Unseen candidates score at most the engine's score of the last one (allowing for rounding).
            last = fc.engine_score(metric, rows[-1].distance or 0.0)
            tol = 1e-9 * (1.0 + float(np.max(np.abs(scores))))
            if (min_score is not None and last < min_score - tol) or \
                    (len(keep) >= need and last < float(scores[keep[need - 1]]) - tol):
                return rows, scores, dists, keep
            # Too few candidates pass the filter: ask for as many as the pass rate suggests, or scan
            # at once when even 1,000 would not do.
            want = 2 * n if len(passed) >= need else (n * (need + 1)) // max(len(passed), 1) * 3 // 2 + 1
            if n >= MAX_NEAREST or want > 4 * MAX_NEAREST:
                return None
            n = min(MAX_NEAREST, max(2 * n, want))

    def _query(self, vec: Vector, query: Query) -> QueryResult:
        t0 = time.perf_counter()
        metric = self._h.options.metric
        if query.metric is not None and query.metric != metric:
            raise InvalidInputError(f"collection {self.name!r} uses metric {metric!r}; a query cannot ask for "
                                    f"{query.metric!r} (one metric per collection on indexed backends)")
        spec = parse(query.filter)
        plan = ff.compile_filter(spec)
        q64, now = vec.astype(np.float64), utcnow()
        need = query.offset + query.limit
        found = self._nearest(vec, q64, query, plan, spec, now) if need < MAX_NEAREST else None
        if found is None:  # exact client-side scan of the pre-filtered documents
            rows = list(self._scan(plan, spec, now))
            x = np.stack([r.vector for r in rows if r.vector is not None]) if rows else np.empty((0, vec.shape[0]))
            scores, dists = fc.exact_scores(metric, x, q64)
            keep = [i for i in range(len(rows)) if query.min_score is None or scores[i] >= query.min_score]
            keep.sort(key=lambda i: (-scores[i], rows[i].doc.id))
        else:
            rows, scores, dists, keep = found
        out: list[Match] = []
        for rank, i in enumerate(keep[query.offset:need], start=query.offset + 1):
            d, v = rows[i].doc, rows[i].vector
            if query.include_embeddings and v is not None:
                d.embedding = v.tolist()
            out.append(Match(d, float(scores[i]), float(dists[i]), rank))
        return QueryResult(out, query.offset, query.limit, (time.perf_counter() - t0) * 1000.0)

    def _get(self, ids: list[str]) -> list[Document]:
        conn, now = self._h.check(), utcnow()
        names = [self._h.doc_name(i) for i in ids]
        found = conn.get(names)
        out: list[Document] = []
        for doc_id, name in zip(ids, names, strict=True):
            raw = found.get(name)
            if raw is None:
                continue
            row = fc.decode_row(raw)
            if row.doc.id == doc_id and row.live(now):
                row.doc.embedding = None if row.vector is None else row.vector.tolist()
                out.append(row.doc)
        return out

    def _live_names(self, names: list[str]) -> dict[str, fc.Row]:
        now = utcnow()
        found = self._h.check().get(names, [fc.F_ID, fc.F_CREATED, fc.F_EXPIRES])
        rows = {n: fc.decode_row(d) for n, d in found.items()}
        return {n: r for n, r in rows.items() if r.live(now)}

    def _delete(self, ids: list[str]) -> DeleteResult:
        names = [self._h.doc_name(i) for i in ids]
        live = self._live_names(names)
        p = fc.pb()
        self._h.check().commit([p.Write(delete=n) for n in names])  # expired copies too: already invisible
        missing = [i for i, n in zip(ids, names, strict=True) if n not in live]
        return DeleteResult(deleted=len(ids) - len(missing), not_found=len(missing), not_found_ids=missing)

    def _count(self, filter: Filter | None) -> int:
        spec = parse(filter)
        plan = ff.compile_filter(spec)
        now = utcnow()
        if plan.exact:
            conn = self._h.check()
            q = fc.scan_query(fc.where(plan.atoms, live_after=now), 1, None)
            q.ClearField("order_by")
            q.ClearField("limit")
            return conn.count(self._h.catalog, q)
        return sum(1 for _ in self._scan(plan, spec, now, _FILTER_FIELDS))

    def _delete_where(self, flt: Any | None) -> int:
        conn, p, total = self._h.check(), fc.pb(), 0
        while True:  # deleted documents leave the result: always read the first page
            names = [d.name for d in conn.run_query(self._h.catalog, fc.scan_query(flt, MAX_BATCH, None, []))]
            if names:
                conn.commit([p.Write(delete=n) for n in names])
                total += len(names)
            if len(names) < MAX_BATCH:
                return total

    def _clear(self) -> None:
        self._delete_where(None)

    # writing -------------------------------------------------------------------

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        from aixpy.vectorstores._firestore_dedup import Dedup

        h, p = self._h, fc.pb()
        conn = h.check()
        if h.options.dimensions is None:
            dims = int(docs[0].vector.shape[0])
            _check_dims(dims)
            h.write_catalog(replace(h.options, dimensions=dims))
        opts = h.options
        names = [h.doc_name(pd.doc.id) for pd in docs]
        live = self._live_names(names)
        count = self._count(None) if opts.max_documents is not None else 0
        dedup = Dedup(self, docs, [i for i, n in enumerate(names) if n not in live]) if opts.dedup else None
        result, writes = UpsertResult(), []
        for i, pd in enumerate(docs):
            d, old = pd.doc, live.get(names[i])
            if old is not None and old.doc.created_at is not None:
                d.created_at = old.doc.created_at
            if old is not None:
                result.add_updated(d.id)
            elif dedup is not None and dedup.is_duplicate(i, d.content):
                result.add_deduplicated(d.id)
                continue
            elif opts.max_documents is not None and count + result.inserted >= opts.max_documents:
                result.add_over_limit(d.id, opts.max_documents)
                continue
            else:
                result.add_inserted(d.id)
            writes.append(p.Write(update=p.Document(name=names[i], fields=fc.document_fields(d, pd.vector.tolist()))))
            if dedup is not None:
                dedup.written(i, names[i], d.content, updated=old is not None)
        conn.commit(writes)
        return result

    # extras --------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete expired documents (already invisible); return how many there were."""
        with self._lock:
            p = fc.pb()
            flt = fc.field_filter(fc.F_LIVE, "LESS_THAN_OR_EQUAL", fc.encode(utcnow()))
            conn, total = self._h.check(), 0
            while True:
                q = fc.base_query(flt, [])
                q.limit.value = MAX_BATCH
                names = [d.name for d in conn.run_query(self._h.catalog, q)]
                if names:
                    conn.commit([p.Write(delete=n) for n in names])
                    total += len(names)
                if len(names) < MAX_BATCH:
                    return total

    def __repr__(self) -> str:
        return (f"FirestoreCollection(name={self.name!r}, dimensions={self.dimensions}, "
                f"metric={self._h.options.metric!r})")


class FirestoreStore(VectorStore):
    """Collections in one Firestore database. Close it (or use ``with``) to release the channel.

    Args:
        project_id: the Google Cloud project (any name on the emulator).
        namespace: top-level Firestore collection holding every aixpy collection.
        database: the Firestore database id.
        credentials_file: a service-account JSON key; default: Application Default Credentials.
        emulator_host: ``host:port`` of the Firestore emulator (default: ``FIRESTORE_EMULATOR_HOST``).
        timeout: seconds per Firestore call.
    """

    provider = "firestore"

    def __init__(self, project_id: str, *, namespace: str = "aixpy", database: str = "(default)",
                 credentials_file: str | None = None, emulator_host: str | None = None, timeout: float = 60.0,
                 default_options: CollectionOptions | None = None) -> None:
        super().__init__(default_options=default_options)
        cfg = FirestoreStoreConfig(project_id=project_id, namespace=namespace, database=database,
                                   credentials_file=credentials_file, emulator_host=emulator_host, timeout=timeout)
        self.project_id, self.namespace, self.database = cfg.project_id, cfg.namespace, cfg.database
        self._conn = _Conn(cfg.project_id, cfg.database, cfg.credentials_file, cfg.emulator_host, cfg.timeout)
        self._handles: dict[str, _Handle] = {}
        self._mutex = threading.RLock()
        self._closed = False

    @property
    def emulator_host(self) -> str | None:
        """The emulator this store talks to, or ``None`` for Google Cloud."""
        return self._conn.emulator

    def _check_open(self) -> _Conn:
        if self._closed:
            raise StoreError("firestore store is closed")
        return self._conn

    def collection(self, name: str, options: CollectionOptions | None = None) -> FirestoreCollection:
        """Open collection ``name``, creating it with ``options`` (default: the store's) if new.

        An existing collection keeps its stored options; asking for different ones (other than
        ``dimensions=None``) raises :class:`InvalidInputError`.
        """
        validate_collection_name(name)
        if options is not None:
            _check_dims(options.dimensions)
        with self._mutex:
            conn = self._check_open()
            h = self._handles.get(name)
            if h is None:
                catalog = f"{conn.root}/{self.namespace}/{name}"
                found = conn.get([catalog]).get(catalog)
                h = _Handle(self, name, _options_from(found.fields) if found is not None else
                            (options or self.default_options))
                if found is None:
                    _check_dims(h.options.dimensions)
                    h.write_catalog(h.options)
                self._handles[name] = h
            with h.lock:
                if options is not None:
                    same = replace(options, dimensions=None) == replace(h.options, dimensions=None)
                    dims = h.options.dimensions
                    if not same or (dims is not None and options.dimensions not in (None, dims)):
                        raise InvalidInputError(f"collection {name!r} exists with different options: {h.options}")
                    if dims is None and options.dimensions is not None:
                        h.write_catalog(options)  # an empty collection learns its dimensions
                return FirestoreCollection(h)

    def list_collections(self) -> list[str]:
        conn, parent = self._check_open(), self._conn.root
        q = fc.pb().StructuredQuery()
        q.from_.add(collection_id=self.namespace)
        q.select.CopyFrom(fc.pb().Projection(fields=[fc.pb().FieldReference(field_path="name")]))
        return sorted(str(fc.decode(d.fields["name"])) for d in conn.run_query(parent, q) if "name" in d.fields)

    def drop_collection(self, name: str) -> bool:
        """Delete a collection: its documents (in batches of 500), then its catalog entry."""
        validate_collection_name(name)
        with self._mutex:
            conn = self._check_open()
            catalog = f"{conn.root}/{self.namespace}/{name}"
            existed = catalog in conn.get([catalog], [])
            h = self._handles.pop(name, None) or _Handle(self, name, self.default_options)
            with h.lock:
                FirestoreCollection(h)._delete_where(None)
                conn.commit([fc.pb().Write(delete=catalog)])
                h.closed = True
            return existed

    def close(self) -> None:
        """Close the gRPC channel. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            for h in self._handles.values():
                h.closed = True
            self._handles.clear()
            self._conn.close()

    def __repr__(self) -> str:
        where = f"emulator={self._conn.emulator!r}" if self._conn.emulator else "google-cloud"
        return f"FirestoreStore(project_id={self.project_id!r}, namespace={self.namespace!r}, {where})"
