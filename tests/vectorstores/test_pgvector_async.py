"""The native async path of the pgvector backend (psycopg 3 AsyncConnectionPool) on a real PostgreSQL 18 +
pgvector 0.8: same results as the sync path, no worker threads, atomic limits across sync and async
writers, the COPY bulk path, pool lifecycle and error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from aixpy import vectorstores
from aixpy.errors import CapacityError, DimensionMismatchError, InvalidInputError, StoreError
from aixpy.vectorstores import BaseCollection, CollectionOptions, Document, Query, UpsertResult
from aixpy.vectorstores import _pg_sql as q
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.pgvector import PgvectorCollection, PgvectorStore
from aixpy.vectorstores.types import utcnow

from ._support import doc, doc_fields, ids, low_rank, summary


def _sql(dsn: str, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


class Stores:
    """``stores.open(schema=None, dsn=None, **pgvector_config)``; every store is closed, every schema dropped."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.stores: list[PgvectorStore] = []
        self.schemas: set[str] = set()

    def open(self, schema: str | None = None, dsn: str | None = None, **cfg: Any) -> PgvectorStore:
        schema = schema or f"a_{uuid.uuid4().hex[:12]}"
        self.schemas.add(schema)
        s = vectorstores.new({"provider": "pgvector", "pgvector": {
            "connection_string": dsn or self.dsn, "schema": schema, **cfg}})
        assert isinstance(s, PgvectorStore)
        self.stores.append(s)
        return s


@pytest.fixture
def pg(postgres_dsn: str) -> Iterator[Stores]:
    stores = Stores(postgres_dsn)
    yield stores
    for s in stores.stores:
        s.close()
    for schema in stores.schemas:
        _sql(postgres_dsn, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _backends(dsn: str, app: str) -> int:
    return int(_sql(dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))[0][0])


async def _until_backends(dsn: str, app: str, n: int) -> int:
    deadline = time.monotonic() + 5  # backends exit asynchronously after the client disconnects
    while (got := _backends(dsn, app)) != n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return got


def _sync_requests(s: PgvectorStore) -> int:
    return int(s._pool.get_stats().get("requests_num", 0))


def _no_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the native async path must not use worker threads")

    monkeypatch.setattr(asyncio, "to_thread", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", refuse)


def _corpus(n: int, dims: int, seed: int) -> list[Document]:
    data = low_rank(n, dims, dims, seed=seed)
    return [doc(f"d{i:03d}", row, f"text {i % 50}", metadata={"i": i, "odd": i % 2 == 1, "g": f"g{i % 3}"},
                tags=[f"t{i % 4}"], expires_at=utcnow() - timedelta(seconds=1) if i % 23 == 5 else None)
            for i, row in enumerate(data)]


# ------------------------------------------------------------------ sync == async


async def test_async_results_equal_sync_on_the_same_data(pg: Stores, monkeypatch: pytest.MonkeyPatch) -> None:
    s = pg.open(pool_max_size=4)
    opts = CollectionOptions(dimensions=6, dedup=True, dedup_threshold=0.995, max_documents=53)
    sc, ac = s.collection("sync", opts), s.collection("asy", opts)
    _no_threads(monkeypatch)
    docs = _corpus(60, 6, seed=1)
    batches: list[list[Document]] = [
        docs[:40],
        [*docs[30:60], doc("bad", [1.0, 2.0]), doc("dup", docs[3].embedding or [], "fresh")],  # updates, new, failed
        [doc("same-content", [0.3] * 6, "text 1"),
         *[doc(f"x{i}", [float(i + 1), 1.0, 0, 0, 0, 2.0]) for i in range(20)]],  # dedup, then the limit
    ]
    for batch in batches:
        r_sync, r_async = sc.upsert_batch(batch), await ac.aupsert_batch(batch)
        assert r_sync == r_async
    assert r_sync.failed_ids  # the limit was reached in the last batch
    assert r_sync.inserted_ids
    assert r_sync.deduplicated_ids
    assert sc.upsert(docs[0]) == await ac.aupsert(docs[0])  # an update
    assert sc.upsert(docs[0]).updated_ids == ["d000"]
    await ac.aupsert(docs[0])
    for bad, err in ((doc("z", [1.0]), DimensionMismatchError), (doc("new", [9.0, 1, 1, 1, 1, 1]), CapacityError)):
        with pytest.raises(err) as e_sync:
            sc.upsert(bad)
        with pytest.raises(err) as e_async:
            await ac.aupsert(bad)
        assert str(e_sync.value) == str(e_async.value)
    queries = [Query(docs[5].embedding or [], limit=7), Query(docs[9].embedding or [], limit=5, offset=4),
               Query(docs[2].embedding or [], limit=50, filter=F.field("odd").eq(True) & F.tags_any("t1", "t3")),
               Query(docs[7].embedding or [], limit=10, offset=3, filter=F.field("i").gte(20), include_embeddings=True),
               Query(docs[11].embedding or [], limit=30, min_score=0.9),
               Query(docs[1].embedding or [], filter=F.field("g").in_(["g0", "g2"]) & ~F.field("i").lt(10))]
    for qq in queries:
        got_sync, got_async = sc.query(qq), await ac.aquery(qq)
        assert summary(got_sync) == summary(got_async)
        assert [doc_fields(m.document) for m in got_sync.matches] == [doc_fields(m.document) for m in got_async.matches]
        assert summary(got_async)  # non-empty: the comparison says something
    with pytest.raises(InvalidInputError, match="zero query vector"):
        await ac.aquery(Query([0.0] * 6))
    wanted = ["d010", "nope", "d005", "d003", "d010"]
    assert [doc_fields(d) for d in sc.get(wanted)] == [doc_fields(d) for d in await ac.aget(wanted)]
    for f in (None, F.field("odd").eq(False), F.tags_all("t2"), F.field("i").gt(10**30)):
        assert sc.count(f) == await ac.acount(f)
    assert sc.delete(["d001", "d005", "nope", "d001"]) == await ac.adelete(["d001", "d005", "nope", "d001"])
    assert sc.count() == await ac.acount() > 0
    sc.clear()
    await ac.aclear()
    assert sc.count() == await ac.acount() == 0
    await s.aclose()


async def test_first_async_write_learns_the_dimensions_without_the_sync_pool(pg: Stores) -> None:
    s = pg.open()
    other = pg.open(schema=s.schema)
    lazy = s.collection("lazy")
    other.collection("lazy").upsert(doc("a", [1.0, 0.0, 0.0]))  # another process writes the first document
    before = _sync_requests(s)
    assert ids(await lazy.aquery(Query([1.0, 0.0, 0.0]))) == ["a"]
    r = await lazy.aupsert_batch([doc("b", [0.0, 1.0, 0.0]), doc("c", [1.0])])
    assert (r.inserted_ids, r.failed_ids) == (["b"], ["c"])
    assert _sync_requests(s) == before  # the catalog was read on the async pool
    assert lazy.dimensions == 3
    await s.aclose()


# ------------------------------------------------------------------ concurrency


async def test_gathered_aqueries_use_the_async_pool_and_no_threads(pg: Stores,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    s = pg.open(pool_max_size=4)
    c = s.collection("g", CollectionOptions(dimensions=8))
    data = low_rank(300, 8, 4, seed=2)
    c.upsert_batch([doc(f"d{i:03d}", row, metadata={"odd": i % 2 == 1}) for i, row in enumerate(data)])
    queries = [Query(data[i].tolist(), limit=5, offset=i % 3, filter=F.field("odd").eq(i % 2 == 0) if i % 4 else None)
               for i in range(20)]
    sequential = [summary(c.query(qq)) for qq in queries]
    sync_before = _sync_requests(s)
    _no_threads(monkeypatch)
    results = await asyncio.gather(*(c.aquery(qq) for qq in queries))
    assert [summary(r) for r in results] == sequential
    assert [summary(await c.aquery(qq)) for qq in queries] == sequential
    assert _sync_requests(s) == sync_before
    assert s._apools.opened() == 1
    pool = await s._apools.get()
    assert pool.get_stats()["requests_num"] >= 40
    assert 1 <= pool.get_stats()["pool_size"] <= 4
    await s.aclose()


async def test_async_and_sync_writers_never_exceed_max_documents(pg: Stores) -> None:
    first = pg.open(pool_max_size=3)
    first.collection("cap", CollectionOptions(dimensions=2, max_documents=37))
    second = pg.open(schema=first.schema, pool_max_size=3)
    results: list[UpsertResult] = []

    def sync_writer(k: int) -> None:
        c = (first, second)[k % 2].collection("cap")
        for i in range(8):
            results.append(c.upsert_batch([doc(f"s{k}-{i}-{j}", [1.0, float(j)]) for j in range(2)]))

    async def async_writer(k: int) -> None:
        c = (first, second)[k % 2].collection("cap")
        for i in range(8):
            if i % 3 == 2:
                with contextlib.suppress(CapacityError):
                    results.append(await c.aupsert(doc(f"a{k}-{i}", [2.0, float(i)])))
            else:
                results.append(await c.aupsert_batch([doc(f"a{k}-{i}-{j}", [1.0, float(j)]) for j in range(2)]))

    threads = [threading.Thread(target=sync_writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    await asyncio.gather(*(async_writer(k) for k in range(4)))
    for t in threads:
        t.join()
    assert sum(r.inserted for r in results) == 37
    assert first.collection("cap").count() == await second.collection("cap").acount() == 37
    await first.aclose()
    await second.aclose()


# ------------------------------------------------------------------ bulk load


async def test_async_bulk_load_copies_then_indexes(pg: Stores, postgres_dsn: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def index_oids() -> dict[str, int]:
        rows = _sql(postgres_dsn, "SELECT c.relname, c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                  "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                                  "WHERE n.nspname = %s AND t.relname = 'bulk'", (s.schema,))
        return {name: int(oid) for name, oid in rows}

    s = pg.open()
    c = s.collection("bulk", CollectionOptions(dimensions=16, metric="euclidean"))
    await c.aupsert(doc("first", [1.0] * 16))  # creates the indexes
    await c.aclear()
    before = index_oids()
    copies: list[str] = []
    many: list[str] = []
    real_copy, real_many = psycopg.AsyncCursor.copy, psycopg.AsyncCursor.executemany

    def spy_copy(self: Any, statement: Any, *a: Any, **k: Any) -> Any:
        copies.append(str(statement))
        return real_copy(self, statement, *a, **k)

    async def spy_many(self: Any, statement: Any, *a: Any, **k: Any) -> Any:
        many.append(str(statement))
        return await real_many(self, statement, *a, **k)

    monkeypatch.setattr(psycopg.AsyncCursor, "copy", spy_copy)
    monkeypatch.setattr(psycopg.AsyncCursor, "executemany", spy_many)
    data = low_rank(600, 16, 4, seed=3)
    r = await c.aupsert_batch([doc(f"d{i:04d}", row, metadata={"i": i}) for i, row in enumerate(data)])
    assert (r.inserted, r.failed) == (600, 0)
    assert len(copies) == 1
    assert "FROM STDIN (FORMAT BINARY)" in copies[0]
    assert many == []
    after = index_oids()
    names = q.index_names("bulk")
    assert set(after) == set(before) == {names[k] for k in ("pkey", "hnsw", "meta", "tags", "exp", "fts")}
    assert all(after[k] != before[k] for k in after if k != names["pkey"])  # dropped, rebuilt after the load
    # the next write into the non-empty table goes through INSERT ... ON CONFLICT and keeps the indexes
    r = await c.aupsert_batch([doc(f"d{i:04d}", row + 1) for i, row in enumerate(data[:520])] + [doc("new", data[0])])
    assert (r.inserted, r.updated) == (1, 520)
    assert (len(copies), len(many)) == (1, 1)
    assert index_oids() == after
    assert ids(await c.aquery(Query(data[560].tolist(), limit=1))) == ["d0560"]
    assert [doc_fields(d) for d in await c.aget(["d0599"])] == [doc_fields(d) for d in c.get(["d0599"])]
    assert await c.acount() == 601
    await s.aclose()


# ------------------------------------------------------------------ lifecycle


async def test_aclose_releases_the_async_pool(pg: Stores, postgres_dsn: str) -> None:
    app = f"aixpy_apool_{uuid.uuid4().hex[:8]}"
    s = pg.open(dsn=f"{postgres_dsn}?application_name={app}", pool_min_size=1, pool_max_size=3)
    c = s.collection("life", CollectionOptions(dimensions=2))
    assert _backends(postgres_dsn, app) == 1  # the sync pool only: the async one opens on first use
    await c.aupsert(doc("a", [1.0, 0.0]))
    await asyncio.gather(*(c.aquery(Query([1.0, float(i)])) for i in range(10)))
    assert 2 <= _backends(postgres_dsn, app) <= 4
    async with s:
        pass  # __aexit__ is aclose()
    assert await _until_backends(postgres_dsn, app, 0) == 0
    assert s._apools.opened() == 0
    with pytest.raises(StoreError, match="closed"):
        await c.acount()
    with pytest.raises(StoreError, match="closed"):
        await c.aupsert(doc("b", [1.0, 0.0]))
    with pytest.raises(StoreError, match="closed"):
        c.count()
    await s.aclose()  # idempotent
    s.close()


async def test_sync_close_inside_the_loop_still_releases_the_async_pool(pg: Stores, postgres_dsn: str) -> None:
    app = f"aixpy_apool_{uuid.uuid4().hex[:8]}"
    s = pg.open(dsn=f"{postgres_dsn}?application_name={app}", pool_min_size=1, pool_max_size=2)
    c = s.collection("life", CollectionOptions(dimensions=2))
    assert await c.acount() == 0
    s.close()  # not awaited: the close is scheduled on this loop
    assert await _until_backends(postgres_dsn, app, 0) == 0
    await s.aclose()  # waits for that scheduled close


def test_loop_shutdown_and_sync_close_release_async_pools(pg: Stores, postgres_dsn: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # psycopg_pool logs the CancelledError of a connection attempt cut by the loop's shutdown; a captured
    # record would keep that half-made connection (via the traceback) alive until the test ends.
    caplog.set_level(logging.ERROR, logger="psycopg.pool")
    app = f"aixpy_apool_{uuid.uuid4().hex[:8]}"
    s = pg.open(dsn=f"{postgres_dsn}?application_name={app}", pool_min_size=1, pool_max_size=2)
    c = s.collection("life", CollectionOptions(dimensions=2))

    async def use(i: int) -> int:
        await c.aupsert(doc(f"d{i}", [1.0, float(i)]))
        await asyncio.gather(*(c.aquery(Query([1.0, 0.0])) for _ in range(4)))
        return await c.acount()

    # asyncio.run() cancels every task at exit: the store's guard task closes that loop's pool
    assert asyncio.run(use(1)) == 1
    assert asyncio.run(use(2)) == 2  # a new loop gets a new pool
    gc.collect()  # a pool task cancelled while it connects drops that connection: it closes when collected
    assert asyncio.run(_until_backends(postgres_dsn, app, 1)) == 1  # the sync pool's connection only
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(use(3)) == 3
        assert s._apools.opened() == 1
        s.close()  # the loop is idle: close() drives it to close its pool
        assert s._apools.opened() == 0
    finally:
        loop.close()
    assert asyncio.run(_until_backends(postgres_dsn, app, 0)) == 0


# ------------------------------------------------------------------ errors


async def test_async_errors_map_like_sync_and_hide_the_password(pg: Stores, postgres_dsn: str) -> None:
    secret = "s3cr3t-Pa55word"
    role = f"r_{uuid.uuid4().hex[:8]}"
    _sql(postgres_dsn, f"CREATE ROLE {role} LOGIN SUPERUSER")
    try:
        dsn = postgres_dsn.replace("postgres@", f"{role}:{secret}@")  # trust auth ignores the password
        s = pg.open(dsn=dsn, connect_timeout=2)
        c = s.collection("err", CollectionOptions(dimensions=2))
        await c.aupsert(doc("a", [1.0, 0.0]))
        for call in (lambda: c.aquery(Query([1.0, 0.0], metric="dot")),
                     lambda: c.acount(F.field("k").eq("a\x00")),
                     lambda: c.aquery(Query([1.0, 0.0], filter=F.tenant("x\x00")))):
            with pytest.raises(InvalidInputError) as info:
                await call()
            assert secret not in str(info.value)
        r = await c.aupsert_batch([doc("n", [1.0, 0.0], "a\x00b"), doc("ok", [0.0, 1.0])])
        assert (r.inserted_ids, r.failed_ids) == (["ok"], ["n"])
        _sql(postgres_dsn, f'DROP TABLE "{s.schema}".err')
        for sync_call, async_call in ((lambda: c.count(), lambda: c.acount()),
                                      (lambda: c.get(["a"]), lambda: c.aget(["a"])),
                                      (lambda: c.query(Query([1.0, 0.0])), lambda: c.aquery(Query([1.0, 0.0])))):
            with pytest.raises(StoreError) as e_sync:
                sync_call()
            with pytest.raises(StoreError) as e_async:
                await async_call()
            assert "missing" in str(e_async.value)
            assert str(e_sync.value).split(": ")[:2] == str(e_async.value).split(": ")[:2]
            assert secret not in str(e_async.value)
            assert secret not in repr(e_async.value)
        assert s.drop_collection("err") is True
        with pytest.raises(StoreError, match="dropped"):
            await c.aupsert(doc("b", [1.0, 0.0]))
        # a fresh store whose async connections are refused: the pool times out, mapped like the sync path
        s2 = pg.open(dsn=dsn, connect_timeout=2)
        c2 = s2.collection("later", CollectionOptions(dimensions=2))
        _sql(postgres_dsn, f"ALTER ROLE {role} NOLOGIN")
        with pytest.raises(StoreError, match="no database connection within 2 s") as refused:
            await c2.acount()
        assert secret not in str(refused.value)
        assert secret not in repr(refused.value)
        _sql(postgres_dsn, f"ALTER ROLE {role} LOGIN")
        assert await c2.acount() == 0  # a failed open is retried by the next call
        await s.aclose()
        await s2.aclose()
    finally:
        _sql(postgres_dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        _sql(postgres_dsn, f"DROP OWNED BY {role}")
        _sql(postgres_dsn, f"DROP ROLE {role}")


def test_async_methods_are_native() -> None:
    for name in ("aupsert", "aupsert_batch", "aquery", "aget", "adelete", "acount", "aclear"):
        assert getattr(PgvectorCollection, name) is not getattr(BaseCollection, name), name
