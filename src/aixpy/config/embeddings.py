"""Config models for ``embeddings:``, in the guides' shapes.

Every model forbids unknown keys, so a typo is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from aixpy.config._base import StrictModel

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "EmbeddingsConfig",
    "HuggingFaceEmbeddingsConfig",
    "LocalEmbeddingsConfig",
    "OllamaEmbeddingsConfig",
    "OpenAIEmbeddingsConfig",
    "TEIEmbeddingsConfig",
]

DEFAULT_LOCAL_MODEL = "sentence-transformers/all-MiniLM-L6-v2"



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


class OllamaEmbeddingsConfig(StrictModel):
    model: str = "nomic-embed-text"
    base_url: str = "http://localhost:11434"
    truncate: bool = True
    keep_alive: str | None = None
    dimensions: int | None = Field(None, ge=1, le=65536)
    batch_size: int = Field(64, ge=1, le=4096)


EmbeddingsProvider = Literal["local", "openai", "huggingface", "huggingface_tei", "ollama"]


class EmbeddingsConfig(StrictModel):
    """``embeddings:`` block. ``provider`` picks which sub-block is used."""

    provider: str = "local"
    local: LocalEmbeddingsConfig | None = None
    openai: OpenAIEmbeddingsConfig | None = None
    huggingface: HuggingFaceEmbeddingsConfig | None = None
    huggingface_tei: TEIEmbeddingsConfig | None = None
    ollama: OllamaEmbeddingsConfig | None = None

    @model_validator(mode="after")
    def _provider_block(self) -> EmbeddingsConfig:
        needs_block = {"huggingface", "huggingface_tei"}
        if self.provider in needs_block and getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider!r} needs a {self.provider}: block")
        return self
