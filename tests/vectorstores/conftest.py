"""Every backend in BACKENDS runs the whole conformance suite through the public API only.

Each backend has a module in ``tests/vectorstores/backends/`` with ``open_store(request, tmp_path)``
returning a fresh, empty :class:`VectorStore` (and ``EXACT``: whether its search is exact). Backends
that need a server get it from a session fixture in ``tests/_services`` (started once, fails loudly).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aixpy.vectorstores import BaseCollection, CollectionOptions, VectorStore

BACKENDS = ["memory", "memory_hnsw", "qdrant", "qdrant_client", "pgvector", "firestore"]


def backend_module(backend: str) -> Any:
    return importlib.import_module(f"tests.vectorstores.backends.{backend}")


def open_store(backend: str, root: Path, request: pytest.FixtureRequest | None = None) -> VectorStore:
    store: VectorStore = backend_module(backend).open_store(request, root)
    return store


MakeCollection = Callable[..., BaseCollection]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[VectorStore]:
    s = open_store(backend, tmp_path, request)
    yield s
    s.close()


@pytest.fixture
def make_collection(store: VectorStore) -> MakeCollection:
    """``make_collection(name="docs", dimensions=4, metric="cosine", ...)`` -> a fresh collection."""
    counter = iter(range(1_000_000))

    def make(name: str | None = None, **options: Any) -> BaseCollection:
        return store.collection(name or f"c{next(counter)}", CollectionOptions(**options))

    return make
