"""Typed configuration: the YAML shapes of the guides, validated by pydantic.

::

    from aixpy.config import find_config, load_config

    path = find_config(None)          # explicit arg > $AIXPY_CONFIG > ./aixpy.yaml > None
    cfg = load_config(path) if path else AixpyConfig()

Every error is an :class:`aixpy.errors.ConfigError` naming the file, the key path and the line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aixpy._lazy import attach

if TYPE_CHECKING:
    from aixpy.config._base import format_duration, parse_duration
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
        LedgerConfig,
        LLMObservabilityConfig,
        MCPServerConfig,
        MetricsConfig,
        ModelServiceConfig,
        ModelServiceOptions,
        ObservabilityConfig,
        OTelConfig,
        ProviderEntry,
        RetrievalConfig,
        RetryConfig,
        ToolConfig,
        infer_provider,
    )
    from aixpy.config.loader import find_config, load_config, load_config_str, parse_config
    from aixpy.config.models import AixpyConfig
    from aixpy.config.serve import ServeConfig, ServeKeyConfig
    from aixpy.config.sessions import SessionsConfig
    from aixpy.config.stores import (
        FirestoreStoreConfig,
        MemoryStoreConfig,
        PgvectorStoreConfig,
        QdrantStoreConfig,
        VectorStoreConfig,
    )

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
    "LedgerConfig",
    "LocalEmbeddingsConfig",
    "MCPServerConfig",
    "MemoryStoreConfig",
    "MetricsConfig",
    "ModelServiceConfig",
    "ModelServiceOptions",
    "OTelConfig",
    "ObservabilityConfig",
    "OllamaEmbeddingsConfig",
    "OpenAIEmbeddingsConfig",
    "PgvectorStoreConfig",
    "ProviderEntry",
    "QdrantStoreConfig",
    "RetrievalConfig",
    "RetryConfig",
    "ServeConfig",
    "ServeKeyConfig",
    "SessionsConfig",
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


# Each piece is imported on first use: the pydantic models cost ~0.2 s to build, the LLM ones even more.
__getattr__, __dir__ = attach(__name__, attributes={
    "._base": ("format_duration", "parse_duration"),
    ".embeddings": ("EmbeddingsCacheConfig", "EmbeddingsConfig", "EmbeddingsRateLimitConfig", "EmbeddingsRetryConfig",
                    "HashEmbeddingsConfig", "HuggingFaceEmbeddingsConfig", "LocalEmbeddingsConfig",
                    "OllamaEmbeddingsConfig", "OpenAIEmbeddingsConfig", "TEIEmbeddingsConfig"),
    ".llm": ("AgentConfig", "AgentInput", "AgentOutput", "LLMObservabilityConfig", "LedgerConfig", "MCPServerConfig",
             "MetricsConfig", "ModelServiceConfig", "ModelServiceOptions", "OTelConfig", "ObservabilityConfig",
             "ProviderEntry", "RetrievalConfig", "RetryConfig", "ToolConfig", "infer_provider"),
    ".loader": ("find_config", "load_config", "load_config_str", "parse_config"),
    ".models": ("AixpyConfig",),
    ".serve": ("ServeConfig", "ServeKeyConfig"),
    ".sessions": ("SessionsConfig",),
    ".stores": ("FirestoreStoreConfig", "MemoryStoreConfig", "PgvectorStoreConfig", "QdrantStoreConfig",
                "VectorStoreConfig"),
})
