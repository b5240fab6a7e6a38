"""Config models for ``embeddings:`` and ``vectorstore:``, in the guides' shapes.

Every model forbids unknown keys, so a typo is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "EmbeddingsConfig",
    "FirestoreStoreConfig",
    "HuggingFaceEmbeddingsConfig",
    "LocalEmbeddingsConfig",
    "MemoryStoreConfig",
    "OpenAIEmbeddingsConfig",
    "PgvectorStoreConfig",
    "QdrantStoreConfig",
    "StrictModel",
    "TEIEmbeddingsConfig",
    "VectorStoreConfig",
]

DEFAULT_LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# ------------------------------------------------------------------ embeddings


class LocalEmbeddingsConfig(StrictModel):
    """Offline embeddings with ONNX Runtime (no torch, no network)."""

    model: str = DEFAULT_LOCAL_MODEL
    batch_size: int = Field(64, ge=1, le=4096)
    threads: int | None = Field(None, ge=1, le=256, description="intra-op threads; default: all cores")
    max_tokens: int = Field(256, ge=8, le=512, description="word-pieces per text; longer texts are truncated")
    quantize: bool = Field(True, description="run the matmuls on int8 kernels (validated against fp32 at build)")


class OpenAIEmbeddingsConfig(StrictModel):
    api_key: SecretStr | None = None
    model: str = "text-embedding-3-small"
    base_url: str = "https://api.openai.com/v1"
    dimensions: int | None = Field(None, ge=1, le=8192)
    batch_size: int = Field(100, ge=1, le=2048)


class HuggingFaceEmbeddingsConfig(StrictModel):
    model: str
    api_key: SecretStr | None = None
    endpoint: str = "https://api-inference.huggingface.co"
    wait_for_model: bool = True
    use_cache: bool = True
    batch_size: int = Field(50, ge=1, le=1024)


class TEIEmbeddingsConfig(StrictModel):
    endpoint: str | list[str]
    model: str | None = None
    normalize: bool = True
    truncate: bool = True
    batch_size: int | None = Field(None, ge=1, le=4096)


EmbeddingsProvider = Literal["local", "openai", "huggingface", "huggingface_tei", "ollama"]


class EmbeddingsConfig(StrictModel):
    """``embeddings:`` block. ``provider`` picks which sub-block is used."""

    provider: str = "local"
    local: LocalEmbeddingsConfig | None = None
    openai: OpenAIEmbeddingsConfig | None = None
    huggingface: HuggingFaceEmbeddingsConfig | None = None
    huggingface_tei: TEIEmbeddingsConfig | None = None

    @model_validator(mode="after")
    def _provider_block(self) -> EmbeddingsConfig:
        needs_block = {"huggingface", "huggingface_tei"}
        if self.provider in needs_block and getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider!r} needs a {self.provider}: block")
        return self


# ------------------------------------------------------------------ vector stores


class MemoryStoreConfig(StrictModel):
    max_documents: int | None = Field(None, ge=1)
    path: str | None = Field(None, description="snapshot file: loaded on open, written by save()")


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

    @model_validator(mode="after")
    def _one_location(self) -> QdrantStoreConfig:
        given = [k for k in ("path", "url", "host") if getattr(self, k)]
        if len(given) > 1 and not (set(given) == {"url", "host"}):
            raise ValueError("set exactly one of qdrant.path (embedded) or qdrant.url / qdrant.host (server)")
        return self


class PgvectorStoreConfig(StrictModel):
    connection_string: SecretStr
    table: str = "embeddings"


class FirestoreStoreConfig(StrictModel):
    project_id: str
    collection: str = "embeddings"
    credentials_file: str | None = None


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
