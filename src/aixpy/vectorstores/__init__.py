"""Vector stores: one ``Collection`` protocol over memory, Qdrant, pgvector and Firestore.

>>> from aixpy import vectorstores
>>> store = vectorstores.new({"provider": "memory", "embedding_dimensions": 384})  # doctest: +SKIP
>>> docs = store.collection("documents")                                           # doctest: +SKIP

Backends register a factory ``(VectorStoreConfig) -> VectorStore`` with :func:`register`;
built-ins are imported only when used; plugins use the ``aixpy.vectorstores`` entry-point group.
:class:`InstrumentedStore` / :class:`InstrumentedCollection` emit :mod:`aixpy.telemetry` events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aixpy import _model_names
from aixpy._registry import Registry
from aixpy.config._base import validate_block
from aixpy.config.stores import VectorStoreConfig
from aixpy.vectorstores import filters
from aixpy.vectorstores.base import BaseCollection, Collection, CollectionOptions, VectorStore
from aixpy.vectorstores.instrumented import InstrumentedCollection, InstrumentedStore
from aixpy.vectorstores.types import (
    DeleteResult,
    Document,
    DocumentError,
    Match,
    Metric,
    Query,
    QueryResult,
    Scope,
    UpsertResult,
)

__all__ = [
    "BaseCollection",
    "Collection",
    "CollectionOptions",
    "DeleteResult",
    "Document",
    "DocumentError",
    "InstrumentedCollection",
    "InstrumentedStore",
    "Match",
    "Metric",
    "Query",
    "QueryResult",
    "Scope",
    "UpsertResult",
    "VectorStore",
    "filters",
    "new",
    "providers",
    "register",
]

Factory = Callable[[VectorStoreConfig], VectorStore]

_REGISTRY: Registry[Factory] = _model_names.VECTORSTORES  # one table: the config loader reads it too


def register(name: str, factory: Factory | str) -> None:
    """Register a backend under ``name``: a factory, or a lazy ``"module:function"`` path."""
    _REGISTRY.register(name, factory)


def providers() -> list[str]:
    """Names of every registered backend (built-in and plugins)."""
    return _REGISTRY.names()


def new(config: VectorStoreConfig | Mapping[str, Any] | None = None) -> VectorStore:
    """Open the vector store the config describes (default: in-memory)."""
    if config is None:
        config = VectorStoreConfig()
    elif not isinstance(config, VectorStoreConfig):
        config = validate_block(VectorStoreConfig, config, "vectorstore")
    return _REGISTRY.resolve(config.provider)(config)
