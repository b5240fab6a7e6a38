"""pgvector backend on a real PostgreSQL 18 + pgvector 0.8: the filter compiler against the reference
evaluator, hostile input, the bulk-load path, the missing extension, pooling, persistence, secrets."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from aixpy import vectorstores
from aixpy.config.stores import VectorStoreConfig
from aixpy.errors import ConfigError, InvalidInputError, MissingDependencyError, StoreError
from aixpy.vectorstores import CollectionOptions, Query, Scope
from aixpy.vectorstores import _pg_sql as q
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.filters import Cond, Filter, matches
from aixpy.vectorstores.pgvector import PgvectorStore

from ._random_filters import FilterFuzzer
from ._support import doc, doc_fields, ids, low_rank, summary

Opener = Callable[..., PgvectorStore]


def _sql(dsn: str, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def open_pg(postgres_dsn: str) -> Iterator[Opener]:
    """``open_pg(schema=None, dsn=None, **pgvector_config)``: a store in a schema dropped after the test."""
    stores: list[PgvectorStore] = []
    schemas: set[str] = set()

    def open_(schema: str | None = None, dsn: str | None = None, **cfg: Any) -> PgvectorStore:
        schema = schema or f"p_{uuid.uuid4().hex[:12]}"
        schemas.add(schema)
        s = vectorstores.new({"provider": "pgvector", "pgvector": {
            "connection_string": dsn or postgres_dsn, "schema": schema, **cfg}})
        assert isinstance(s, PgvectorStore)
        stores.append(s)
        return s

    yield open_
    for s in stores:
        s.close()
    for schema in schemas:
        _sql(postgres_dsn, f'DROP SCHEMA IF EXISTS "{schema.replace(chr(34), chr(34) * 2)}" CASCADE')


def indexes(dsn: str, schema: str, table: str) -> dict[str, int]:
    rows = _sql(dsn, "SELECT c.relname, c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                     "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                     "WHERE n.nspname = %s AND t.relname = %s", (schema, table))
    return {name: int(oid) for name, oid in rows}


# ------------------------------------------------------------------ filter compiler vs reference

KEYS = ["a", "b", "s", "l", "weird key", "ключ", 'q"k', "x\\y", "'; DROP TABLE p; --", "%s", "%(a)s", "{}"]
EXTRA_KEYS = ["missing", "x.y", "$a"]  # filter-only: never stored
INTS = [-2, -1, 0, 1, 2, 3, 2**53, 2**53 + 1, -(2**53) - 1, 2**60, 2**63 - 1, 10**300]
FLOATS = [0.0, -0.0, 0.1, 0.5, 1.0, 2.0, 1.5, 9007199254740992.0, float(2**60), 1e300, 1e-300]
STRINGS = ["", "a", "ab", "abc", "b", "hello world", "Hello", "1", "true", "é", "it's", 'say "hi"', "back\\slash",
           "%s", "'; DROP TABLE p; --", "日本"]
SCALARS: list[Any] = [*INTS, *FLOATS, True, False, *STRINGS]


def _value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.6:
        v = rng.choice(SCALARS)
        return v if not isinstance(v, int) or isinstance(v, bool) or abs(v) < 2**63 else 7  # stored ints: int64
    if r < 0.7:
        return None
    if r < 0.9:
        return [rng.choice([*FLOATS, True, False, *STRINGS, 1, 2, 2**60]) for _ in range(rng.randint(0, 3))]
    return rng.choice([[[1]], [["a"]], {"a": 1}, {"x": "hello"}, [{"a": 1}], []])


FUZZ = FilterFuzzer(KEYS, EXTRA_KEYS, SCALARS, [*INTS, *FLOATS], _value, meta_probability=0.45)


def test_compiled_filters_agree_with_the_reference_evaluator(open_pg: Opener, postgres_dsn: str) -> None:
    rng = random.Random(20240601)
    docs = FUZZ.dataset(rng, 150)
    s = open_pg()
    c = s.collection("p", CollectionOptions(dimensions=4))
    r = c.upsert_batch(docs)
    assert r.inserted == len(docs), r.errors
    visible = [d for d in docs if not d.is_expired()]
    nonempty = 0
    for n in range(300):
        f = FUZZ.filter(rng)
        expected = sorted(d.id for d in visible if matches(f, d))
        nonempty += 0 < len(expected) < len(visible)
        assert c.count(f) == len(expected), (n, f)
        got = c.query(Query([1.0, 1.0, 1.0, 1.0], limit=len(docs), filter=f))
        assert sorted(ids(got)) == expected, (n, f)
    assert nonempty > 100  # the filters discriminate: not all-or-nothing
    assert s.list_collections() == ["p"]  # no hostile key dropped anything
    assert _sql(postgres_dsn, f'SELECT count(*) FROM "{s.schema}".p')[0][0] == len(docs)


@pytest.mark.parametrize(("stored", "flt", "hit"), [
    (0.1, F.field("v").eq(0.1), True),
    (0.1, F.field("v").gt(0.1), False),
    (0.1, F.field("v").lt(0.1000000000000000056), False),  # Python: the same float
    (float(2**60), F.field("v").eq(2**60), True),  # exact: the float is 2**60
    (float(2**60), F.field("v").eq(2**60 + 1), False),
    (2**60 + 1, F.field("v").gt(float(2**60)), True),  # an int beyond float precision
    (2**53 + 1, F.field("v").eq(float(2**53)), False),
    (1e300, F.field("v").eq(10**300), False),  # 1e300 is not exactly 10**300
    (1e300, F.field("v").gt(10**300), True),
    (2, F.field("v").eq(2.0), True),
    (True, F.field("v").eq(1), False),
    ("1", F.field("v").eq(1), False),
    ([1, "a"], F.field("v").contains(1.0), True),
])
def test_numbers_compare_exactly_like_python(open_pg: Opener, stored: Any, flt: Filter, hit: bool) -> None:
    d = doc("x", [1.0, 0.0], metadata={"v": stored})
    assert matches(flt, d) is hit  # the reference agrees with the expectation
    c = open_pg().collection("n", CollectionOptions(dimensions=2))
    c.upsert(d)
    assert c.count(flt) == int(hit)
    [back] = c.get(["x"])
    assert back.metadata == {"v": stored}
    assert type(back.metadata["v"]) is type(stored)


# ------------------------------------------------------------------ hostile input

HOSTILE = ["'; DROP TABLE h; --", "%s", "%(x)s", "a\\b", 'q"k', "{}", "a$$", "-- x", "日本語 🚀", "\\x00", "e'x"]


def test_hostile_keys_values_and_names(open_pg: Opener, postgres_dsn: str) -> None:
    schema = f"""we"ird %s sch'ema {uuid.uuid4().hex[:6]}"""
    s = open_pg(schema=schema)
    c = s.collection("h-1", CollectionOptions(dimensions=2))
    docs = [doc(f"id {v}", [1.0, float(i)], content=v, metadata={v: v, "k": v}, scope=Scope(tenant=v))
            for i, v in enumerate(HOSTILE)]
    assert c.upsert_batch(docs).inserted == len(HOSTILE)
    for v in HOSTILE:
        for f in (F.field(v).eq(v), F.field("k").eq(v), F.field("k").contains(v), F.tenant(v),
                  F.field(v).exists() & F.field("k").in_([v, "zzz"])):
            assert ids(c.query(Query([1.0, 0.0], limit=50, filter=f))) == [f"id {v}"], (v, f)
            assert c.count(f) == 1
        assert c.count(F.field("k").ne(v)) == len(HOSTILE) - 1
    assert [d.metadata for d in c.get([f"id {v}" for v in HOSTILE])] == [{v: v, "k": v} for v in HOSTILE]
    assert s.list_collections() == ["h-1"]
    tables = _sql(postgres_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))
    assert [t[0] for t in tables] == [q.CATALOG, "h-1"]


def test_nul_characters_are_refused_cleanly(open_pg: Opener) -> None:
    c = open_pg().collection("nul", CollectionOptions(dimensions=2))
    r = c.upsert_batch([doc("ok", [1.0, 0.0], "fine"), doc("c", [1.0, 0.0], "a\x00b"),
                        doc("m", [1.0, 0.0], metadata={"k": ["x", "a\x00"]}),
                        doc("t", [1.0, 0.0], scope=Scope(tenant="a\x00")), doc("s", [1.0, 0.0], "\ud800")])
    assert (r.inserted, r.failed, r.failed_ids) == (1, 4, ["c", "m", "t", "s"])
    assert all("NUL" in e.message and e.type is InvalidInputError for e in r.errors[:3])
    assert "surrogate" in r.errors[3].message
    with pytest.raises(InvalidInputError, match="NUL"):
        c.upsert(doc("x", [1.0, 0.0], "a\x00"))
    for f in (F.field("k").eq("a\x00"), Cond("k\x00", "exists", True), F.tenant("a\x00b")):
        with pytest.raises(InvalidInputError, match="NUL"):
            c.count(f)
        with pytest.raises(InvalidInputError, match="NUL"):
            c.query(Query([1.0, 0.0], filter=f))
    assert c.count() == 1


# ------------------------------------------------------------------ bulk load, indexes, big vectors


def test_bulk_load_builds_indexes_after_the_copy(open_pg: Opener, postgres_dsn: str) -> None:
    s = open_pg()
    c = s.collection("bulk", CollectionOptions(dimensions=16, metric="euclidean"))
    c.upsert(doc("first", [1.0] * 16))
    before = indexes(postgres_dsn, s.schema, "bulk")
    names = q.index_names("bulk")
    assert set(before) == {names[k] for k in ("pkey", "hnsw", "meta", "tags", "exp", "fts")}
    c.clear()
    data = low_rank(600, 16, 4, seed=3)
    r = c.upsert_batch([doc(f"d{i:04d}", row, metadata={"i": i}) for i, row in enumerate(data)])
    assert r.inserted == 600
    after = indexes(postgres_dsn, s.schema, "bulk")
    assert set(after) == set(before)
    assert after[names["pkey"]] == before[names["pkey"]]
    assert all(after[k] != before[k] for k in after if k != names["pkey"])  # dropped, rebuilt after the load
    [(definition,)] = _sql(postgres_dsn, "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (names["hnsw"],))
    assert "USING hnsw (embedding vector_l2_ops)" in definition
    assert "m='16'" in definition
    assert "ef_construction='64'" in definition
    # later writes go through INSERT ... ON CONFLICT and keep the indexes
    r = c.upsert_batch([doc(f"d{i:04d}", row + 1) for i, row in enumerate(data[:550])] + [doc("new", data[0])])
    assert (r.inserted, r.updated) == (1, 550)
    assert indexes(postgres_dsn, s.schema, "bulk") == after
    assert ids(c.query(Query(data[560].tolist(), limit=1))) == ["d0560"]
    assert c.count() == 601
    assert c.count(F.field("i").exists()) == 50  # updates replace the metadata


def test_wide_vectors_are_searched_exactly_without_hnsw(open_pg: Opener, postgres_dsn: str) -> None:
    s = open_pg()
    c = s.collection("wide", CollectionOptions(dimensions=2001))
    data = low_rank(40, 2001, 4, seed=5)
    c.upsert_batch([doc(f"w{i:02d}", row) for i, row in enumerate(data)])
    assert q.index_names("wide")["hnsw"] not in indexes(postgres_dsn, s.schema, "wide")
    assert ids(c.query(Query(data[11].tolist(), limit=1))) == ["w11"]


# ------------------------------------------------------------------ extension, pool, persistence


def test_missing_extension_is_created_or_explained(postgres_dsn: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    db_auto, db_none, role = f"auto_{suffix}", f"none_{suffix}", f"limited_{suffix}"
    base = postgres_dsn.rsplit("/", 1)[0]
    _sql(postgres_dsn, f"CREATE DATABASE {db_auto}")
    _sql(postgres_dsn, f"CREATE DATABASE {db_none}")
    _sql(postgres_dsn, f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    try:
        # a superuser gets the extension created on first use
        with vectorstores.new({"provider": "pgvector", "pgvector": {"connection_string": f"{base}/{db_auto}"}}) as s:
            s.collection("c", CollectionOptions(dimensions=2)).upsert(doc("a", [1.0, 0.0]))
        assert _sql(f"{base}/{db_auto}", "SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]
        # a role that may not create it gets a clear error
        dsn = f"postgresql://{role}@{base.split('@', 1)[1]}/{db_none}"
        with pytest.raises(StoreError) as info:
            vectorstores.new({"provider": "pgvector", "pgvector": {"connection_string": dsn}})
        assert "CREATE EXTENSION vector" in str(info.value)
        assert db_none in str(info.value)
        assert _sql(f"{base}/{db_none}", "SELECT extname FROM pg_extension WHERE extname = 'vector'") == []
    finally:
        _sql(postgres_dsn, f"DROP DATABASE {db_auto} WITH (FORCE)")
        _sql(postgres_dsn, f"DROP DATABASE {db_none} WITH (FORCE)")
        _sql(postgres_dsn, f"DROP ROLE {role}")


def test_pool_reuses_its_connections(open_pg: Opener, postgres_dsn: str) -> None:
    app = f"aixpy_pool_{uuid.uuid4().hex[:8]}"
    s = open_pg(dsn=f"{postgres_dsn}?application_name={app}", pool_min_size=1, pool_max_size=2)
    c = s.collection("pool", CollectionOptions(dimensions=2))
    for i in range(30):
        c.upsert(doc(f"d{i}", [1.0, float(i)]))
        c.query(Query([1.0, 0.0], limit=3))
        c.count()
    busy = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
    assert _sql(postgres_dsn, busy, (app,))[0][0] == 1
    threads = [threading.Thread(target=lambda: [c.query(Query([1.0, 0.0])) for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= _sql(postgres_dsn, busy, (app,))[0][0] <= 2
    s.close()
    deadline = time.monotonic() + 5  # backends exit asynchronously after the client disconnects
    while _sql(postgres_dsn, busy, (app,))[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sql(postgres_dsn, busy, (app,))[0][0] == 0
    with pytest.raises(StoreError, match="closed"):
        c.count()


def test_reopen_sees_data_options_and_times(open_pg: Opener) -> None:
    s1 = open_pg()
    opts = CollectionOptions(metric="dot", dedup=True, dedup_threshold=0.9, ttl=timedelta(hours=2), max_documents=50)
    c1 = s1.collection("keep", opts)
    c1.upsert_batch([doc("a", [1.0, 2.0, 3.0], "x", metadata={"f": 0.1}, tags=["t"]), doc("b", [3.0, 2.0, 1.0])])
    lazy = s1.collection("lazy")
    [a1] = c1.get(["a"])
    s1.close()
    s2 = open_pg(schema=s1.schema)
    assert s2.list_collections() == ["keep", "lazy"]
    c2 = s2.collection("keep")
    assert c2.options == CollectionOptions(dimensions=3, metric="dot", dedup=True, dedup_threshold=0.9,
                                           ttl=timedelta(hours=2), max_documents=50)
    [a2] = c2.get(["a"])
    assert doc_fields(a2) == doc_fields(a1)
    assert (a2.created_at, a2.updated_at) == (a1.created_at, a1.updated_at)
    assert ids(c2.query(Query([1.0, 2.0, 3.0]))) == ["a", "b"]
    with pytest.raises(InvalidInputError, match="different options"):
        s2.collection("keep", CollectionOptions(metric="cosine"))
    assert lazy.dimensions is None
    s2.collection("lazy").upsert(doc("z", [1.0]))
    s3 = open_pg(schema=s1.schema)
    assert s3.collection("lazy").dimensions == 1


def test_foreign_table_is_never_adopted(open_pg: Opener, postgres_dsn: str) -> None:
    s = open_pg()
    _sql(postgres_dsn, f'CREATE TABLE "{s.schema}".mine (x int)')
    with pytest.raises(StoreError, match="not an aixpy collection"):
        s.collection("mine", CollectionOptions(dimensions=2))
    assert s.list_collections() == []
    assert _sql(postgres_dsn, f'SELECT count(*) FROM "{s.schema}".mine') == [(0,)]


# ------------------------------------------------------------------ concurrency, errors, secrets


def test_max_documents_holds_under_concurrent_writers(open_pg: Opener) -> None:
    first = open_pg()
    first.collection("cap", CollectionOptions(dimensions=2, max_documents=25))
    stores = [first, open_pg(schema=first.schema)]
    inserted: list[int] = []

    def writer(k: int) -> None:
        c = stores[k % 2].collection("cap")
        for i in range(10):
            inserted.append(c.upsert_batch([doc(f"w{k}-{i}-{j}", [1.0, float(j)]) for j in range(2)]).inserted)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(inserted) == 25
    assert first.collection("cap").count() == 25


def test_dedup_matches_the_memory_backend(open_pg: Opener) -> None:
    rng = np.random.default_rng(11)
    base = rng.standard_normal((6, 3))
    opts = CollectionOptions(dimensions=3, dedup=True, dedup_threshold=0.98)
    mem = vectorstores.new({"provider": "memory"}).collection("d", opts)
    pg = open_pg().collection("d", opts)
    for step in range(12):
        batch = []
        for j in range(int(rng.integers(1, 6))):
            v = base[int(rng.integers(0, 6))] + rng.normal(0, 0.1 if rng.random() < 0.5 else 0.001, 3)
            content = str(rng.choice(["", "x", "y", f"u{step}-{j}"]))
            batch.append(doc(f"id{int(rng.integers(0, 15))}", v, content))
        assert pg.upsert_batch(batch) == mem.upsert_batch(batch), step
    assert sorted(ids(pg.get([f"id{i}" for i in range(15)]))) == sorted(ids(mem.get([f"id{i}" for i in range(15)])))


def test_errors_never_show_the_connection_string(open_pg: Opener, postgres_dsn: str) -> None:
    from tests._services._proc import free_port

    secret = "s3cr3t-Pa55word"
    dsn = f"postgresql://postgres:{secret}@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StoreError) as info:
        PgvectorStore(dsn, connect_timeout=2)
    assert secret not in str(info.value)
    assert secret not in repr(info.value)
    with pytest.raises(ConfigError) as bad:
        PgvectorStore(f"host=x password={secret} oops", connect_timeout=2)
    assert secret not in str(bad.value)
    ok = open_pg(dsn=postgres_dsn.replace("postgres@", f"postgres:{secret}@"))  # trust auth ignores it
    assert secret not in repr(ok)
    c = ok.collection("c", CollectionOptions(dimensions=2))
    assert secret not in repr(c)
    cfg = VectorStoreConfig.model_validate({"provider": "pgvector",
                                                         "pgvector": {"connection_string": dsn}})
    assert secret not in repr(cfg)
    with pytest.raises(ConfigError) as sizes:
        vectorstores.new({"provider": "pgvector", "pgvector": {"connection_string": dsn, "pool_min_size": 5,
                                                                "pool_max_size": 2}})
    assert "pool_max_size" in str(sizes.value)
    assert secret not in str(sizes.value)
    _sql(postgres_dsn, f'DROP TABLE "{ok.schema}".c')
    with pytest.raises(StoreError, match="missing") as gone:
        c.count()
    assert secret not in str(gone.value)


def test_query_metric_must_match_the_index(open_pg: Opener) -> None:
    c = open_pg().collection("m", CollectionOptions(dimensions=2, metric="cosine"))
    c.upsert(doc("a", [1.0, 0.0]))
    with pytest.raises(InvalidInputError, match="metric"):
        c.query(Query([1.0, 0.0], metric="dot"))


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch, postgres_dsn: str) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(MissingDependencyError, match=r"aixpy\[pgvector\]"):
        PgvectorStore(postgres_dsn)


# ------------------------------------------------------------------ async path


async def test_async_calls_run_concurrently_and_match_sync(open_pg: Opener) -> None:
    c = open_pg(pool_max_size=4).collection("a", CollectionOptions(dimensions=8))
    data = low_rank(200, 8, 3, seed=9)
    r = await c.aupsert_batch([doc(f"d{i:03d}", row, metadata={"odd": i % 2 == 1}) for i, row in enumerate(data)])
    assert r.inserted == 200
    queries = [Query(row.tolist(), limit=5, filter=F.field("odd").eq(True)) for row in data[:20]]
    results = await asyncio.gather(*(c.aquery(qq) for qq in queries))
    assert [summary(x) for x in results] == [summary(c.query(qq)) for qq in queries]
    assert await c.acount(F.field("odd").eq(True)) == 100
    assert (await c.adelete(["d000", "nope"])).not_found_ids == ["nope"]
