"""SQL of the ``pgvector`` backend: DDL, exact JSON for metadata, and the filter compiler.

Pure functions that build SQL text with psycopg ``%(name)s`` placeholders; nothing here imports
psycopg or talks to a database. Values never enter SQL text: every key and value of a filter is a
bound parameter. Identifiers (schema, table, index names) are quoted with :func:`quote_ident`.

Table of one collection (the table is named like the collection)::

    id text COLLATE "C" PRIMARY KEY       -- "C": ties break by id in code point order, like Python
    content text, content_sha256 text     -- sha256 hex of non-empty content (dedup), else NULL
    embedding vector(N), embedding_model text
    metadata jsonb                         -- floats stored as exact decimals (see exact_json)
    tags text[], tenant text, scope_user text, scope_session text
    created_at, updated_at, expires_at timestamptz

Filter semantics are those of :func:`aixpy.vectorstores.filters.matches`, exactly: JSONB containment
compares numbers numerically and never equates ``true`` with ``1`` or ``"1"``; every compiled
predicate is a non-NULL boolean, so ``NOT`` is the complement (``ne``/``nin`` match missing keys).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

from aixpy.errors import InvalidInputError
from aixpy.vectorstores.filters import And, Cond, Filter, Not, Or, ScopeIs, TagsMatch
from aixpy.vectorstores.types import Metric

__all__ = [
    "CATALOG",
    "DOC_COLUMNS",
    "FALSE",
    "HNSW_MAX_DIMS",
    "OPCLASS",
    "OPERATOR",
    "TERMS_DDL",
    "TRUE",
    "WRITE_COLUMNS",
    "Plan",
    "Stmt",
    "bm25_sql",
    "catalog_ddl",
    "check_text",
    "compile_filter",
    "df_sql",
    "exact_json",
    "exact_number",
    "execute",
    "fetch_all",
    "fetch_one",
    "index_ddl",
    "index_names",
    "live_sql",
    "quote_ident",
    "score_of",
    "table_ddl",
    "tsquery_any",
    "upsert_sql",
]

CATALOG = "_aixpy_collections"  # collection names start alphanumeric: never collides with one
HNSW_MAX_DIMS = 2000  # pgvector cannot build an HNSW index on wider vector columns (search stays exact)
TRUE, FALSE = "TRUE", "FALSE"

OPERATOR: dict[Metric, str] = {"cosine": "<=>", "dot": "<#>", "euclidean": "<->"}
OPCLASS: dict[Metric, str] = {"cosine": "vector_cosine_ops", "dot": "vector_ip_ops", "euclidean": "vector_l2_ops"}

#: Columns written by an upsert, in COPY / INSERT order.
WRITE_COLUMNS = ("id", "content", "content_sha256", "embedding", "embedding_model", "metadata", "tags",
                 "tenant", "scope_user", "scope_session", "created_at", "updated_at", "expires_at", "content_terms")
#: Columns read back to build a Document (without the embedding).
DOC_COLUMNS = ("id", "content", "embedding_model", "metadata", "tags", "tenant", "scope_user", "scope_session",
               "created_at", "updated_at", "expires_at")


# ------------------------------------------------------------------ plans

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement of a :data:`Plan`: what a driver runs on its cursor and what it sends back.

    ``fetch="all"`` sends back the rows, ``"one"`` the first row (or ``None``), ``"none"`` ``None``.
    ``many`` runs ``executemany`` over those rows; with ``copy_types`` it is a binary ``COPY FROM STDIN``.
    """

    sql: str
    params: dict[str, Any] | None = None
    fetch: Literal["all", "one", "none"] = "none"
    many: Sequence[tuple[Any, ...]] | None = None
    copy_types: Sequence[str] | None = None


#: The database work of one operation, written once: a generator that yields each :class:`Stmt` and
#: receives its result, returning the operation's value. The sync and async drivers in
#: :mod:`aixpy.vectorstores._pg_async` run the same plans, so both paths share every statement and decoder.
Plan = Generator[Stmt, Any, T]


def execute(sql: str, params: dict[str, Any] | None = None) -> Stmt:
    return Stmt(sql, {} if params is None else params)


def fetch_all(sql: str, params: dict[str, Any] | None = None) -> Stmt:
    return Stmt(sql, {} if params is None else params, "all")


def fetch_one(sql: str, params: dict[str, Any] | None = None) -> Stmt:
    return Stmt(sql, {} if params is None else params, "one")


# ------------------------------------------------------------------ identifiers and text


def check_text(what: str, s: str) -> str:
    """PostgreSQL text holds neither NUL characters nor lone surrogates: refuse them cleanly."""
    if "\x00" in s:
        raise InvalidInputError(f"{what} contains a NUL character, which PostgreSQL cannot store")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} is not valid Unicode (lone surrogate)") from None
    return s


def quote_ident(name: str) -> str:
    """A quoted SQL identifier; ``%`` is doubled because every statement goes through psycopg's
    placeholder parser (always run with a parameter mapping, even an empty one)."""
    check_text("identifier", name)
    if not name or len(name.encode("utf-8")) > 63:
        raise InvalidInputError(f"identifier {name!r} must be 1-63 bytes long (PostgreSQL would truncate it)")
    return '"' + name.replace('"', '""').replace("%", "%%") + '"'


def _short_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def index_names(collection: str) -> dict[str, str]:
    """Names of the constraint and indexes of ``collection``'s table. They start with ``_`` (never a
    collection name) and hash the collection name, so they never collide and never get truncated."""
    h = f"_aixpy_{_short_hash(collection)}"
    return {k: f"{h}_{k}" for k in ("pkey", "hnsw", "meta", "tags", "exp", "sha", "fts")}


# ------------------------------------------------------------------ exact JSON


def exact_number(v: int | float, *, keep_float: bool = True) -> str:
    """Decimal text of the exact value of ``v``. Floats are written in full (``0.1`` becomes
    ``0.1000000000000000055511151231257827021181583404541015625``) so PostgreSQL's numeric
    comparisons equal Python's exact int/float comparisons, and end in ``.0`` when integral so they
    read back as floats."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidInputError(f"not a number: {v!r}")
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        raise InvalidInputError(f"number must be finite, got {v!r}")
    s = format(Decimal(v), "f")
    return s + ".0" if keep_float and "." not in s else s


def _encode(v: Any, out: list[str], key: str) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(json.dumps(check_text(f"metadata {key!r}", v), ensure_ascii=False))
    elif isinstance(v, int | float):
        out.append(exact_number(v))
    elif isinstance(v, list | tuple):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _encode(x, out, key)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, (k, x) in enumerate(v.items()):
            if i:
                out.append(",")
            out.append(json.dumps(check_text("metadata key", str(k)), ensure_ascii=False))
            out.append(":")
            _encode(x, out, key or str(k))
        out.append("}")
    else:
        raise InvalidInputError(f"metadata {key!r}: cannot store a {type(v).__name__} as JSON")


def exact_json(value: Any) -> str:
    """JSON text of ``value`` with exact numbers (see :func:`exact_number`)."""
    out: list[str] = []
    _encode(value, out, "")
    return "".join(out)


# ------------------------------------------------------------------ scores


def score_of(metric: Metric, d: float) -> tuple[float, float]:
    """(score, distance) from pgvector's operator value, in the conventions of ``types``."""
    if metric == "cosine":
        return 1.0 - d, d
    if metric == "dot":  # <#> is the negative inner product
        return -d, d
    return 1.0 / (1.0 + d), d


# ------------------------------------------------------------------ DDL


def catalog_ddl(schema: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.{quote_ident(CATALOG)} ("
            "name text COLLATE \"C\" PRIMARY KEY, dimensions integer, metric text NOT NULL, "
            "dedup boolean NOT NULL, dedup_threshold double precision NOT NULL, ttl interval, "
            "max_documents integer, created_at timestamptz NOT NULL DEFAULT now(), "
            "format integer NOT NULL DEFAULT 1)")


def table_ddl(schema: str, name: str, dims: int) -> str:
    t = f"{quote_ident(schema)}.{quote_ident(name)}"
    pkey = quote_ident(index_names(name)["pkey"])
    return (f"CREATE TABLE {t} ("
            f"id text COLLATE \"C\" NOT NULL CONSTRAINT {pkey} PRIMARY KEY, "
            "content text NOT NULL DEFAULT '', content_sha256 text, "
            f"embedding vector({int(dims)}) NOT NULL, embedding_model text, "
            "metadata jsonb NOT NULL DEFAULT '{}'::jsonb, tags text[] NOT NULL DEFAULT '{}'::text[], "
            "tenant text, scope_user text, scope_session text, "
            f"created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, expires_at timestamptz, {TERMS_DDL})")


#: The keyword-search columns: the content's words (:func:`aixpy.vectorstores.keyword.tokenize`, in
#: order, written by aixpy) and a generated tsvector of them that the GIN index serves.
TERMS_DDL = ("content_terms text[] NOT NULL DEFAULT '{}'::text[], "
             "content_tsv tsvector GENERATED ALWAYS AS (array_to_tsvector(content_terms)) STORED")


def tsquery_any(terms: Sequence[str]) -> str:
    """A tsquery literal matching any of ``terms`` (words of ``tokenize``: no quote or backslash)."""
    return " | ".join(f"'{t}'" for t in dict.fromkeys(terms))


def bm25_sql(table: str, cols: str, where: str) -> str:
    """Keyword search: BM25 (the formula of :mod:`aixpy.vectorstores.keyword`) of the rows whose
    tsvector matches ``%(tsq)s``; ``%(terms)s``/``%(idf)s`` are the query words and their idf,
    ``%(avg)s`` the average length. The score is the last column."""
    from aixpy.vectorstores.keyword import K1, B

    return (f"SELECT {cols}, (SELECT sum(q.w * c.n * {K1 + 1.0!r} / (c.n + {K1!r} * ({1.0 - B!r} + {B!r} * "
            "cardinality(content_terms) / %(avg)s))) FROM (SELECT x, count(*)::float8 AS n FROM unnest(content_terms) "
            "x GROUP BY x) c JOIN unnest(%(terms)s::text[], %(idf)s::float8[]) AS q(term, w) ON q.term = c.x) AS score "
            f"FROM {table} WHERE content_tsv @@ %(tsq)s::tsquery AND {live_sql()} AND {where} "
            "ORDER BY score DESC, id LIMIT %(limit)s")


def df_sql(table: str) -> str:
    """Live rows, their average length and, per word of ``%(words)s`` (tsquery literals), how many hold it."""
    return (f"SELECT count(*), coalesce(avg(cardinality(content_terms)), 0)::float8, ARRAY(SELECT (SELECT count(*) "
            f"FROM {table} WHERE content_tsv @@ u.x::tsquery AND {live_sql()}) FROM unnest(%(words)s::text[]) "
            f"WITH ORDINALITY AS u(x, i) ORDER BY u.i) FROM {table} WHERE {live_sql()}")


def index_ddl(schema: str, name: str, metric: Metric, dims: int, m: int, ef_construction: int, *,
              dedup: bool = False) -> dict[str, str]:
    """``CREATE INDEX`` of every secondary index, by index name (HNSW only up to 2000 dimensions;
    the content hash only for dedup collections)."""
    t = f"{quote_ident(schema)}.{quote_ident(name)}"
    n = index_names(name)
    out = {
        n["meta"]: f"CREATE INDEX IF NOT EXISTS {quote_ident(n['meta'])} ON {t} USING gin (metadata jsonb_path_ops)",
        n["tags"]: f"CREATE INDEX IF NOT EXISTS {quote_ident(n['tags'])} ON {t} USING gin (tags)",
        n["exp"]: (f"CREATE INDEX IF NOT EXISTS {quote_ident(n['exp'])} ON {t} (expires_at) "
                   "WHERE expires_at IS NOT NULL"),
    }
    if dedup:
        out[n["sha"]] = f"CREATE INDEX IF NOT EXISTS {quote_ident(n['sha'])} ON {t} (content_sha256)"
    out[n["fts"]] = f"CREATE INDEX IF NOT EXISTS {quote_ident(n['fts'])} ON {t} USING gin (content_tsv)"
    if dims <= HNSW_MAX_DIMS:
        out[n["hnsw"]] = (f"CREATE INDEX IF NOT EXISTS {quote_ident(n['hnsw'])} ON {t} USING hnsw "
                          f"(embedding {OPCLASS[metric]}) "
                          f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})")
    return out


def upsert_sql(schema: str, name: str) -> str:
    t = f"{quote_ident(schema)}.{quote_ident(name)}"
    cols = ", ".join(WRITE_COLUMNS)
    values = ", ".join("%s" for _ in WRITE_COLUMNS)  # rows are tuples in WRITE_COLUMNS order
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in WRITE_COLUMNS if c != "id")
    return f"INSERT INTO {t} ({cols}) VALUES ({values}) ON CONFLICT (id) DO UPDATE SET {sets}"


def live_sql(now_param: str = "now") -> str:
    """Unexpired rows (``expires_at`` is exclusive: a document is invisible from that instant on)."""
    return f"(expires_at IS NULL OR expires_at > %({now_param})s)"


# ------------------------------------------------------------------ filter compiler


class _Params:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str = "") -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"%({name})s{cast}"


def _scalar(c: Cond, v: Any) -> Any:
    if isinstance(v, str):
        return check_text(f"filter on {c.key!r}", v)
    if isinstance(v, bool) or (isinstance(v, int | float) and (isinstance(v, int) or math.isfinite(v))):
        return v
    raise InvalidInputError(f"filter on {c.key!r}: value must be a string, finite number or boolean, got {v!r}")


def _eq(c: Cond, v: Any, p: _Params) -> str:
    v = _scalar(c, v)
    scalar = p.add(exact_json({c.key: v}), "::jsonb")
    in_list = p.add(exact_json({c.key: [v]}), "::jsonb")
    return f"(metadata @> {scalar} OR metadata @> {in_list})"


def _any(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _cond(c: Cond, p: _Params) -> str:
    check_text("metadata key in filter", c.key)
    op = c.op
    if op == "exists":
        return f"(coalesce(jsonb_typeof(metadata -> {p.add(c.key, '::text')}), 'null') <> 'null')"
    if op in ("eq", "ne"):
        sql = _eq(c, c.value, p)
        return sql if op == "eq" else f"(NOT {sql})"
    if op in ("in", "nin"):
        values = list(c.value) if isinstance(c.value, list | tuple) else None
        if not values:
            raise InvalidInputError(f"filter on {c.key!r}: $in/$nin need a non-empty list of values")
        sql = _any([_eq(c, v, p) for v in values])
        return sql if op == "in" else f"(NOT {sql})"
    if op == "contains":
        v = _scalar(c, c.value)
        in_list = f"metadata @> {p.add(exact_json({c.key: [v]}), '::jsonb')}"
        if not isinstance(v, str):
            return f"({in_list})"
        k = p.add(c.key, "::text")
        return (f"((CASE WHEN jsonb_typeof(metadata -> {k}) = 'string' "
                f"THEN strpos(metadata ->> {k}, {p.add(v, '::text')}) > 0 ELSE FALSE END) OR {in_list})")
    ops = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    if op in ops:
        v = c.value
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidInputError(f"filter on {c.key!r}: range comparisons need a finite number, got {v!r}")
        k = p.add(c.key, "::text")
        return (f"(CASE WHEN jsonb_typeof(metadata -> {k}) = 'number' THEN (metadata -> {k})::numeric "
                f"{ops[op]} {p.add(exact_number(v, keep_float=False), '::numeric')} ELSE FALSE END)")
    raise InvalidInputError(f"unknown filter operator {op!r}")


def _compile(f: Filter, p: _Params) -> str:
    if isinstance(f, Cond):
        return _cond(f, p)
    if isinstance(f, And | Or):
        absorbing, neutral = (FALSE, TRUE) if isinstance(f, And) else (TRUE, FALSE)
        parts = [_compile(x, p) for x in f.filters]
        if absorbing in parts:
            return absorbing
        parts = [x for x in parts if x != neutral]
        if not parts:
            return neutral
        joiner = " AND " if isinstance(f, And) else " OR "
        return parts[0] if len(parts) == 1 else "(" + joiner.join(parts) + ")"
    if isinstance(f, Not):
        inner = _compile(f.filter, p)
        return {TRUE: FALSE, FALSE: TRUE}.get(inner, f"(NOT {inner})")
    if isinstance(f, TagsMatch):
        if not f.tags:
            return TRUE if f.mode == "all" else FALSE
        tags = p.add([check_text("tag in filter", t) for t in f.tags], "::text[]")
        return f"(tags && {tags})" if f.mode == "any" else f"(tags @> {tags})"
    if isinstance(f, ScopeIs):
        parts = [f"({col} IS NOT NULL AND {col} = {p.add(check_text('scope in filter', v), '::text')})"
                 for col, v in (("tenant", f.tenant), ("scope_user", f.user), ("scope_session", f.session))
                 if v is not None]
        if not parts:
            return TRUE
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
    raise InvalidInputError(f"unknown filter node {type(f).__name__}")


def compile_filter(f: Filter | None, prefix: str = "f") -> tuple[str, dict[str, Any]]:
    """SQL boolean expression (never NULL) for ``f`` and its parameters (named ``<prefix><n>``)."""
    if f is None:
        return TRUE, {}
    p = _Params(prefix)
    return _compile(f, p), p.values
