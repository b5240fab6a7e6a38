"""Typed configuration: the YAML shapes of the guides, validated by pydantic.

::

    from aixpy.config import find_config, load_config

    path = find_config(None)          # explicit arg > $AIXPY_CONFIG > ./aixpy.yaml > None
    cfg = load_config(path) if path else AixpyConfig()

Every error is an :class:`aixpy.errors.ConfigError` naming the file, the key path and the line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aixpy.config.embeddings import (
        EmbeddingsCacheConfig,
        EmbeddingsConfig,
        EmbeddingsRateLimitConfig,
        EmbeddingsRetryConfig,
        HashEmbeddingsConfig,
        HuggingFaceEmbeddingsConfig,
        LocalEmbeddingsConfig,
        OllamaEmbeddingsConfig,
        OpenAIEmbeddingsConfig,
        TEIEmbeddingsConfig,
    )
    from aixpy.config.llm import (
        AgentConfig,
        AgentInput,
        AgentOutput,
        LLMObservabilityConfig,
        MetricsConfig,
        ModelServiceConfig,
        ModelServiceOptions,
        ObservabilityConfig,
        ProviderEntry,
        RetryConfig,
        ToolConfig,
        format_duration,
        infer_provider,
        parse_duration,
    )
    from aixpy.config.loader import find_config, load_config, load_config_str, parse_config
    from aixpy.config.models import AixpyConfig
    from aixpy.config.stores import (
        FirestoreStoreConfig,
        MemoryStoreConfig,
        PgvectorStoreConfig,
        QdrantStoreConfig,
        VectorStoreConfig,
    )

_LAZY: dict[str, str] = {
    "AgentConfig": "aixpy.config.llm",
    "AgentInput": "aixpy.config.llm",
    "AgentOutput": "aixpy.config.llm",
    "AixpyConfig": "aixpy.config.models",
    "EmbeddingsCacheConfig": "aixpy.config.embeddings",
    "EmbeddingsConfig": "aixpy.config.embeddings",
    "EmbeddingsRateLimitConfig": "aixpy.config.embeddings",
    "EmbeddingsRetryConfig": "aixpy.config.embeddings",
    "FirestoreStoreConfig": "aixpy.config.stores",
    "HashEmbeddingsConfig": "aixpy.config.embeddings",
    "HuggingFaceEmbeddingsConfig": "aixpy.config.embeddings",
    "LLMObservabilityConfig": "aixpy.config.llm",
    "LocalEmbeddingsConfig": "aixpy.config.embeddings",
    "MemoryStoreConfig": "aixpy.config.stores",
    "MetricsConfig": "aixpy.config.llm",
    "ModelServiceConfig": "aixpy.config.llm",
    "ModelServiceOptions": "aixpy.config.llm",
    "ObservabilityConfig": "aixpy.config.llm",
    "OllamaEmbeddingsConfig": "aixpy.config.embeddings",
    "OpenAIEmbeddingsConfig": "aixpy.config.embeddings",
    "PgvectorStoreConfig": "aixpy.config.stores",
    "ProviderEntry": "aixpy.config.llm",
    "QdrantStoreConfig": "aixpy.config.stores",
    "RetryConfig": "aixpy.config.llm",
    "TEIEmbeddingsConfig": "aixpy.config.embeddings",
    "ToolConfig": "aixpy.config.llm",
    "VectorStoreConfig": "aixpy.config.stores",
    "find_config": "aixpy.config.loader",
    "format_duration": "aixpy.config.llm",
    "infer_provider": "aixpy.config.llm",
    "load_config": "aixpy.config.loader",
    "load_config_str": "aixpy.config.loader",
    "parse_config": "aixpy.config.loader",
    "parse_duration": "aixpy.config.llm",
}

__all__ = [
    "AgentConfig",
    "AgentInput",
    "AgentOutput",
    "AixpyConfig",
    "EmbeddingsCacheConfig",
    "EmbeddingsConfig",
    "EmbeddingsRateLimitConfig",
    "EmbeddingsRetryConfig",
    "FirestoreStoreConfig",
    "HashEmbeddingsConfig",
    "HuggingFaceEmbeddingsConfig",
    "LLMObservabilityConfig",
    "LocalEmbeddingsConfig",
    "MemoryStoreConfig",
    "MetricsConfig",
    "ModelServiceConfig",
    "ModelServiceOptions",
    "ObservabilityConfig",
    "OllamaEmbeddingsConfig",
    "OpenAIEmbeddingsConfig",
    "PgvectorStoreConfig",
    "ProviderEntry",
    "QdrantStoreConfig",
    "RetryConfig",
    "TEIEmbeddingsConfig",
    "ToolConfig",
    "VectorStoreConfig",
    "find_config",
    "format_duration",
    "infer_provider",
    "load_config",
    "load_config_str",
    "parse_config",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    """Import each piece on first use: the pydantic models cost ~0.2 s to build, the LLM ones even more."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aixpy.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
