"""pgvector keyword search: tables made before keyword search are migrated on open."""

from __future__ import annotations

import uuid

import pytest

from aixpy.vectorstores import CollectionOptions, Document, Query
from aixpy.vectorstores.pgvector import PgvectorStore

from .backends.pgvector import drop_schema


def test_table_without_keyword_columns_is_migrated_on_open(request: pytest.FixtureRequest) -> None:
    import psycopg

    dsn = str(request.getfixturevalue("postgres_dsn"))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: drop_schema(dsn, schema))
    with PgvectorStore(dsn, schema=schema) as store:
        c = store.collection("old", CollectionOptions(dimensions=2))
        c.upsert_batch([Document("a", "Router fault XK-4471", [1.0, 0.0]), Document("b", "bread", [0.0, 1.0])])
    with psycopg.connect(dsn, autocommit=True) as conn:  # what a table of an older aixpy looks like
        conn.execute(f'ALTER TABLE "{schema}"."old" DROP COLUMN content_tsv, DROP COLUMN content_terms')
    with PgvectorStore(dsn, schema=schema) as store:
        c = store.collection("old")
        assert [m.document.id for m in c.query(Query(text="xk-4471", mode="keyword"))] == ["a"]
        c.upsert(Document("c", "another XK-4471 report, longer than the first one", [1.0, 1.0]))
        assert [m.document.id for m in c.query(Query(text="xk-4471", mode="keyword"))] == ["a", "c"]
