"""Embedding services: one interface over local and remote providers.

>>> from aixpy import embeddings
>>> svc = embeddings.new({"provider": "local"})          # doctest: +SKIP
>>> svc.embed("machine learning")[:3]                      # doctest: +SKIP

Providers register a factory ``(EmbeddingsConfig) -> EmbeddingService`` with :func:`register`.
Built-ins are registered by import path and imported only when used; third-party packages can
register through the ``aixpy.embeddings`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aixpy import _model_names
from aixpy._registry import Registry
from aixpy.config._base import validate_block
from aixpy.config.embeddings import EmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService, check_texts
from aixpy.embeddings.models import KNOWN_DIMENSIONS, dimensions_for

__all__ = [
    "KNOWN_DIMENSIONS",
    "EmbeddingService",
    "Factory",
    "check_texts",
    "dimensions_for",
    "new",
    "providers",
    "register",
]

Factory = Callable[[EmbeddingsConfig], EmbeddingService]

_REGISTRY: Registry[Factory] = _model_names.EMBEDDINGS  # one table: the config loader reads it too


def register(name: str, factory: Factory | str) -> None:
    """Register a provider under ``name``: a factory, or a lazy ``"module:function"`` path."""
    _REGISTRY.register(name, factory)


def providers() -> list[str]:
    """Names of every registered provider (built-in and plugins)."""
    return _REGISTRY.names()


def new(config: EmbeddingsConfig | Mapping[str, Any] | None = None) -> EmbeddingService:
    """Build the embedding service the config describes (default: the offline ``local`` model)."""
    if config is None:
        config = EmbeddingsConfig()
    elif not isinstance(config, EmbeddingsConfig):
        config = validate_block(EmbeddingsConfig, config, "embeddings")
    service = _REGISTRY.resolve(config.provider)(config)
    from aixpy.embeddings.policies import compose  # lazy: the policy modules load only when new() is called

    return compose(config, service)
