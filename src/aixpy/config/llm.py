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
    "LLMObservabilityConfig",
    "LLMProvider",
    "LedgerConfig",
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
    """``observability.llm_observability``: token accounting and daily budgets.

    ``enabled`` records every call of config-built agents in the usage ledger (``track_tokens``:
    their tokens too) and instruments them (telemetry events). ``daily_token_limit`` and
    ``daily_cost_limit`` (USD) are checked *before* a call is sent (``BudgetExceededError``), for every
    agent together (``limit_scope: global``) or each agent on its own (``limit_scope: agent``).
    ``default_output_tokens`` is what a call without ``max_tokens`` reserves for its reply.
    """

    enabled: bool = False
    track_tokens: bool = True
    daily_token_limit: int | None = Field(None, ge=1)
    daily_cost_limit: float | None = Field(None, gt=0.0, description="USD per UTC day")
    limit_scope: Literal["global", "agent"] = "global"
    default_output_tokens: int = Field(1024, ge=1)


class MetricsConfig(_Model):
    """``observability.metrics``: a Prometheus endpoint (needs the ``metrics`` extra).

    When enabled, config-built agents are instrumented and ``/metrics`` is served on ``host:port``
    (loopback by default) once per process.
    """

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


class LedgerConfig(_Model):
    """``observability.ledger``: where usage is recorded — a local SQLite file (default
    ``./.aixpy/usage.sqlite3``, safe for several processes on one machine) or Redis (``url``; shared by
    every replica, so budgets hold across a fleet)."""

    backend: Literal["sqlite", "redis"] = "sqlite"
    path: NonEmptyStr | None = None
    url: SecretStr | None = Field(None, description="redis://[:password@]host:6379/0")
    key_prefix: NonEmptyStr = "aixpy:usage:"
    retention_days: int = Field(400, ge=1)

    @model_validator(mode="after")
    def _url_for_redis(self) -> LedgerConfig:
        if self.backend == "redis" and self.url is None:
            raise ConfigValueError("the redis ledger needs 'url' (e.g. redis://localhost:6379/0)", "url")
        return self


class ObservabilityConfig(_Model):
    """``observability:`` block. Everything is off by default.

    ``cost_tracking`` records every call's tokens and cost in the ledger; ``cost_alert_threshold``
    (USD) fires once per UTC day when the day's cost passes it: a WARNING log line, and a POST to
    ``cost_alert_webhook`` when set.
    """

    cost_tracking: bool = False
    cost_alert_threshold: float | None = Field(None, ge=0.0, description="alert when daily cost (USD) exceeds")
    cost_alert_webhook: HttpURL | None = None
    llm_observability: LLMObservabilityConfig = Field(default_factory=LLMObservabilityConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)

    @property
    def uses_ledger(self) -> bool:
        """Whether calls go through the usage ledger (tracking, a limit or an alert is on)."""
        llm = self.llm_observability
        return (self.cost_tracking or (llm.enabled and llm.track_tokens) or self.cost_alert_threshold is not None
                or llm.daily_token_limit is not None or llm.daily_cost_limit is not None)

    @property
    def instruments(self) -> bool:
        """Whether config-built models emit telemetry events (metrics or LLM observability on)."""
        return self.metrics.enabled or self.llm_observability.enabled
