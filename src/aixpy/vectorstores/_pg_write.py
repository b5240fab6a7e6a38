"""The write path of the ``pgvector`` backend: row encoding and decoding, duplicate detection, bulk
loading and the DDL plans of a collection's table.

Everything here runs inside the caller's transaction, after it locked the collection's catalog row
(``SELECT ... FOR UPDATE``): writers of one collection are serialized across connections and
processes, so ``max_documents`` and dedup decisions can never race.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.errors import InvalidInputError
from aixpy.vectorstores import _pg_sql as q
from aixpy.vectorstores._dedup import EPS, BatchDedup, content_sha256, new_hashes, unit_rows
from aixpy.vectorstores.base import CollectionOptions, PreparedDoc
from aixpy.vectorstores.keyword import tokenize
from aixpy.vectorstores.types import Document, Scope, UpsertResult

__all__ = ["BULK_MIN", "CATALOG_COLS", "COPY_TYPES", "copy_stmt", "create_table", "decode_doc", "decode_vector",
           "drop_indexes", "encode_row", "ensure_indexes", "options_from", "options_row", "relation_exists",
           "write_batch"]

#: An upsert of at least this many documents into an empty table is loaded with COPY, indexes after.
BULK_MIN = 500
COPY_TYPES = ["text", "text", "text", "vector", "text", "jsonb", "text[]", "text", "text", "text",
              "timestamptz", "timestamptz", "timestamptz", "text[]"]


def _identity(s: Any) -> str:
    return str(s)


def encode_row(p: PreparedDoc, jsonb: Any) -> tuple[Any, ...]:
    """The row of ``WRITE_COLUMNS`` for ``p`` (raises :class:`InvalidInputError` for text that
    PostgreSQL cannot store). ``jsonb`` is psycopg's ``Jsonb`` wrapper class."""
    d = p.doc
    what = f"document {d.id!r}"
    q.check_text(f"{what} content", d.content)
    for name, v in (("embedding_model", d.embedding_model), ("tenant", d.scope.tenant),
                    ("user", d.scope.user), ("session", d.scope.session)):
        if v is not None:
            q.check_text(f"{what} {name}", v)
    try:
        meta = q.exact_json(d.metadata)
    except InvalidInputError as e:
        raise InvalidInputError(f"{what}: {e}") from None
    sha = content_sha256(d.content) if d.content else None
    return (d.id, d.content, sha, p.vector, d.embedding_model, jsonb(meta, dumps=_identity), list(d.tags),
            d.scope.tenant, d.scope.user, d.scope.session, d.created_at, d.updated_at, d.expires_at,
            tokenize(d.content))


class _Dedup(BatchDedup):
    """:class:`~aixpy.vectorstores._dedup.BatchDedup` against the table (keys are document ids).
    Build it with :meth:`load` (a plan: it reads the stored candidates)."""

    def __init__(self, threshold: float, unit: npt.NDArray[np.float32], new: list[int]) -> None:
        super().__init__(threshold, unit, new)
        self.hits: dict[int, list[str]] = {}

    @classmethod
    def load(cls, table: str, threshold: float, unit: npt.NDArray[np.float32], new: list[int],
             docs: list[PreparedDoc], n_updates: int) -> q.Plan[_Dedup]:
        self = cls(threshold, unit, new)
        shas = new_hashes(docs, new)
        if shas:
            rows = yield q.fetch_all(f"SELECT content_sha256, id FROM {table} "
                                     "WHERE content_sha256 = ANY(%(s)s::text[])", {"s": shas})
            for sha, doc_id in rows:
                self.stored_sha.setdefault(sha, set()).add(doc_id)
        probe = [i for i in new if np.any(unit[i])]
        if probe:
            # Exact scan (no index): up to n_updates + 1 stored near-duplicates per new document. If
            # the limit is reached, at least one of them is not replaced by this call.
            rows = yield q.fetch_all(
                f"SELECT b.i, ARRAY(SELECT t.id FROM {table} t WHERE (t.embedding <=> b.v) <= %(d)s LIMIT %(k)s) "
                "FROM unnest(%(v)s::vector[], %(i)s::int[]) AS b(v, i)",
                {"d": 1.0 - threshold + EPS, "k": n_updates + 1, "v": [docs[i].vector for i in probe],
                 "i": probe})
            self.hits = {int(i): list(found) for i, found in rows}
        return self

    def near_stored(self, i: int) -> bool:
        return any(p not in self.replaced for p in self.hits.get(i, ()))


def write_batch(table: str, options: CollectionOptions, docs: list[PreparedDoc], existing: dict[str, datetime],
                live: int, jsonb: Any) -> q.Plan[tuple[UpsertResult, list[tuple[Any, ...]]]]:
    """Decide, in order, what happens to each document; return the result and the rows to write
    (a plan: dedup reads the stored candidates).

    ``existing`` maps the ids of live stored documents to their ``created_at``; ``live`` is the
    number of live stored documents.
    """
    result = UpsertResult()
    dedup: _Dedup | None = None
    if options.dedup:
        new = [i for i, p in enumerate(docs) if p.doc.id not in existing]
        if new:
            unit = unit_rows([p.vector for p in docs])[0].astype(np.float32)
            dedup = yield from _Dedup.load(table, options.dedup_threshold, unit, new, docs, len(docs) - len(new))
    rows: list[tuple[Any, ...]] = []
    limit = options.max_documents
    for i, p in enumerate(docs):
        d = p.doc
        old = existing.get(d.id)
        if old is not None:
            d.created_at = old
        try:
            row = encode_row(p, jsonb)
        except InvalidInputError as e:
            result.add_failure(d.id, e)
            continue
        if old is not None:
            result.add_updated(d.id)
        elif dedup is not None and dedup.is_duplicate(i, d.content):
            result.add_deduplicated(d.id)
            continue
        elif limit is not None and live + result.inserted >= limit:
            result.add_over_limit(d.id, limit)
            continue
        else:
            result.add_inserted(d.id)
        if dedup is not None:
            dedup.written(i, d.id, d.content, updated=old is not None)
        rows.append(row)
    return result, rows


def copy_stmt(table: str, rows: Sequence[tuple[Any, ...]]) -> q.Stmt:
    """Load ``rows`` with binary COPY (vectors in pgvector's binary format)."""
    cols = ", ".join(q.WRITE_COLUMNS)
    return q.Stmt(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)", {}, many=rows, copy_types=COPY_TYPES)


# ------------------------------------------------------------------ catalog rows and decoding


def options_row(o: CollectionOptions) -> dict[str, Any]:
    return {"dimensions": o.dimensions, "metric": o.metric, "dedup": o.dedup, "dedup_threshold": o.dedup_threshold,
            "ttl": o.ttl, "max_documents": o.max_documents}


CATALOG_COLS = "dimensions, metric, dedup, dedup_threshold, ttl, max_documents"


def options_from(row: Any) -> CollectionOptions:
    dims, metric, dedup, thr, ttl, max_docs = row
    return CollectionOptions(dimensions=dims, metric=metric, dedup=dedup, dedup_threshold=thr, ttl=ttl,
                             max_documents=max_docs)


def _utc(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC)


def decode_doc(row: Any, embedding: list[float] | None) -> Document:
    """The document of a row that starts with ``DOC_COLUMNS``."""
    doc_id, content, model, meta, tags, tenant, user, session, created, updated, expires = row[:11]
    return Document(id=doc_id, content=content, embedding=embedding, embedding_model=model, metadata=meta or {},
                    tags=list(tags), scope=Scope(tenant, user, session), created_at=_utc(created),
                    updated_at=_utc(updated), expires_at=_utc(expires))


def decode_vector(v: Any) -> list[float]:
    out: list[float] = np.asarray(v.to_numpy(), dtype=np.float32).tolist()
    return out


# ------------------------------------------------------------------ DDL plans


def relation_exists(schema: str, name: str) -> q.Plan[bool]:
    row = yield q.fetch_one("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE n.nspname = %(s)s AND c.relname = %(r)s", {"s": schema, "r": name})
    return row is not None


def create_table(schema: str, name: str, dims: int) -> q.Plan[None]:
    """The collection's table, created if missing; a table made before keyword search gets its
    keyword columns, filled from each row's content (one pass, inside the caller's transaction)."""
    if not (yield from relation_exists(schema, name)):
        yield q.execute(q.table_ddl(schema, name, dims))
        return
    t = f"{q.quote_ident(schema)}.{q.quote_ident(name)}"
    has = yield q.fetch_one("SELECT 1 FROM pg_attribute WHERE attrelid = %(t)s::regclass AND attname = 'content_terms' "
                            "AND NOT attisdropped", {"t": t.replace("%%", "%")})
    if has is None:
        columns = q.TERMS_DDL.replace(", content_tsv", ", ADD COLUMN content_tsv")
        yield q.execute(f"ALTER TABLE {t} ADD COLUMN {columns}")
        rows = yield q.fetch_all(f"SELECT id, content FROM {t} WHERE content <> ''")
        if rows:
            yield q.Stmt(f"UPDATE {t} SET content_terms = %s WHERE id = %s", many=[(tokenize(c), i) for i, c in rows])


def drop_indexes(schema: str, name: str) -> q.Plan[None]:
    for kind, index in q.index_names(name).items():
        if kind != "pkey":
            yield q.execute(f"DROP INDEX IF EXISTS {q.quote_ident(schema)}.{q.quote_ident(index)}")


def ensure_indexes(schema: str, name: str, options: CollectionOptions, m: int, ef_construction: int) -> q.Plan[None]:
    assert options.dimensions is not None
    ddl = q.index_ddl(schema, name, options.metric, options.dimensions, m, ef_construction, dedup=options.dedup)
    rows = yield q.fetch_all("SELECT indexname FROM pg_indexes WHERE schemaname = %(s)s AND "
                             "indexname = ANY(%(i)s::text[])", {"s": schema, "i": list(ddl)})
    have = {r[0] for r in rows}
    missing = [sql for index, sql in ddl.items() if index not in have]
    if missing:
        yield q.execute("SELECT set_config('maintenance_work_mem', '256MB', true)")
        for sql in missing:
            yield q.execute(sql)
