"""Config models for ``vectorstore:``, in the guides' shapes (``embeddings:`` lives in ``embeddings.py``).

Every model forbids unknown keys, so a typo is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from aixpy.config._base import StrictModel
from aixpy.config.embeddings import (
    DEFAULT_LOCAL_MODEL,
    EmbeddingsConfig,
    HuggingFaceEmbeddingsConfig,
    LocalEmbeddingsConfig,
    OllamaEmbeddingsConfig,
    OpenAIEmbeddingsConfig,
    TEIEmbeddingsConfig,
)

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "EmbeddingsConfig",
    "FirestoreStoreConfig",
    "HuggingFaceEmbeddingsConfig",
    "LocalEmbeddingsConfig",
    "MemoryStoreConfig",
    "OllamaEmbeddingsConfig",
    "OpenAIEmbeddingsConfig",
    "PgvectorStoreConfig",
    "QdrantStoreConfig",
    "StrictModel",
    "TEIEmbeddingsConfig",
    "VectorStoreConfig",
]


# ------------------------------------------------------------------ vector stores


class MemoryStoreConfig(StrictModel):
    max_documents: int | None = Field(None, ge=1)
    path: str | None = Field(None, description="snapshot file: loaded on open, written by save()")
    index: Literal["exact", "hnsw", "auto"] = Field(
        "exact", description="exact: brute force; hnsw: approximate index; auto: hnsw above hnsw_threshold docs")
    hnsw_threshold: int = Field(20_000, ge=1, description="with index=auto, build HNSW above this many documents")
    hnsw_m: int = Field(16, ge=2, le=128)
    hnsw_ef_construction: int = Field(200, ge=4, le=4096)
    hnsw_ef_search: int = Field(128, ge=1, le=4096)


class QdrantStoreConfig(StrictModel):
    """Embedded (``path``) or server (``url`` or ``host``+``port``) Qdrant."""

    path: str | None = None
    url: str | None = None
    host: str | None = None
    port: int = Field(6333, ge=1, le=65535)
    api_key: SecretStr | None = None
    prefer_grpc: bool = False
    collection: str = "knowledge_base"
    hnsw_m: int = Field(16, ge=2, le=128)
    hnsw_ef_construct: int = Field(100, ge=4, le=4096)
    local: str | None = Field(
        None, description="qdrant-client local mode: ':memory:' or a directory (pure Python, exhaustive search)")
    https: bool | None = None
    grpc_port: int = Field(6334, ge=1, le=65535)
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_location(self) -> QdrantStoreConfig:
        given = [k for k in ("path", "url", "host", "local") if getattr(self, k)]
        if len(given) > 1 and not (set(given) == {"url", "host"}):
            raise ValueError("set exactly one of qdrant.path (embedded), qdrant.url / qdrant.host (server) "
                             "or qdrant.local (qdrant-client local mode)")
        return self


class PgvectorStoreConfig(StrictModel):
    """PostgreSQL + pgvector: one table per collection in ``schema``; ``table`` is the default collection."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True)

    connection_string: SecretStr
    table: str = "embeddings"
    schema_name: str = Field("public", alias="schema")
    pool_min_size: int = Field(1, ge=0, le=1000)
    pool_max_size: int = Field(10, ge=1, le=1000)
    connect_timeout: float = Field(10.0, gt=0)
    hnsw_m: int = Field(16, ge=2, le=100)
    hnsw_ef_construction: int = Field(64, ge=4, le=1000)
    hnsw_ef_search: int = Field(100, ge=1, le=1000)


class FirestoreStoreConfig(StrictModel):
    """Firestore vector search. Credentials: ``credentials_file``, else ADC; ``FIRESTORE_EMULATOR_HOST``
    (or ``emulator_host``) talks to the emulator instead."""

    project_id: str
    collection: str = "embeddings"
    credentials_file: str | None = None
    database: str = "(default)"
    emulator_host: str | None = None


class VectorStoreConfig(StrictModel):
    """``vectorstore:`` block."""

    provider: str = "memory"
    embedding_dimensions: int | None = Field(None, ge=1, le=65536)
    metric: Literal["cosine", "dot", "euclidean"] = "cosine"
    memory: MemoryStoreConfig | None = None
    qdrant: QdrantStoreConfig | None = None
    pgvector: PgvectorStoreConfig | None = None
    firestore: FirestoreStoreConfig | None = None

    @model_validator(mode="after")
    def _provider_block(self) -> VectorStoreConfig:
        if self.provider in ("pgvector", "firestore") and getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider!r} needs a {self.provider}: block")
        return self
