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
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import SecretStr

from aixpy.config.stores import VectorStoreConfig
from aixpy.errors import AixpyError, ConfigError, InvalidInputError, MissingDependencyError, StoreError, redact
from aixpy.vectorstores import _pg_sql as q
from aixpy.vectorstores import _pg_write as w
from aixpy.vectorstores.base import CollectionOptions, PreparedDoc, SharedStateCollection, Vector, VectorStore
from aixpy.vectorstores.filters import Filter, parse
from aixpy.vectorstores.types import DeleteResult, Document, Match, Query, QueryResult, Scope, UpsertResult, utcnow
from aixpy.vectorstores.validation import validate_collection_name

__all__ = ["PgvectorCollection", "PgvectorStore", "create"]

_INSTALL = "pip install 'aixpy[pgvector]'"


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
    jsonb: Any


def _import_driver() -> _Driver:
    try:
        psycopg = importlib.import_module("psycopg")
        pool = importlib.import_module("psycopg_pool")
        pgv = importlib.import_module("pgvector.psycopg")
        json_mod = importlib.import_module("psycopg.types.json")
    except ImportError:
        raise MissingDependencyError("psycopg (with psycopg_pool) and pgvector", _INSTALL) from None
    return _Driver(psycopg, pool, pgv.register_vector, json_mod.Jsonb)


def _utc(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC)


def _options_row(o: CollectionOptions) -> dict[str, Any]:
    return {"dimensions": o.dimensions, "metric": o.metric, "dedup": o.dedup, "dedup_threshold": o.dedup_threshold,
            "ttl": o.ttl, "max_documents": o.max_documents}


_CATALOG_COLS = "dimensions, metric, dedup, dedup_threshold, ttl, max_documents"


def _options_from(row: Any) -> CollectionOptions:
    dims, metric, dedup, thr, ttl, max_docs = row
    return CollectionOptions(dimensions=dims, metric=metric, dedup=dedup, dedup_threshold=thr, ttl=ttl,
                             max_documents=max_docs)


def _same(asked: CollectionOptions, stored: CollectionOptions) -> bool:
    if asked.dimensions is not None and stored.dimensions is not None and asked.dimensions != stored.dimensions:
        return False
    return dataclasses.replace(asked, dimensions=None) == dataclasses.replace(stored, dimensions=None)


def _doc(row: Any, embedding: list[float] | None) -> Document:
    doc_id, content, model, meta, tags, tenant, user, session, created, updated, expires = row[:11]
    return Document(id=doc_id, content=content, embedding=embedding, embedding_model=model, metadata=meta or {},
                    tags=list(tags), scope=Scope(tenant, user, session), created_at=_utc(created),
                    updated_at=_utc(updated), expires_at=_utc(expires))


def _floats(v: Any) -> list[float]:
    out: list[float] = np.asarray(v.to_numpy(), dtype=np.float32).tolist()
    return out


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
    """A collection stored in one PostgreSQL table. Get it from :meth:`PgvectorStore.collection`."""

    _h: _Handle

    def __init__(self, handle: _Handle) -> None:
        self._s = handle.store
        super().__init__(handle)

    def _shared_dimensions(self) -> int | None:
        h = self._h
        if h.options.dimensions is None and not h.dropped and not self._s.closed:
            self._s._refresh(h)  # another process may have written the first document since
        return h.options.dimensions

    # primitives ----------------------------------------------------------------

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        h, s = self._h, self._s
        h.check()
        dims = int(docs[0].vector.shape[0])
        with s._db("upsert"), s._conn() as conn, conn.transaction(), conn.cursor() as cur:
            options = s._lock_collection(cur, h)
            if options.dimensions is None:
                options = dataclasses.replace(options, dimensions=dims)
                cur.execute(f"UPDATE {s._catalog} SET dimensions = %(d)s WHERE name = %(n)s", {"d": dims, "n": h.name})
                s._create_table(cur, h.name, dims)
            elif options.dimensions != dims:
                result = UpsertResult()
                for p in docs:
                    result.add_failure(p.doc.id, f"embedding has {dims} dimensions, expected {options.dimensions}")
                return result
            now = utcnow()
            cur.execute(f"DELETE FROM {h.table} WHERE expires_at <= %(now)s", {"now": now})
            cur.execute(f"SELECT id, created_at FROM {h.table} WHERE id = ANY(%(ids)s::text[])",
                        {"ids": [p.doc.id for p in docs]})
            existing: dict[str, datetime] = {r[0]: r[1].astimezone(UTC) for r in cur.fetchall()}
            live = -1  # unknown (only needed for max_documents and the bulk path)
            if options.max_documents is not None or (not existing and len(docs) >= w.BULK_MIN):
                cur.execute(f"SELECT count(*) FROM {h.table}", {})
                live = int(cur.fetchone()[0])
            result, rows = w.write_batch(cur, h.table, options, docs, existing, max(live, 0), s._drv.jsonb)
            if rows:
                if live == 0 and len(rows) >= w.BULK_MIN:
                    s._drop_indexes(cur, h.name)  # load first, index after: several times faster
                    w.copy_rows(cur, h.table, rows)
                    cur.execute(f"ANALYZE {h.table}", {})
                else:
                    cur.executemany(q.upsert_sql(s.schema, h.name), rows)
                s._ensure_indexes(cur, h.name, options)
        h.options = options
        return result

    def _query(self, vec: Vector, query: Query) -> QueryResult:
        t0 = time.perf_counter()
        h, s = self._h, self._s
        h.check()
        metric = h.options.metric
        if query.metric is not None and query.metric != metric:
            raise InvalidInputError(f"collection {self.name!r} uses metric {metric!r}; a query cannot ask for "
                                    f"{query.metric!r} (the HNSW index serves one metric per collection)")
        where, params = q.compile_filter(parse(query.filter))
        empty = QueryResult([], query.offset, query.limit)
        if where == q.FALSE:
            return empty
        need = query.offset + query.limit
        cols = ", ".join(q.DOC_COLUMNS) + (", embedding" if query.include_embeddings else "")
        sql = (f"SELECT {cols}, embedding {q.OPERATOR[metric]} %(qv)s AS distance FROM {h.table} "
               f"WHERE {q.live_sql()} AND {where} ORDER BY distance, id LIMIT %(limit)s OFFSET %(offset)s")
        params.update(qv=vec, now=utcnow(), limit=query.limit, offset=query.offset)
        knobs = {"ef": str(min(1000, max(s.hnsw_ef_search, need))), "scan": str(max(20_000, 4 * need))}
        with s._db("query"), s._conn() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as cur:
            # one round trip: BEGIN, the per-transaction HNSW settings, the query, COMMIT
            cur.execute("SELECT set_config('hnsw.ef_search', %(ef)s, true), "
                        "set_config('hnsw.iterative_scan', 'strict_order', true), "
                        "set_config('hnsw.max_scan_tuples', %(scan)s, true)", knobs)
            cur.execute(sql, params)
            rows = cur.fetchall()
        out: list[Match] = []
        for rank, row in enumerate(rows, start=query.offset + 1):
            score, distance = q.score_of(metric, float(row[-1]))
            if query.min_score is not None and score < query.min_score:
                break
            emb = _floats(row[11]) if query.include_embeddings else None
            out.append(Match(_doc(row, emb), score, distance, rank))
        return QueryResult(out, query.offset, query.limit, (time.perf_counter() - t0) * 1000.0)

    def _get(self, ids: list[str]) -> list[Document]:
        h, s = self._h, self._s
        h.check()
        if h.options.dimensions is None or not ids:
            return []
        sql = (f"SELECT {', '.join(q.DOC_COLUMNS)}, embedding FROM {h.table} "
               f"WHERE id = ANY(%(ids)s::text[]) AND {q.live_sql()}")
        with s._db("get"), s._conn() as conn:
            rows = conn.execute(sql, {"ids": ids, "now": utcnow()}).fetchall()
        found = {r[0]: _doc(r, _floats(r[11])) for r in rows}
        return [found[i] for i in ids if i in found]

    def _delete(self, ids: list[str]) -> DeleteResult:
        h, s = self._h, self._s
        h.check()
        live: set[str] = set()
        if h.options.dimensions is not None and ids:
            sql = (f"DELETE FROM {h.table} WHERE id = ANY(%(ids)s::text[]) "
                   f"RETURNING id, {q.live_sql()}")  # expired copies go too: they are invisible already
            with s._db("delete"), s._conn() as conn:
                live = {r[0] for r in conn.execute(sql, {"ids": ids, "now": utcnow()}).fetchall() if r[1]}
        missing = [i for i in ids if i not in live]
        return DeleteResult(deleted=len(ids) - len(missing), not_found=len(missing), not_found_ids=missing)

    def _count(self, filter: Filter | None) -> int:
        h, s = self._h, self._s
        h.check()
        where, params = q.compile_filter(parse(filter))
        if where == q.FALSE or h.options.dimensions is None:
            return 0
        params["now"] = utcnow()
        with s._db("count"), s._conn() as conn:
            row = conn.execute(f"SELECT count(*) FROM {h.table} WHERE {q.live_sql()} AND {where}", params).fetchone()
        return int(row[0]) if row else 0

    def _clear(self) -> None:
        h, s = self._h, self._s
        h.check()
        if h.options.dimensions is not None:
            with s._db("clear"), s._conn() as conn:
                conn.execute(f"TRUNCATE {h.table}", {})

    def __repr__(self) -> str:
        return f"PgvectorCollection(name={self.name!r}, dimensions={self._h.options.dimensions}, " \
               f"metric={self._h.options.metric!r})"


# ------------------------------------------------------------------ store


class PgvectorStore(VectorStore):
    """Collections as tables in one PostgreSQL schema. Close it (or use ``with``) to release the pool.

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
                if not self._relation_exists(conn, q.CATALOG):
                    conn.execute(q.catalog_ddl(self.schema), {})

    def _relation_exists(self, conn: Any, name: str) -> bool:
        row = conn.execute("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = %(s)s AND c.relname = %(r)s", {"s": self.schema, "r": name}).fetchone()
        return row is not None

    # catalog and DDL (inside the caller's transaction) -------------------------------

    def _lock_collection(self, cur: Any, h: _Handle) -> CollectionOptions:
        cur.execute(f"SELECT {_CATALOG_COLS} FROM {self._catalog} WHERE name = %(n)s FOR UPDATE", {"n": h.name})
        row = cur.fetchone()
        if row is None:
            h.dropped = True
            raise StoreError(f"pgvector collection {h.name!r} was dropped")
        return _options_from(row)

    def _create_table(self, cur: Any, name: str, dims: int) -> None:
        if self._relation_exists(cur.connection, name):
            return
        cur.execute(q.table_ddl(self.schema, name, dims), {})

    def _drop_indexes(self, cur: Any, name: str) -> None:
        for kind, index in q.index_names(name).items():
            if kind != "pkey":
                cur.execute(f"DROP INDEX IF EXISTS {q.quote_ident(self.schema)}.{q.quote_ident(index)}", {})

    def _ensure_indexes(self, cur: Any, name: str, options: CollectionOptions) -> None:
        assert options.dimensions is not None
        ddl = q.index_ddl(self.schema, name, options.metric, options.dimensions, self.hnsw_m,
                          self.hnsw_ef_construction, dedup=options.dedup)
        cur.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %(s)s AND indexname = ANY(%(i)s::text[])",
                    {"s": self.schema, "i": list(ddl)})
        have = {r[0] for r in cur.fetchall()}
        missing = [sql for index, sql in ddl.items() if index not in have]
        if missing:
            cur.execute("SELECT set_config('maintenance_work_mem', '256MB', true)", {})
            for sql in missing:
                cur.execute(sql, {})

    def _refresh(self, h: _Handle) -> None:
        with self._db("read catalog"), self._conn() as conn:
            row = conn.execute(f"SELECT {_CATALOG_COLS} FROM {self._catalog} WHERE name = %(n)s",
                               {"n": h.name}).fetchone()
        if row is not None:
            h.options = _options_from(row)

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
            fresh = options or self.default_options
            with self._db(f"open collection {name!r}"), self._conn() as conn, conn.transaction(), \
                    conn.cursor() as cur:
                cur.execute(f"INSERT INTO {self._catalog} (name, {_CATALOG_COLS}) VALUES (%(name)s, %(dimensions)s, "
                            "%(metric)s, %(dedup)s, %(dedup_threshold)s, %(ttl)s, %(max_documents)s) "
                            "ON CONFLICT (name) DO NOTHING RETURNING name", {"name": name, **_options_row(fresh)})
                created = cur.fetchone() is not None
                if created and self._relation_exists(conn, name):
                    raise StoreError(f"pgvector: table {name!r} already exists in schema {self.schema!r} and is not "
                                     "an aixpy collection; pick another collection name or schema")
                h = _Handle(self, name, CollectionOptions())
                stored = self._lock_collection(cur, h)
                if options is not None and not _same(options, stored):
                    raise InvalidInputError(f"collection {name!r} exists with different options: {stored}")
                if stored.dimensions is None and options is not None and options.dimensions is not None:
                    stored = dataclasses.replace(stored, dimensions=options.dimensions)
                    cur.execute(f"UPDATE {self._catalog} SET dimensions = %(d)s WHERE name = %(n)s",
                                {"d": stored.dimensions, "n": name})
                if stored.dimensions is not None:
                    self._create_table(cur, name, stored.dimensions)
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
        """Close the connection pool. Idempotent."""
        with self._mutex:
            if self.closed:
                return
            self.closed = True
            self._pool.close()

    def __repr__(self) -> str:
        return f"PgvectorStore({self._where!r}, schema={self.schema!r})"
