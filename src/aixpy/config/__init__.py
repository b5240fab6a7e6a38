"""Typed configuration: the YAML shapes of the guides, validated by pydantic.

::

    from aixpy.config import find_config, load_config

    path = find_config(None)          # explicit arg > $AIXPY_CONFIG > ./aixpy.yaml > None
    cfg = load_config(path) if path else AixpyConfig()

Every error is an :class:`aixpy.errors.ConfigError` naming the file, the key path and the line.
"""

from __future__ import annotations

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
    EmbeddingsConfig,
    FirestoreStoreConfig,
    HuggingFaceEmbeddingsConfig,
    LocalEmbeddingsConfig,
    MemoryStoreConfig,
    OpenAIEmbeddingsConfig,
    PgvectorStoreConfig,
    QdrantStoreConfig,
    TEIEmbeddingsConfig,
    VectorStoreConfig,
)

__all__ = [
    "AgentConfig",
    "AgentInput",
    "AgentOutput",
    "AixpyConfig",
    "EmbeddingsConfig",
    "FirestoreStoreConfig",
    "HuggingFaceEmbeddingsConfig",
    "LLMObservabilityConfig",
    "LocalEmbeddingsConfig",
    "MemoryStoreConfig",
    "MetricsConfig",
    "ModelServiceConfig",
    "ModelServiceOptions",
    "ObservabilityConfig",
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
