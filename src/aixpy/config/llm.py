"""Config models for the LLM side: ``agents:``, ``model_services:`` and ``observability:``.

The shapes are those of the provider integration guide. These models only parse and validate;
providers are built from them elsewhere. Every model forbids unknown keys (see
:class:`~aixpy.config.stores.StrictModel`).

Durations (``timeout``, ``initial_backoff``...) are :data:`~aixpy.config._base.Duration` values:
``"500ms"``, ``"1s"``, ``"2m"``, ``"1h"``, ``"1m30s"`` or a number of seconds, as a
:class:`datetime.timedelta`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator, model_validator

from aixpy import _model_names
from aixpy.config._base import (
    ConfigValueError,
    Duration,
    PositiveDuration,
    StrictModel,
    format_duration,
    parse_duration,
)
from aixpy.errors import redact

__all__ = [
    "AgentConfig",
    "AgentInput",
    "AgentOutput",
    "ConfigValueError",
    "Duration",
    "LLMCacheConfig",
    "LLMObservabilityConfig",
    "LLMProvider",
    "LLMRateLimitConfig",
    "MetricsConfig",
    "ModelServiceConfig",
    "ModelServiceOptions",
    "ObservabilityConfig",
    "PositiveDuration",
    "ProviderEntry",
    "RetryConfig",
    "RetryOn",
    "Runtime",
    "ToolConfig",
    "format_duration",
    "infer_provider",
    "parse_duration",
]

LLMProvider = Literal["openai", "anthropic", "gemini", "vertexai", "xai", "huggingface", "ollama"]
Runtime = Literal["ollama", "vllm", "cloud"]
RetryOn = Literal["rate_limit", "timeout", "server_error", "connection"]
_DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("rate_limit", "timeout", "server_error", "connection")


# ------------------------------------------------------------------ helpers


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as http://localhost:11434, got {value!r}")
    return value


HttpURL = Annotated[str, AfterValidator(_http_url)]


class _Model(StrictModel):
    """Base of the LLM-side models: ``repr`` masks passwords embedded in URLs (``https://u:***@h``)."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (redact(value) if isinstance(value, str) and "://" in value else value)


NonEmptyStr = Annotated[str, Field(min_length=1)]


def infer_provider(model: str) -> str | None:
    """The provider a bare model name belongs to, or ``None`` when the name does not say.

    Same rules as :func:`aixpy.llm.registry.detect_provider` (``provider:model`` strings included,
    with the providers registered through :func:`aixpy.llm.register` or entry points):
    ``claude*`` -> anthropic, ``gemini*`` -> gemini, ``grok*`` -> xai, ``gpt-*``/``o1``... -> openai,
    ``org/model`` -> huggingface, ``name:tag`` -> ollama. Unlike aixgo, unknown names are *not* sent
    to OpenAI.
    """
    if ":" in model:
        return _model_names.split(model, _model_names.PROVIDERS, environ={})[0]
    return _model_names.detect(model, vertex=False)


# ------------------------------------------------------------------ retry


class RetryConfig(_Model):
    """``retry:`` block of an agent: exponential backoff between attempts."""

    max_attempts: int = Field(3, ge=1, le=100, description="total attempts, the first one included")
    initial_backoff: Duration = timedelta(seconds=1)
    max_backoff: Duration = timedelta(seconds=30)
    multiplier: float = Field(2.0, ge=1.0, le=100.0)
    jitter: bool = True
    retry_on: list[RetryOn] = Field(default_factory=lambda: list(_DEFAULT_RETRY_ON))

    @model_validator(mode="after")
    def _backoff_order(self) -> RetryConfig:
        if self.initial_backoff > self.max_backoff:
            raise ConfigValueError(
                f"max_backoff ({format_duration(self.max_backoff)}) is shorter than "
                f"initial_backoff ({format_duration(self.initial_backoff)})",
                "max_backoff",
            )
        return self


# ------------------------------------------------------------------ cache and rate limits


def _redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError(f"expected a redis URL such as redis://localhost:6379/0, got {redact(value)!r}")
    return value


RedisURL = Annotated[str, AfterValidator(_redis_url)]


class LLMCacheConfig(_Model):
    """``cache:`` block of an agent: a response cache in front of its providers
    (:class:`~aixpy.llm.policies.CachedModel`). ``when: deterministic`` caches only requests at
    temperature 0 (the request's, else the provider's configured one); ``always`` caches every request."""

    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    ttl: PositiveDuration = timedelta(hours=1)
    max_entries: int = Field(1000, ge=1, description="memory backend: most answers kept (least recently used go)")
    url: RedisURL | None = Field(None, description="redis backend: redis://host:6379/0")
    prefix: NonEmptyStr = "aixpy:llm:"
    when: Literal["deterministic", "always"] = "deterministic"

    @model_validator(mode="after")
    def _redis_needs_url(self) -> LLMCacheConfig:
        if self.backend == "redis" and self.url is None:
            raise ConfigValueError("backend: redis needs url (e.g. redis://localhost:6379/0)", "url")
        return self


class LLMRateLimitConfig(_Model):
    """``rate_limit:`` block of an agent: requests and tokens per minute, applied to each of its
    providers with a bucket per provider/model (:class:`~aixpy.llm.policies.RateLimitedModel`). A call
    waits for its turn within its deadline. ``backend: redis`` shares the buckets with every process
    using the same Redis."""

    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    backend: Literal["local", "redis"] = "local"
    url: RedisURL | None = Field(None, description="redis backend: redis://host:6379/0")
    prefix: NonEmptyStr = "aixpy:ratelimit:"

    @model_validator(mode="after")
    def _check(self) -> LLMRateLimitConfig:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ConfigValueError("rate_limit needs requests_per_minute, tokens_per_minute or both",
                                   "requests_per_minute")
        if self.backend == "redis" and self.url is None:
            raise ConfigValueError("backend: redis needs url (e.g. redis://localhost:6379/0)", "url")
        return self


# ------------------------------------------------------------------ agents


class ProviderEntry(_Model):
    """One item of an agent's ``providers:`` list (tried in order with ``fallback_strategy: cascade``).

    ``model`` may name a ``model_services:`` entry.
    """

    model: NonEmptyStr
    provider: LLMProvider | None = None
    api_key: SecretStr | None = None
    runtime: Runtime | None = None
    endpoint: HttpURL | None = None
    location: str | None = None
    project_id: str | None = None
    timeout: PositiveDuration | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, gt=0)
    options: dict[str, Any] = Field(
        default_factory=dict, description="provider-specific switches, e.g. text_generation: true for a TGI endpoint"
    )


class ToolConfig(_Model):
    """A tool an agent may call. A bare string in YAML is shorthand for ``{name: ...}``."""

    name: NonEmptyStr
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class AgentInput(_Model):
    """``inputs:`` item: where an agent reads messages from. A bare string is the ``source``."""

    source: NonEmptyStr


class AgentOutput(_Model):
    """``outputs:`` item: where an agent sends messages. A bare string is the ``target``."""

    target: NonEmptyStr
    addr: str | None = None


def _shorthand(key: str) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [{key: v} if isinstance(v, str) else v for v in value]
        return value

    return BeforeValidator(convert)


_SINGLE_MODEL_KEYS = ("model", "provider", "api_key", "endpoint", "location", "project_id")


class AgentConfig(_Model):
    """One item of ``agents:``.

    Either a single ``model`` (with ``provider``, or naming a ``model_services:`` entry, or a
    model whose provider its name tells) or a ``providers:`` list tried in order.
    """

    name: NonEmptyStr
    role: NonEmptyStr = "react"
    model: NonEmptyStr | None = None
    provider: LLMProvider | None = None
    api_key: SecretStr | None = None
    endpoint: HttpURL | None = None
    location: str | None = None
    project_id: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, gt=0)
    prompt: str | None = None
    tools: Annotated[list[ToolConfig], _shorthand("name")] = Field(default_factory=list)
    mcp_servers: list[NonEmptyStr] = Field(default_factory=list)
    inputs: Annotated[list[AgentInput], _shorthand("source")] = Field(default_factory=list)
    outputs: Annotated[list[AgentOutput], _shorthand("target")] = Field(default_factory=list)
    interval: PositiveDuration | None = None
    listen: str | None = None
    providers: list[ProviderEntry] | None = Field(None, min_length=1)
    fallback_strategy: Literal["cascade"] = "cascade"
    retry: RetryConfig | None = None
    timeout: PositiveDuration | None = None
    cache: LLMCacheConfig | None = None
    rate_limit: LLMRateLimitConfig | None = None

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[ToolConfig]) -> list[ToolConfig]:
        seen: set[str] = set()
        for i, tool in enumerate(tools):
            if tool.name in seen:
                raise ConfigValueError(f"tool {tool.name!r} is listed twice", i, "name")
            seen.add(tool.name)
        return tools

    @model_validator(mode="after")
    def _model_or_providers(self) -> AgentConfig:
        if self.providers is None:
            if self.model is None:
                raise ConfigValueError(
                    "agent needs either 'model' (with 'provider') or a 'providers:' list", "model"
                )
            return self
        for key in _SINGLE_MODEL_KEYS:
            if getattr(self, key) is not None:
                raise ConfigValueError(
                    f"'{key}' cannot be used together with 'providers:'; "
                    f"set it in each providers entry instead",
                    key,
                )
        return self

    @property
    def provider_entries(self) -> list[ProviderEntry]:
        """The providers to try, in order: ``providers:`` or the single ``model``/``provider``."""
        if self.providers is not None:
            return list(self.providers)
        assert self.model is not None
        return [
            ProviderEntry(
                model=self.model,
                provider=self.provider,
                api_key=self.api_key,
                endpoint=self.endpoint,
                location=self.location,
                project_id=self.project_id,
                timeout=self.timeout,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        ]


# ------------------------------------------------------------------ model services


class ModelServiceOptions(_Model):
    """``config:`` block of a model service."""

    address: HttpURL | None = Field(None, description="server address; Ollama default http://localhost:11434")
    quantization: Literal["int4", "int8", "fp16"] | None = None
    timeout: PositiveDuration = timedelta(minutes=5)


class ModelServiceConfig(_Model):
    """One item of ``model_services:``: a named model served by a local or remote runtime.

    Agents refer to it by name with ``model: <name>``.
    """

    name: NonEmptyStr
    provider: LLMProvider = "huggingface"
    model: NonEmptyStr
    runtime: Runtime = "ollama"
    transport: Literal["local", "remote"] = "local"
    config: ModelServiceOptions = Field(default_factory=ModelServiceOptions)


# ------------------------------------------------------------------ observability


class LLMObservabilityConfig(_Model):
    """``observability.llm_observability``: token accounting and a daily token budget."""

    enabled: bool = False
    track_tokens: bool = True
    daily_token_limit: int | None = Field(None, ge=1)


class MetricsConfig(_Model):
    """``observability.metrics``: a Prometheus endpoint (needs the ``metrics`` extra)."""

    enabled: bool = False
    host: NonEmptyStr = "127.0.0.1"
    port: int = Field(9090, ge=1, le=65535)
    path: str = "/metrics"

    @field_validator("path")
    @classmethod
    def _abs_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value


class ObservabilityConfig(_Model):
    """``observability:`` block."""

    cost_tracking: bool = False
    cost_alert_threshold: float | None = Field(None, ge=0.0, description="alert when daily cost (USD) exceeds")
    llm_observability: LLMObservabilityConfig = Field(default_factory=LLMObservabilityConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
