"""Config models for ``embeddings:``, in the guides' shapes.

Every model forbids unknown keys, so a typo is an error naming the key, never silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from aixpy.config._base import ConfigValueError, Seconds, StrictModel, quote
from aixpy.config._remote import RemoteSettings

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "EmbeddingsCacheConfig",
    "EmbeddingsConfig",
    "EmbeddingsRateLimitConfig",
    "EmbeddingsRetryConfig",
    "HashEmbeddingsConfig",
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


class OpenAIEmbeddingsConfig(RemoteSettings):
    """OpenAI (or any OpenAI-compatible server) ``/embeddings``. ``endpoint`` (alias ``base_url``) is an
    OpenAI-style base URL: a bare origin gets ``/v1``, any other path is kept (:func:`aixpy.http.openai_base`)."""

    api_key: SecretStr | None = None
    model: str = "text-embedding-3-small"
    endpoint: str = "https://api.openai.com/v1"
    dimensions: int | None = Field(None, ge=1, le=8192)
    batch_size: int = Field(100, ge=1, le=2048)
    max_concurrency: int = Field(4, ge=1, le=64, description="sub-batches in flight at once")
    timeout: Seconds = Field(60.0, gt=0, description="seconds per request")
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    send_dimensions: bool | None = Field(
        None, description="send `dimensions` to a non-OpenAI server (default: only for text-embedding-3-*)")
    max_request_tokens: int = Field(300_000, ge=1, description="token budget per request (OpenAI's limit)")
    organization: str | None = None
    project: str | None = None

    @property
    def base_url(self) -> str:
        """The ``endpoint`` under its former name."""
        return self.endpoint


class HuggingFaceEmbeddingsConfig(RemoteSettings):
    """Hugging Face Inference API, ``feature-extraction`` (see :mod:`aixpy.embeddings.huggingface`).

    ``endpoint`` defaults to the serverless router; the guide's retired ``api-inference.huggingface.co``
    is read as the router. ``api_style``: ``auto`` (from the endpoint), ``router``, ``legacy`` (the old
    ``/models/{model}`` + ``options`` shape) or ``endpoint`` (POST to the URL itself: Inference Endpoints).
    """

    model: str
    api_key: SecretStr | None = None
    endpoint: str = "https://router.huggingface.co/hf-inference"
    api_style: Literal["auto", "router", "legacy", "endpoint"] = "auto"
    wait_for_model: bool = True
    max_wait_for_model: Seconds = Field(120.0, ge=0, le=3600, description="seconds a loading model is waited for")
    use_cache: bool = True
    normalize: bool | None = None
    truncate: bool | None = None
    dimensions: int | None = Field(None, ge=1, le=65536)
    batch_size: int = Field(50, ge=1, le=1024)
    max_concurrency: int = Field(4, ge=1, le=64, description="sub-batches in flight at once")
    timeout: Seconds = Field(60.0, gt=0, le=3600, description="seconds per request")


class TEIEmbeddingsConfig(RemoteSettings):
    """Text Embeddings Inference servers (see :mod:`aixpy.embeddings.tei`); several endpoints are a pool.

    ``batch_size`` defaults to 128 capped by the server's ``max_client_batch_size`` (from ``/info``).
    """

    endpoint: str | list[str]
    model: str | None = None
    api_key: SecretStr | None = None
    normalize: bool = True
    truncate: bool = True
    truncation_direction: Literal["left", "right"] | None = None
    prompt_name: str | None = None
    dimensions: int | None = Field(None, ge=1, le=65536)
    batch_size: int | None = Field(None, ge=1, le=4096)
    max_concurrency: int = Field(8, ge=1, le=256, description="sub-batches in flight at once")
    selection: Literal["round_robin", "least_outstanding"] = "least_outstanding"
    eject_after: int = Field(3, ge=1, le=100, description="consecutive failures that take an endpoint out")
    eject_cooldown: Seconds = Field(30.0, ge=0, le=3600, description="seconds before an ejected endpoint is re-probed")
    timeout: Seconds = Field(60.0, gt=0, le=3600, description="seconds per request")


class HashEmbeddingsConfig(StrictModel):
    """The deterministic test embedder (hashed bag of words): only its size is configurable."""

    dimensions: int = Field(256, ge=1, le=65536)


class OllamaEmbeddingsConfig(RemoteSettings):
    """A local Ollama server's ``/api/embed``. ``endpoint`` (alias ``base_url``) defaults to ``OLLAMA_HOST``,
    else ``http://localhost:11434``."""

    model: str = "nomic-embed-text"
    endpoint: str = "http://localhost:11434"
    truncate: bool = True
    keep_alive: str | None = None
    dimensions: int | None = Field(None, ge=1, le=65536)
    batch_size: int = Field(64, ge=1, le=4096)
    max_concurrency: int = Field(1, ge=1, le=64, description="sub-batches in flight (Ollama serves one at a time)")
    timeout: Seconds = Field(300.0, gt=0, description="seconds per request (a cold model load can be slow)")
    options: dict[str, Any] | None = Field(None, description="model options passed to /api/embed")

    @property
    def base_url(self) -> str:
        """The ``endpoint`` under its former name."""
        return self.endpoint


class EmbeddingsCacheConfig(StrictModel):
    """``cache:`` — embed each text once (see :mod:`aixpy.embeddings.policies.cache`)."""

    backend: Literal["memory", "redis"] = "memory"
    max_entries: int = Field(10_000, ge=1, le=100_000_000, description="memory backend: LRU size")
    ttl: Seconds | None = Field(None, gt=0, le=366 * 24 * 3600, description="seconds an entry lives; none: forever")
    redis_url: SecretStr | None = Field(None, description="redis backend; default redis://127.0.0.1:6379/0")
    prefix: str = Field("aixpy:emb:", description="redis key prefix")
    strict: bool = Field(False, description="redis errors fail the call instead of embedding uncached")


class EmbeddingsRateLimitConfig(StrictModel):
    """``rate_limit:`` — stay under the provider's limits (see :mod:`aixpy.embeddings.policies.ratelimit`)."""

    requests_per_second: float | None = Field(None, gt=0, le=1_000_000)
    tokens_per_minute: int | None = Field(None, ge=1)
    max_concurrency: int | None = Field(None, ge=1, le=4096)


class EmbeddingsRetryConfig(StrictModel):
    """``retry:`` — exponential backoff with full jitter; honours ``Retry-After`` (seconds)."""

    max_attempts: int = Field(3, ge=1, le=100, description="total attempts, the first one included")
    initial_backoff: Seconds = Field(1.0, ge=0, le=3600)
    max_backoff: Seconds = Field(30.0, ge=0, le=3600)
    multiplier: float = Field(2.0, ge=1.0, le=100.0)
    jitter: bool = True
    retry_on: tuple[Literal["rate_limit", "timeout", "server_error", "connection"], ...] = (
        "rate_limit", "timeout", "server_error", "connection")
    max_retry_after: Seconds = Field(60.0, ge=0, le=3600, description="longer server waits end the retries")

    @model_validator(mode="after")
    def _backoff_order(self) -> EmbeddingsRetryConfig:
        if self.initial_backoff > self.max_backoff:
            raise ConfigValueError(f"max_backoff ({self.max_backoff} s) is shorter than initial_backoff "
                                   f"({self.initial_backoff} s)", "max_backoff")
        return self


EMBEDDING_BLOCKS = ("local", "openai", "huggingface", "huggingface_tei", "ollama", "hash")
"""The provider blocks of ``embeddings:``; only the one ``provider`` names is used."""

EmbeddingsProvider = Literal["local", "openai", "huggingface", "huggingface_tei", "ollama"]


class EmbeddingsConfig(StrictModel):
    """``embeddings:`` block. ``provider`` picks which sub-block is used."""

    provider: str = "local"
    local: LocalEmbeddingsConfig | None = None
    openai: OpenAIEmbeddingsConfig | None = None
    huggingface: HuggingFaceEmbeddingsConfig | None = None
    huggingface_tei: TEIEmbeddingsConfig | None = None
    ollama: OllamaEmbeddingsConfig | None = None
    hash: HashEmbeddingsConfig | None = None
    # policies, composed by aixpy.embeddings.policies.compose (outermost first):
    # cache > retry > fallback chain > [cost tracking > rate limit > provider] per provider
    cache: EmbeddingsCacheConfig | None = None
    retry: EmbeddingsRetryConfig | None = None
    rate_limit: EmbeddingsRateLimitConfig | None = None
    fallback: list[EmbeddingsConfig] = Field(
        default_factory=list, description="providers tried in order after this one; same dimensions required")
    track_cost: bool | None = Field(
        None, description="count tokens and dollars per provider/model; default: on for paid providers "
        "(openai, huggingface), off for local/self-hosted ones (local, huggingface_tei, ollama)")
    timeout: Seconds | None = Field(None, gt=0, le=3600, description="seconds per call, retries and waits included")

    @model_validator(mode="after")
    def _provider_block(self) -> EmbeddingsConfig:
        needs_block = {"huggingface", "huggingface_tei"}
        if self.provider in needs_block and getattr(self, self.provider) is None:
            raise ValueError(f"provider {quote(self.provider)} needs a {self.provider}: block")
        for i, entry in enumerate(self.fallback):
            nested = [k for k in ("cache", "retry", "fallback", "timeout") if getattr(entry, k)]
            if nested:
                    raise ConfigValueError(f"fallback[{i}] cannot set {', '.join(nested)}: set them once, on the "
                                       "top-level embeddings block (one cache and one retry loop per call)",
                                       "fallback", i, nested[0])
        return self
