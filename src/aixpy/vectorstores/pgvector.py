"""PostgreSQL + pgvector: one table per collection, HNSW search, filters compiled to SQL.

Layout in the configured schema (``pgvector.schema``, default ``public``)::

    _aixpy_collections   catalog: name, dimensions, metric, dedup, dedup_threshold, ttl, max_documents
    <collection>         one table per collection (see :mod:`aixpy.vectorstores._pg_sql`), with an
                         HNSW index using the metric's operator class (vector_cosine_ops,
                         vector_ip_ops, vector_l2_ops), GIN indexes on metadata and tags, and a
                         partial index on expires_at

Opening a store connects once to check the server: the ``vector`` extension is created if missing
(this needs a role allowed to create it; otherwise a :class:`~aixpy.errors.StoreError` says to run
``CREATE EXTENSION vector``), then the schema and catalog are created if missing. Work then goes
through a psycopg connection pool (``pool_min_size``..``pool_max_size``).

Writes lock the collection's catalog row, so concurrent writers (threads, processes) are serialized:
``max_documents`` cannot be overrun and dedup sees every earlier write. A large first load into an
empty collection is written with binary COPY and the indexes are built afterwards (about 4x faster than
loading into an indexed table). Queries set ``hnsw.ef_search`` (at least ``offset + limit``) and
``hnsw.iterative_scan = strict_order`` per transaction, so filtered queries keep their recall.
Scores follow :mod:`aixpy.vectorstores.types` (computed by pgvector from float32 vectors); ties
break by id ascending. Expired documents are filtered in SQL and deleted by the next write.
Metadata floats are stored as exact decimals, so numeric filters compare exactly like Python does.
PostgreSQL text cannot hold NUL characters: such documents fail (reported, never stored) and such
filter values raise :class:`~aixpy.errors.InvalidInputError`. Vectors wider than 2000 dimensions get
no HNSW index (pgvector's limit) and are searched exactly; dedup's near-duplicate check is an exact
scan of the collection per new document.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import SecretStr

from aixpy.config.stores import VectorStoreConfig
from aixpy.errors import (
    AixpyError,
    ConfigError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
    StoreError,
    redact,
)
from aixpy.vectorstores import _pg_keyword as pk
from aixpy.vectorstores import _pg_sql as q
from aixpy.vectorstores import _pg_write as w
from aixpy.vectorstores._pg_async import IN_ASYNC, AsyncPools, adrive, async_call, drive, start
from aixpy.vectorstores.base import CollectionOptions, PreparedDoc, SharedStateCollection, Vector, VectorStore
from aixpy.vectorstores.filters import Filter, parse
from aixpy.vectorstores.types import DeleteResult, Document, Match, Query, QueryResult, UpsertResult, utcnow
from aixpy.vectorstores.validation import check_ids, validate_collection_name

__all__ = ["PgvectorCollection", "PgvectorStore", "create"]

_INSTALL = "pip install 'aixpy[pgvector]'"
T = TypeVar("T")


def create(config: VectorStoreConfig) -> PgvectorStore:
    """Registry factory: a :class:`PgvectorStore` for ``config.pgvector``."""
    pg = config.pgvector
    if pg is None:
        raise ConfigError("provider 'pgvector' needs a pgvector: block", path="vectorstore")
    defaults = CollectionOptions(dimensions=config.embedding_dimensions, metric=config.metric)
    return PgvectorStore(pg.connection_string, schema=pg.schema_name, pool_min_size=pg.pool_min_size,
                         pool_max_size=pg.pool_max_size, connect_timeout=pg.connect_timeout, hnsw_m=pg.hnsw_m,
                         hnsw_ef_construction=pg.hnsw_ef_construction, hnsw_ef_search=pg.hnsw_ef_search,
                         default_options=defaults)


@dataclasses.dataclass(frozen=True)
class _Driver:
    psycopg: Any
    pool: Any
    register_vector: Any
    register_vector_async: Any
    jsonb: Any


def _import_driver() -> _Driver:
    try:
        psycopg = importlib.import_module("psycopg")
        pool = importlib.import_module("psycopg_pool")
        pgv = importlib.import_module("pgvector.psycopg")
        json_mod = importlib.import_module("psycopg.types.json")
    except ImportError:
        raise MissingDependencyError("psycopg (with psycopg_pool) and pgvector", _INSTALL) from None
    return _Driver(psycopg, pool, pgv.register_vector, pgv.register_vector_async, json_mod.Jsonb)


def _same(asked: CollectionOptions, stored: CollectionOptions) -> bool:
    if asked.dimensions is not None and stored.dimensions is not None and asked.dimensions != stored.dimensions:
        return False
    return dataclasses.replace(asked, dimensions=None) == dataclasses.replace(stored, dimensions=None)


class _Handle:
    """State of one collection shared by every wrapper the store hands out for it."""

    def __init__(self, store: PgvectorStore, name: str, options: CollectionOptions) -> None:
        self.store, self.name, self.options = store, name, options
        self.table = f"{q.quote_ident(store.schema)}.{q.quote_ident(name)}"
        self.lock = threading.RLock()
        self.dropped = False

    def check(self) -> None:
        self.store._check_open()
        if self.dropped:
            raise StoreError(f"pgvector collection {self.name!r} was dropped")


# ------------------------------------------------------------------ collection


class PgvectorCollection(SharedStateCollection):
    """A collection stored in one PostgreSQL table. Get it from :meth:`PgvectorStore.collection`.

    Each operation is one plan (see :mod:`aixpy.vectorstores._pg_async`) run by the sync methods on
    the store's connection pool and by the ``a*`` methods natively on its async pool (no threads).
    Async calls do not take the collection's thread lock: writers, sync or async, are serialized by
    the lock on the collection's catalog row, and queries need no lock.
    """

    _h: _Handle

    def __init__(self, handle: _Handle) -> None:
        self._s = handle.store
        super().__init__(handle)

    def _shared_dimensions(self) -> int | None:
        h = self._h
        if h.options.dimensions is None and not h.dropped and not self._s.closed and not IN_ASYNC.get():
            self._s._refresh(h)  # another process may have written the first document since
        return h.options.dimensions

    async def _adimensions(self) -> int | None:
        h = self._h
        if h.options.dimensions is None and not h.dropped and not self._s.closed:
            await self._s._arefresh(h)
        return h.options.dimensions

    # plans: the database work of each primitive, shared by the sync and async paths -------------

    def _upsert_plan(self, docs: list[PreparedDoc]) -> q.Plan[tuple[UpsertResult, CollectionOptions]]:
        h, s = self._h, self._s
        h.check()
        dims = int(docs[0].vector.shape[0])
        options = yield from s._lock_collection(h)
        if options.dimensions is None:
            options = dataclasses.replace(options, dimensions=dims)
            yield q.execute(f"UPDATE {s._catalog} SET dimensions = %(d)s WHERE name = %(n)s", {"d": dims, "n": h.name})
            yield from w.create_table(s.schema, h.name, dims)
        elif options.dimensions != dims:
            result = UpsertResult()
            for p in docs:
                result.add_failure(p.doc.id, DimensionMismatchError(options.dimensions, dims))
            return result, options
        now = utcnow()
        yield q.execute(f"DELETE FROM {h.table} WHERE expires_at <= %(now)s", {"now": now})
        found = yield q.fetch_all(f"SELECT id, created_at FROM {h.table} WHERE id = ANY(%(ids)s::text[])",
                                  {"ids": [p.doc.id for p in docs]})
        existing: dict[str, datetime] = {r[0]: r[1].astimezone(UTC) for r in found}
        live = -1  # unknown (only needed for max_documents and the bulk path)
        if options.max_documents is not None or (not existing and len(docs) >= w.BULK_MIN):
            live = int((yield q.fetch_one(f"SELECT count(*) FROM {h.table}"))[0])
        result, rows = yield from w.write_batch(h.table, options, docs, existing, max(live, 0), s._drv.jsonb)
        if rows:
            if live == 0 and len(rows) >= w.BULK_MIN:
                yield from w.drop_indexes(s.schema, h.name)  # load first, index after: several times faster
                yield w.copy_stmt(h.table, rows)
                yield q.execute(f"ANALYZE {h.table}")
            else:
                yield q.Stmt(q.upsert_sql(s.schema, h.name), many=rows)
            yield from w.ensure_indexes(s.schema, h.name, options, s.hnsw_m, s.hnsw_ef_construction)
        return result, options

    def _query_plan(self, vec: Vector, query: Query, t0: float) -> q.Plan[QueryResult]:
        h, s = self._h, self._s
        h.check()
        metric = h.options.metric
        if query.metric is not None and query.metric != metric:
            raise InvalidInputError(f"collection {self.name!r} uses metric {metric!r}; a query cannot ask for "
                                    f"{query.metric!r} (the HNSW index serves one metric per collection)")
        where, params = q.compile_filter(parse(query.filter))
        if where == q.FALSE:
            return QueryResult([], query.offset, query.limit)
        need = query.offset + query.limit
        cols = ", ".join(q.DOC_COLUMNS) + (", embedding" if query.include_embeddings else "")
        sql = (f"SELECT {cols}, embedding {q.OPERATOR[metric]} %(qv)s AS distance FROM {h.table} "
               f"WHERE {q.live_sql()} AND {where} ORDER BY distance, id LIMIT %(limit)s OFFSET %(offset)s")
        params.update(qv=vec, now=utcnow(), limit=query.limit, offset=query.offset)
        knobs = {"ef": str(min(1000, max(s.hnsw_ef_search, need))), "scan": str(max(20_000, 4 * need))}
        # run pipelined in one transaction: BEGIN, the per-transaction HNSW settings, the query, COMMIT
        yield q.execute("SELECT set_config('hnsw.ef_search', %(ef)s, true), "
                        "set_config('hnsw.iterative_scan', 'strict_order', true), "
                        "set_config('hnsw.max_scan_tuples', %(scan)s, true)", knobs)
        rows = yield q.fetch_all(sql, params)
        out: list[Match] = []
        for rank, row in enumerate(rows, start=query.offset + 1):
            score, distance = q.score_of(metric, float(row[-1]))
            if query.min_score is not None and score < query.min_score:
                break
            emb = w.decode_vector(row[11]) if query.include_embeddings else None
            out.append(Match(w.decode_doc(row, emb), score, distance, rank))
        return QueryResult(out, query.offset, query.limit, (time.perf_counter() - t0) * 1000.0)

    def _text_plan(self, vec: Vector | None, query: Query, t0: float) -> q.Plan[QueryResult]:
        return pk.text_plan(self._h, vec, query, t0, self._query_plan)  # see aixpy.vectorstores._pg_keyword

    def _get_plan(self, ids: list[str]) -> q.Plan[list[Document]]:
        h = self._h
        h.check()
        if h.options.dimensions is None or not ids:
            return []
        rows = yield q.fetch_all(f"SELECT {', '.join(q.DOC_COLUMNS)}, embedding FROM {h.table} "
                                 f"WHERE id = ANY(%(ids)s::text[]) AND {q.live_sql()}", {"ids": ids, "now": utcnow()})
        found = {r[0]: w.decode_doc(r, w.decode_vector(r[11])) for r in rows}
        return [found[i] for i in ids if i in found]

    def _delete_plan(self, ids: list[str]) -> q.Plan[DeleteResult]:
        h = self._h
        h.check()
        live: set[str] = set()
        if h.options.dimensions is not None and ids:
            rows = yield q.fetch_all(f"DELETE FROM {h.table} WHERE id = ANY(%(ids)s::text[]) RETURNING id, "
                                     f"{q.live_sql()}", {"ids": ids, "now": utcnow()})  # expired copies go too
            live = {r[0] for r in rows if r[1]}
        missing = [i for i in ids if i not in live]
        return DeleteResult(deleted=len(ids) - len(missing), not_found=len(missing), not_found_ids=missing)

    def _count_plan(self, filter: Filter | None) -> q.Plan[int]:
        h = self._h
        h.check()
        where, params = q.compile_filter(parse(filter))
        if where == q.FALSE or h.options.dimensions is None:
            return 0
        params["now"] = utcnow()
        row = yield q.fetch_one(f"SELECT count(*) FROM {h.table} WHERE {q.live_sql()} AND {where}", params)
        return int(row[0]) if row else 0

    def _clear_plan(self) -> q.Plan[None]:
        h = self._h
        h.check()
        if h.options.dimensions is not None:
            yield q.execute(f"TRUNCATE {h.table}")

    # sync primitives ----------------------------------------------------------------

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        result, self._h.options = self._s._run("upsert", self._upsert_plan(docs), tx=True)
        return result

    def _query(self, vec: Vector, query: Query) -> QueryResult:
        plan = self._query_plan(vec, query, time.perf_counter())
        return self._s._run("query", plan, tx=True, pipeline=True)

    @property
    def supports_keyword(self) -> bool:
        return True

    def _text_query(self, vec: Vector | None, query: Query) -> QueryResult:
        return self._s._run("query", self._text_plan(vec, query, time.perf_counter()), tx=True)

    def _keyword(self, terms: list[str], filter: Filter | None, limit: int, with_embeddings: bool) -> list[Match]:
        return self._s._run("query", pk.keyword_plan(self._h, terms, filter, limit, with_embeddings),
                            tx=True)

    def _get(self, ids: list[str]) -> list[Document]:
        return self._s._run("get", self._get_plan(ids))

    def _delete(self, ids: list[str]) -> DeleteResult:
        return self._s._run("delete", self._delete_plan(ids))

    def _count(self, filter: Filter | None) -> int:
        return self._s._run("count", self._count_plan(filter))

    def _clear(self) -> None:
        self._s._run("clear", self._clear_plan())

    # native async API: the same validation (BaseCollection) and plans, on the async pool -----------

    async def _aupsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        result, self._h.options = await self._s._arun("upsert", self._upsert_plan(docs), tx=True)
        return result

    async def aupsert(self, doc: Document) -> UpsertResult:
        dims = await self._adimensions()
        with async_call():
            p = self._prepare(doc, dims)
        return self._single(await self._aupsert_prepared([p]))

    async def aupsert_batch(self, docs: Sequence[Document]) -> UpsertResult:
        await self._adimensions()
        result = UpsertResult()
        with async_call():
            prepared = self._prepare_batch(docs, result)
        if prepared:
            result.merge(await self._aupsert_prepared(prepared))
        return result

    async def aquery(self, query: Query) -> QueryResult:
        vec = self._checked_query(query, await self._adimensions())
        if query.mode != "vector":
            return await self._s._arun("query", self._text_plan(vec, query, time.perf_counter()), tx=True)
        if vec is None:
            return QueryResult([], query.offset, query.limit)
        plan = self._query_plan(vec, query, time.perf_counter())
        return await self._s._arun("query", plan, tx=True, pipeline=True)

    async def aget(self, ids: Sequence[str]) -> list[Document]:
        return await self._s._arun("get", self._get_plan(list(dict.fromkeys(check_ids(ids)))))

    async def adelete(self, ids: Sequence[str]) -> DeleteResult:
        return await self._s._arun("delete", self._delete_plan(list(dict.fromkeys(check_ids(ids)))))

    async def acount(self, filter: Filter | None = None) -> int:
        return await self._s._arun("count", self._count_plan(filter))

    async def aclear(self) -> None:
        await self._s._arun("clear", self._clear_plan())

    def __repr__(self) -> str:
        return f"PgvectorCollection(name={self.name!r}, dimensions={self._h.options.dimensions}, " \
               f"metric={self._h.options.metric!r})"


# ------------------------------------------------------------------ store


class PgvectorStore(VectorStore):
    """Collections as tables in one PostgreSQL schema. Close it (``with``, ``close()``, or from async code
    ``async with`` / ``await aclose()``) to release its pools: a connection pool for the sync API and an
    async one, opened on first async use inside the running event loop, for the ``a*`` methods.

    Args:
        connection_string: a libpq URL or ``key=value`` string; never shown in messages or reprs.
        schema: schema holding the catalog and the collection tables (created if missing).
        pool_min_size / pool_max_size: connections kept open / at most.
        connect_timeout: seconds to wait for a connection.
        hnsw_m / hnsw_ef_construction: HNSW build parameters of new indexes.
        hnsw_ef_search: candidate list size of a query (raised to ``offset + limit`` when larger).
    """

    provider = "pgvector"

    def __init__(self, connection_string: str | SecretStr, *, schema: str = "public", pool_min_size: int = 1,
                 pool_max_size: int = 10, connect_timeout: float = 10.0, hnsw_m: int = 16,
                 hnsw_ef_construction: int = 64, hnsw_ef_search: int = 200,
                 default_options: CollectionOptions | None = None) -> None:
        super().__init__(default_options=default_options)
        dsn = connection_string.get_secret_value() if isinstance(connection_string, SecretStr) else connection_string
        self._drv = _import_driver()
        self.schema = schema
        self.hnsw_m, self.hnsw_ef_construction, self.hnsw_ef_search = hnsw_m, hnsw_ef_construction, hnsw_ef_search
        self.closed = True
        self._secrets, self._where = self._describe(dsn)
        self._catalog = f"{q.quote_ident(schema)}.{q.quote_ident(q.CATALOG)}"
        self._timeout = connect_timeout
        self._handles: dict[str, _Handle] = {}
        self._mutex = threading.RLock()
        if pool_min_size > pool_max_size:
            raise ConfigError("pool_min_size must not exceed pool_max_size", path="vectorstore.pgvector")
        ct = max(2, math.ceil(connect_timeout))
        with self._db("connect"):
            self._setup(dsn, ct)
            pool_cls = self._drv.pool.ConnectionPool
            self._pool = pool_cls(dsn, min_size=pool_min_size, max_size=pool_max_size, open=False,
                                  kwargs={"autocommit": True, "connect_timeout": ct},
                                  configure=self._drv.register_vector, check=pool_cls.check_connection,
                                  timeout=connect_timeout, name="aixpy-pgvector", num_workers=2)
            try:
                self._pool.open(wait=pool_min_size > 0, timeout=connect_timeout)
            except BaseException:
                self._pool.close()
                raise
        apool_cls = self._drv.pool.AsyncConnectionPool

        def async_pool() -> Any:
            return apool_cls(dsn, min_size=pool_min_size, max_size=pool_max_size, open=False,
                             kwargs={"autocommit": True, "connect_timeout": ct},
                             configure=self._drv.register_vector_async, check=apool_cls.check_connection,
                             timeout=connect_timeout, name="aixpy-pgvector-async", num_workers=2)

        self._apools = AsyncPools(async_pool, open_timeout=connect_timeout, wait=pool_min_size > 0)
        self.closed = False

    # connection plumbing ----------------------------------------------------------

    def _describe(self, dsn: str) -> tuple[list[str], str]:
        try:
            info = self._drv.psycopg.conninfo.conninfo_to_dict(dsn)
        except self._drv.psycopg.Error:
            raise ConfigError("not a valid libpq connection string (URL or key=value pairs)",
                              path="vectorstore.pgvector.connection_string") from None
        secrets = [s for s in (dsn, info.get("password")) if s]
        where = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"
        return secrets, where

    @contextlib.contextmanager
    def _db(self, what: str) -> Iterator[None]:
        """Map driver exceptions to aixpy errors, without the connection string."""
        drv = self._drv
        try:
            yield
        except AixpyError:
            raise
        except drv.pool.PoolTimeout as e:
            raise StoreError(f"pgvector {self._where}: {what}: no database connection within {self._timeout:g} s "
                             f"(server down or pool exhausted)") from e
        except drv.pool.PoolClosed as e:
            raise StoreError(f"pgvector store {self._where} is closed") from e
        except drv.psycopg.Error as e:
            msg = redact(str(e).strip(), self._secrets)
            errors = drv.psycopg.errors
            if isinstance(e, errors.UndefinedTable):
                raise StoreError(f"pgvector {self._where}: {what}: a collection table is missing (dropped by "
                                 f"another process?): {msg}") from e
            if isinstance(e, drv.psycopg.DataError):
                raise InvalidInputError(f"pgvector: {what}: PostgreSQL refused the data: {msg}") from e
            raise StoreError(f"pgvector {self._where}: {what} failed: {msg}") from e

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        self._check_open()
        with self._pool.connection() as conn:
            yield conn

    def _run(self, what: str, plan: q.Plan[T], *, tx: bool = False, pipeline: bool = False) -> T:
        """Run ``plan`` on a pooled connection (in a transaction, pipelined, if asked)."""
        with self._db(what):
            first, value = start(plan)
            if first is None:  # decided without the database
                return value
            with self._conn() as conn, contextlib.ExitStack() as stack:
                if pipeline:
                    stack.enter_context(conn.pipeline())
                if tx:
                    stack.enter_context(conn.transaction())
                return drive(stack.enter_context(conn.cursor()), plan, first)

    async def _arun(self, what: str, plan: q.Plan[T], *, tx: bool = False, pipeline: bool = False) -> T:
        """:meth:`_run` on the async pool of the running event loop."""
        with self._db(what):
            first, value = start(plan)
            if first is None:
                return value
            self._check_open()
            pool = await self._apools.get()
            async with pool.connection() as conn, contextlib.AsyncExitStack() as stack:
                if pipeline:
                    await stack.enter_async_context(conn.pipeline())
                if tx:
                    await stack.enter_async_context(conn.transaction())
                return await adrive(await stack.enter_async_context(conn.cursor()), plan, first)

    def _check_open(self) -> None:
        if self.closed:
            raise StoreError(f"pgvector store {self._where} is closed")

    def _setup(self, dsn: str, ct: int) -> None:
        """Extension, schema and catalog, created if missing, on one direct connection."""
        psycopg = self._drv.psycopg
        with psycopg.connect(dsn, autocommit=True, connect_timeout=ct) as conn:
            dbname = conn.info.dbname
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.Error as e:
                    raise StoreError(
                        f"pgvector {self._where}: the 'vector' extension is not installed in database {dbname!r} "
                        f"and this role cannot create it ({redact(str(e).strip(), self._secrets)}). Run "
                        "`CREATE EXTENSION vector;` in that database as a superuser (pgvector must be installed "
                        "on the server).") from e
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%(k)s))", {"k": f"aixpy:{self.schema}"})
                if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %(s)s", {"s": self.schema}).fetchone() \
                        is None:
                    conn.execute(f"CREATE SCHEMA {q.quote_ident(self.schema)}", {})
                with conn.cursor() as cur:
                    if not drive(cur, w.relation_exists(self.schema, q.CATALOG)):
                        cur.execute(q.catalog_ddl(self.schema), {})

    # catalog and DDL plans (inside the caller's transaction) ------------------------

    def _lock_collection(self, h: _Handle) -> q.Plan[CollectionOptions]:
        row = yield q.fetch_one(f"SELECT {w.CATALOG_COLS} FROM {self._catalog} WHERE name = %(n)s FOR UPDATE",
                                {"n": h.name})
        if row is None:
            h.dropped = True
            raise StoreError(f"pgvector collection {h.name!r} was dropped")
        return w.options_from(row)

    def _catalog_plan(self, h: _Handle) -> q.Plan[CollectionOptions | None]:
        row = yield q.fetch_one(f"SELECT {w.CATALOG_COLS} FROM {self._catalog} WHERE name = %(n)s", {"n": h.name})
        return None if row is None else w.options_from(row)

    def _refresh(self, h: _Handle) -> None:
        options = self._run("read catalog", self._catalog_plan(h))
        if options is not None:
            h.options = options

    async def _arefresh(self, h: _Handle) -> None:
        options = await self._arun("read catalog", self._catalog_plan(h))
        if options is not None:
            h.options = options

    def _open_plan(self, h: _Handle, options: CollectionOptions | None) -> q.Plan[CollectionOptions]:
        name, fresh = h.name, options or self.default_options
        created = (yield q.fetch_one(f"INSERT INTO {self._catalog} (name, {w.CATALOG_COLS}) VALUES (%(name)s, "
                                     "%(dimensions)s, %(metric)s, %(dedup)s, %(dedup_threshold)s, %(ttl)s, "
                                     "%(max_documents)s) ON CONFLICT (name) DO NOTHING RETURNING name",
                                     {"name": name, **w.options_row(fresh)})) is not None
        if created and (yield from w.relation_exists(self.schema, name)):
            raise StoreError(f"pgvector: table {name!r} already exists in schema {self.schema!r} and is not "
                             "an aixpy collection; pick another collection name or schema")
        stored = yield from self._lock_collection(h)
        if options is not None and not _same(options, stored):
            raise InvalidInputError(f"collection {name!r} exists with different options: {stored}")
        if stored.dimensions is None and options is not None and options.dimensions is not None:
            stored = dataclasses.replace(stored, dimensions=options.dimensions)
            yield q.execute(f"UPDATE {self._catalog} SET dimensions = %(d)s WHERE name = %(n)s",
                            {"d": stored.dimensions, "n": name})
        if stored.dimensions is not None:
            yield from w.create_table(self.schema, name, stored.dimensions)
        return stored

    # public API ----------------------------------------------------------------

    def collection(self, name: str, options: CollectionOptions | None = None) -> PgvectorCollection:
        """Open collection ``name``, creating it with ``options`` (default: the store's) if new.

        An existing collection keeps its stored options; asking for different ones (other than
        ``dimensions=None``) raises :class:`InvalidInputError`. A table of that name that is not an
        aixpy collection is never touched (:class:`StoreError`).
        """
        validate_collection_name(name)
        with self._mutex:
            self._check_open()
            h = _Handle(self, name, CollectionOptions())
            stored = self._run(f"open collection {name!r}", self._open_plan(h, options), tx=True)
            old = self._handles.get(name)
            if old is not None and not old.dropped:
                old.options = stored
                return PgvectorCollection(old)
            h.options = stored
            self._handles[name] = h
            return PgvectorCollection(h)

    def list_collections(self) -> list[str]:
        with self._db("list collections"), self._conn() as conn:
            return [r[0] for r in conn.execute(f"SELECT name FROM {self._catalog} ORDER BY name", {}).fetchall()]

    def drop_collection(self, name: str) -> bool:
        validate_collection_name(name)
        with self._mutex, self._db(f"drop collection {name!r}"), self._conn() as conn, conn.transaction():
            existed = conn.execute(f"DELETE FROM {self._catalog} WHERE name = %(n)s RETURNING name",
                                   {"n": name}).fetchone() is not None
            if existed:
                conn.execute(f"DROP TABLE IF EXISTS {q.quote_ident(self.schema)}.{q.quote_ident(name)}", {})
            h = self._handles.pop(name, None)
            if h is not None:
                h.dropped = True
            return existed

    def close(self) -> None:
        """Close the connection pools. Idempotent. The async pool is closed now when its event loop is
        idle or gone, else the close is scheduled on that loop: from async code prefer :meth:`aclose`."""
        with self._mutex:
            self.closed = True
            self._apools.close()
            self._pool.close()

    async def aclose(self) -> None:
        """Close the connection pools, awaiting the async pool of the running loop. Idempotent."""
        with self._mutex:
            self.closed = True
        await self._apools.aclose()
        self._pool.close()

    async def __aenter__(self) -> PgvectorStore:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"PgvectorStore({self._where!r}, schema={self.schema!r})"
