"""Vector stores: one ``Collection`` protocol over memory, Qdrant, pgvector and Firestore.

>>> from aixpy import vectorstores
>>> store = vectorstores.new({"provider": "memory", "embedding_dimensions": 384})  # doctest: +SKIP
>>> docs = store.collection("documents")                                           # doctest: +SKIP

Backends register a factory ``(VectorStoreConfig) -> VectorStore`` with :func:`register`;
built-ins are imported only when used; plugins use the ``aixpy.vectorstores`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from aixpy.config.stores import VectorStoreConfig
from aixpy.errors import ConfigError, UnknownProviderError
from aixpy.vectorstores import filters
from aixpy.vectorstores.base import BaseCollection, Collection, CollectionOptions, VectorStore
from aixpy.vectorstores.types import (
    DeleteResult,
    Document,
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

_BUILTIN: dict[str, str] = {
    "memory": "aixpy.vectorstores.memory:create",
    "qdrant": "aixpy.vectorstores.qdrant:create",
    "pgvector": "aixpy.vectorstores.pgvector:create",
    "firestore": "aixpy.vectorstores.firestore:create",
}
_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory | str) -> None:
    """Register a backend under ``name``: a factory, or a lazy ``"module:function"`` path."""
    if isinstance(factory, str):
        _BUILTIN[name] = factory
        _REGISTRY.pop(name, None)
    else:
        _REGISTRY[name] = factory


def _load_entry_points() -> None:
    for ep in entry_points(group="aixpy.vectorstores"):
        if ep.name not in _REGISTRY and ep.name not in _BUILTIN:
            _BUILTIN[ep.name] = ep.value


def providers() -> list[str]:
    _load_entry_points()
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def _resolve(name: str) -> Factory:
    if name in _REGISTRY:
        return _REGISTRY[name]
    _load_entry_points()
    path = _BUILTIN.get(name)
    if path is None:
        raise UnknownProviderError("vector store", name, providers())
    module, _, attr = path.partition(":")
    factory: Factory = getattr(importlib.import_module(module), attr)
    _REGISTRY[name] = factory
    return factory


def new(config: VectorStoreConfig | Mapping[str, Any] | None = None) -> VectorStore:
    """Open the vector store the config describes (default: in-memory)."""
    if config is None:
        config = VectorStoreConfig()
    elif not isinstance(config, VectorStoreConfig):
        config = _validate(config)
    return _resolve(config.provider)(config)


def _validate(data: Mapping[str, Any]) -> VectorStoreConfig:
    from pydantic import ValidationError

    from aixpy.config._base import validation_message

    try:
        return VectorStoreConfig.model_validate(dict(data))
    except ValidationError as e:
        message = validation_message(e)
    # raised outside ``except``: the ValidationError quotes input values (secrets) and must not be chained
    raise ConfigError(message, path="vectorstore")
