"""Embedding services: one interface over local and remote providers.

>>> from aixpy import embeddings
>>> svc = embeddings.new({"provider": "local"})          # doctest: +SKIP
>>> svc.embed("machine learning")[:3]                      # doctest: +SKIP

Providers register a factory ``(EmbeddingsConfig) -> EmbeddingService`` with :func:`register`.
Built-ins are registered by import path and imported only when used; third-party packages can
register through the ``aixpy.embeddings`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from aixpy.config.embeddings import EmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService, check_texts
from aixpy.embeddings.models import KNOWN_DIMENSIONS, dimensions_for
from aixpy.errors import ConfigError, UnknownProviderError

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

_BUILTIN: dict[str, str] = {
    "local": "aixpy.embeddings.local:create",
    "hash": "aixpy.embeddings.hashing:create",
    "openai": "aixpy.embeddings.openai:create",
    "huggingface": "aixpy.embeddings.huggingface:create",
    "huggingface_tei": "aixpy.embeddings.tei:create",
    "ollama": "aixpy.embeddings.ollama:create",
}
_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory | str) -> None:
    """Register a provider under ``name``: a factory, or a lazy ``"module:function"`` path."""
    if isinstance(factory, str):
        _BUILTIN[name] = factory
        _REGISTRY.pop(name, None)
    else:
        _REGISTRY[name] = factory


def _load_entry_points() -> None:
    for ep in entry_points(group="aixpy.embeddings"):
        if ep.name not in _REGISTRY and ep.name not in _BUILTIN:
            _BUILTIN[ep.name] = ep.value


def providers() -> list[str]:
    """Names of every registered provider (built-in and plugins)."""
    _load_entry_points()
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def _resolve(name: str) -> Factory:
    if name in _REGISTRY:
        return _REGISTRY[name]
    _load_entry_points()
    path = _BUILTIN.get(name)
    if path is None:
        raise UnknownProviderError("embeddings", name, providers())
    module, _, attr = path.partition(":")
    factory: Factory = getattr(importlib.import_module(module), attr)
    _REGISTRY[name] = factory
    return factory


def new(config: EmbeddingsConfig | Mapping[str, Any] | None = None) -> EmbeddingService:
    """Build the embedding service the config describes (default: the offline ``local`` model)."""
    if config is None:
        config = EmbeddingsConfig()
    elif not isinstance(config, EmbeddingsConfig):
        config = _validate(config)
    service = _resolve(config.provider)(config)
    from aixpy.embeddings.policies import compose  # lazy: the policy modules load only when new() is called

    return compose(config, service)


def _validate(data: Mapping[str, Any]) -> EmbeddingsConfig:
    from pydantic import ValidationError

    from aixpy.config._base import validation_message

    try:
        return EmbeddingsConfig.model_validate(dict(data))
    except ValidationError as e:
        message = validation_message(e)
    # raised outside ``except``: the ValidationError quotes input values (secrets) and must not be chained
    raise ConfigError(message, path="embeddings")
