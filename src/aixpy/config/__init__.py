"""Typed configuration: the YAML shapes of the guides, validated by pydantic."""

from __future__ import annotations

from aixpy.config.stores import EmbeddingsConfig, VectorStoreConfig

__all__ = ["EmbeddingsConfig", "VectorStoreConfig"]
