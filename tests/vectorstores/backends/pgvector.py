"""PostgreSQL 18 + pgvector 0.8 (real server from the ``postgres_dsn`` session fixture).

Each store gets its own schema, dropped when the test ends, so every test starts empty.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import VectorStore

EXACT = False  # HNSW


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def open_store(request: pytest.FixtureRequest | None, root: Path) -> VectorStore:
    assert request is not None, "the pgvector backend needs the pytest request (for the postgres_dsn fixture)"
    dsn = str(request.getfixturevalue("postgres_dsn"))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    request.addfinalizer(lambda: drop_schema(dsn, schema))
    return vectorstores.new({"provider": "pgvector",
                             "pgvector": {"connection_string": dsn, "schema": schema, "pool_max_size": 4}})
