"""Every backend in BACKENDS runs the whole conformance suite through the public API only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import BaseCollection, CollectionOptions, VectorStore

BACKENDS = ["memory", "qdrant"]


def open_store(backend: str, root: Path) -> VectorStore:
    if backend == "memory":
        return vectorstores.new({"provider": "memory"})
    if backend == "qdrant":
        return vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(root / "qdrant")}})
    raise AssertionError(backend)


MakeCollection = Callable[..., BaseCollection]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[VectorStore]:
    s = open_store(backend, tmp_path)
    yield s
    s.close()


@pytest.fixture
def make_collection(store: VectorStore) -> MakeCollection:
    """``make_collection(name="docs", dimensions=4, metric="cosine", ...)`` -> a fresh collection."""
    counter = iter(range(1_000_000))

    def make(name: str | None = None, **options: Any) -> BaseCollection:
        return store.collection(name or f"c{next(counter)}", CollectionOptions(**options))

    return make
