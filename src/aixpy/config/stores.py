"""Config models for ``vectorstore:``, in the guides' shapes (``embeddings:`` lives in ``embeddings.py``).

Every model forbids unknown keys, so a typo is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from aixpy.config._base import Seconds, StrictModel, quote
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
    hnsw_m: int = Field(32, ge=2, le=128, description="HNSW graph degree (faiss M)")
    hnsw_ef_construction: int = Field(100, ge=4, le=4096)
    hnsw_ef_search: int = Field(256, ge=1, le=4096, description="base search width; raised for deep pages and filters")


class QdrantStoreConfig(StrictModel):
    """Embedded (``path``), server (``url``, or ``host`` + ``port``) or qdrant-client local (``local``) Qdrant."""

    path: str | None = None
    url: str | None = None
    host: str | None = None
    port: int = Field(6333, ge=1, le=65535)
    api_key: SecretStr | None = None
    prefer_grpc: bool = False
    collection: str = "knowledge_base"
    hnsw_m: int = Field(16, ge=2, le=128)
    hnsw_ef_construct: int = Field(100, ge=4, le=4096)
    hnsw_ef: int = Field(256, ge=1, le=4096, description="candidates per HNSW search (raised to the limit when "
                         "larger): higher = better recall, slower queries")
    local: str | None = Field(
        None, validate_default=True,
        description="qdrant-client local mode: ':memory:' or a directory (pure Python, exhaustive search)")
    https: bool | None = None
    grpc_port: int = Field(6334, ge=1, le=65535)
    timeout: Seconds = Field(10.0, gt=0)

    @field_validator("local")
    @classmethod
    def _one_location(cls, local: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model one): its error shows only this field's value, never the
        # whole block with the api_key in it.
        given = [k for k in ("path", "url", "host") if info.data.get(k)] + (["local"] if local else [])
        if len(given) > 1:
            raise ValueError("set exactly one of qdrant.path (embedded), qdrant.url or qdrant.host (server) "
                             f"or qdrant.local (qdrant-client local mode); got {' and '.join(given)}")
        return local


class PgvectorStoreConfig(StrictModel):
    """PostgreSQL + pgvector: one table per collection in ``schema``; ``table`` is the default collection.

    ``connection_string`` is a libpq URL (``postgresql://user:password@host:5432/db``) or ``key=value``
    string; it is a secret and never appears in messages or reprs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True)

    connection_string: SecretStr
    table: str = Field("embeddings", pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,62}$",
                       description="default collection name (also its table name)")
    schema_name: str = Field("public", alias="schema", description="schema of the catalog and collection tables")
    pool_min_size: int = Field(1, ge=0, le=1000)
    pool_max_size: int = Field(10, ge=1, le=1000)
    connect_timeout: Seconds = Field(10.0, gt=0)
    hnsw_m: int = Field(16, ge=2, le=100)
    hnsw_ef_construction: int = Field(64, ge=4, le=1000)
    hnsw_ef_search: int = Field(200, ge=1, le=1000, description="raised to offset + limit per query when larger")

    @field_validator("schema_name")
    @classmethod
    def _schema_identifier(cls, v: str) -> str:
        if not v or "\x00" in v or len(v.encode("utf-8")) > 63:
            raise ValueError("schema must be 1-63 bytes without NUL (PostgreSQL would truncate a longer name)")
        return v

    @field_validator("pool_max_size")
    @classmethod
    def _pool_sizes(cls, v: int, info: ValidationInfo) -> int:
        # a field validator: a model validator's error would echo the whole input, connection string included
        if v < info.data.get("pool_min_size", 0):
            raise ValueError("pool_max_size must be at least pool_min_size")
        return v


class FirestoreStoreConfig(StrictModel):
    """Firestore vector search. Credentials: ``credentials_file``, else ADC; ``emulator_host`` (or the
    ``FIRESTORE_EMULATOR_HOST`` environment variable) talks to the emulator instead.

    ``collection`` is the default aixpy collection name; every aixpy collection lives under the
    top-level Firestore collection ``namespace`` (``<namespace>/<collection>/documents/<id>``).
    """

    project_id: str = Field(min_length=1)
    collection: str = "embeddings"
    namespace: str = Field("aixpy", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    credentials_file: str | None = None
    database: str = "(default)"
    emulator_host: str | None = None
    timeout: Seconds = Field(60.0, gt=0)


STORE_BLOCKS = ("memory", "qdrant", "pgvector", "firestore")
"""The backend blocks of ``vectorstore:``; only the one ``provider`` names is used."""


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
            raise ValueError(f"provider {quote(self.provider)} needs a {self.provider}: block")
        return self
