"""Config models for the LLM side: ``agents:``, ``model_services:`` and ``observability:``.

The shapes are those of the provider integration guide. These models only parse and validate;
providers are built from them elsewhere. Every model forbids unknown keys (see
:class:`~aixpy.config.stores.StrictModel`).

Durations (``timeout``, ``initial_backoff``...) are :data:`~aixpy.config._base.Duration` values:
``"500ms"``, ``"1s"``, ``"2m"``, ``"1h"``, ``"1m30s"`` or a number of seconds, as a
:class:`datetime.timedelta`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator, model_validator

from aixpy import _model_names
from aixpy.config._base import (
    ConfigValueError,
    Duration,
    PositiveDuration,
    RedisURL,
    StrictModel,
    format_duration,
    parse_duration,
    quote,
)
from aixpy.config._remote import RemoteSettings, url_alias
from aixpy.errors import UserError

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
    "LedgerConfig",
    "MCPServerConfig",
    "MetricsConfig",
    "ModelServiceConfig",
    "ModelServiceOptions",
    "OTelConfig",
    "ObservabilityConfig",
    "PositiveDuration",
    "ProviderEntry",
    "RetrievalConfig",
    "RetryConfig",
    "RetryOn",
    "Runtime",
    "ToolConfig",
    "format_duration",
    "infer_provider",
    "parse_duration",
]

LLMProvider = Literal["openai", "anthropic", "gemini", "vertexai", "xai", "huggingface", "ollama", "openai_compatible"]
Runtime = Literal["ollama", "vllm", "cloud"]
RetryOn = Literal["rate_limit", "timeout", "server_error", "connection"]
_DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("rate_limit", "timeout", "server_error", "connection")


# ------------------------------------------------------------------ helpers


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as http://localhost:11434, got {quote(value)}")
    return value


HttpURL = Annotated[str, AfterValidator(_http_url)]


class _Model(StrictModel):
    """Base of the LLM-side models (``repr`` masks URL passwords, as every :class:`StrictModel` does)."""


NonEmptyStr = Annotated[str, Field(min_length=1)]


def _canonical_provider(value: Any) -> Any:
    """A provider alias (``vllm``, ``openai-compatible``, ``hf``, ``claude``...) read as its provider's name."""
    return _model_names.ALIASES.get(value, value) if isinstance(value, str) else value


ProviderName = Annotated[LLMProvider, BeforeValidator(_canonical_provider)]


def infer_provider(model: str) -> str | None:
    """The provider a bare model name belongs to, or ``None`` when the name does not say.

    Same rules as :func:`aixpy.llm.registry.detect_provider` (``provider:model`` strings included,
    with the providers registered through :func:`aixpy.llm.register` or entry points):
    ``claude*`` -> anthropic, ``gemini*`` -> gemini, ``grok*`` -> xai, ``gpt-*``/``o1``... -> openai,
    ``org/model`` -> huggingface, ``name:tag`` -> ollama. Unlike aixgo, unknown names are *not* sent
    to OpenAI, and a near miss of a provider name (``antropic:...``) is ``None``, never Ollama.
    """
    if ":" in model:
        try:
            return _model_names.split(model, _model_names.PROVIDERS, environ={})[0]
        except UserError:  # a mistyped provider (``antropic:claude-3-5-haiku-latest``) is no provider
            return None
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


class ProviderEntry(_Model, RemoteSettings):
    """One item of an agent's ``providers:`` list (tried in order with ``fallback_strategy: cascade``).

    ``model`` may name a ``model_services:`` entry. ``endpoint`` may also be written ``base_url``;
    ``headers``/``allow_auth_override``: see :mod:`aixpy.config._remote`.
    """

    model: NonEmptyStr
    provider: ProviderName | None = None
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


_IMPORT_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _import_ref(value: str) -> str:
    if not _IMPORT_REF.match(value):
        raise ValueError(f"expected 'package.module:function', got {value!r}")
    return value


ImportRef = Annotated[str, AfterValidator(_import_ref)]


class ToolConfig(_Model):
    """A tool an agent may call: a Python function named ``package.module:function``.

    A bare string in YAML is shorthand: ``pkg.mod:fn`` for ``{function: pkg.mod:fn}``, any other word
    for ``{name: ...}`` (a built-in tool: ``retrieve``, which needs the agent's ``retrieval:`` block).
    The function is imported when the agent is built, not when the config is loaded; its signature and
    docstring give the schema the model sees.
    """

    name: NonEmptyStr | None = Field(None, description="the name the model sees (default: the function's name)")
    function: ImportRef | None = None
    description: str | None = Field(None, description="replaces the function's docstring")
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}},
                                         description="not for function tools: their signature gives the schema")
    timeout: PositiveDuration | None = Field(None, description="bound on each call")
    max_errors: int | None = Field(None, ge=0, le=100, description="failed calls sent back before the run stops")

    @model_validator(mode="after")
    def _named(self) -> ToolConfig:
        if self.name is None and self.function is None:
            raise ConfigValueError("a tool needs 'function: package.module:function' (or the name of a built-in "
                                   "tool)", "function")
        return self

    @property
    def tool_name(self) -> str:
        """The name the model sees."""
        if self.name is not None:
            return self.name
        assert self.function is not None
        return self.function.rpartition(":")[2].rpartition(".")[2]


class MCPServerConfig(_Model):
    """An ``mcp_servers:`` item: an MCP server whose tools the agent may call (needs ``aixpy[mcp]``).

    Either ``command`` (+ ``args``, ``env``, ``cwd``): a server started as a subprocess and spoken to
    over stdio; or ``url``: a streamable HTTP server (``headers`` sent with every request). A bare
    string is shorthand: an ``http(s)://`` URL, else a command line (split like a shell does).
    """

    name: NonEmptyStr | None = Field(None, description="for messages (default: the command or the URL's host)")
    command: NonEmptyStr | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: HttpURL | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    tools: list[NonEmptyStr] | None = Field(None, description="only these tools of the server (default: all)")
    prefix: str = Field("", description="put before each tool's name (two servers with a tool of the same name)")
    timeout: PositiveDuration | None = Field(None, description="bound on each tool call")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith(("http://", "https://")):
            return {"url": value}
        import shlex

        try:
            argv = shlex.split(value)
        except ValueError as e:
            raise ValueError(f"cannot split the command line {value!r}: {e}") from None
        return {"command": argv[0], "args": argv[1:]} if argv else {"command": ""}

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if (self.command is None) == (self.url is None):
            raise ConfigValueError("an MCP server needs either 'command' (stdio) or 'url' (streamable HTTP)",
                                   "command" if self.command is None else "url")
        if self.url is not None and (self.args or self.env or self.cwd):
            raise ConfigValueError("'args', 'env' and 'cwd' apply to a 'command' server, not to a 'url'", "url")
        if self.command is not None and self.headers:
            raise ConfigValueError("'headers' apply to a 'url' server, not to a 'command'", "headers")
        return self

    @property
    def label(self) -> str:
        """The server's name for messages (never a header value)."""
        if self.name is not None:
            return self.name
        if self.url is not None:
            return urlsplit(self.url).hostname or "mcp"
        assert self.command is not None
        return " ".join([self.command, *self.args])


class RetrievalConfig(_Model):
    """``retrieval:`` of an agent: a ``retrieve`` tool over a collection, embedded with the config's
    ``embeddings:`` block and stored in its ``vectorstore:``."""

    collection: NonEmptyStr | None = Field(None, description="default: the vector store's collection")
    limit: int = Field(5, ge=1, le=100, description="passages per call (the model may ask for fewer)")
    min_score: float | None = Field(None, description="drop passages scoring below this")


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


def _tool_shorthand(value: Any) -> Any:
    if isinstance(value, list):
        return [({"function": v} if ":" in v else {"name": v}) if isinstance(v, str) else v for v in value]
    return value


_SINGLE_MODEL_KEYS = ("model", "provider", "api_key", "endpoint", "location", "project_id", "headers",
                      "allow_auth_override")


class AgentConfig(_Model, RemoteSettings):
    """One item of ``agents:``.

    Either a single ``model`` (with ``provider``, or naming a ``model_services:`` entry, or a
    model whose provider its name tells) or a ``providers:`` list tried in order.
    """

    name: NonEmptyStr
    role: Literal["react"] = "react"
    model: NonEmptyStr | None = None
    provider: ProviderName | None = None
    api_key: SecretStr | None = None
    endpoint: HttpURL | None = None
    location: str | None = None
    project_id: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, gt=0)
    prompt: str | None = None
    tools: Annotated[list[ToolConfig], BeforeValidator(_tool_shorthand)] = Field(default_factory=list)
    mcp_servers: list[MCPServerConfig] = Field(default_factory=list)
    max_iterations: int | None = Field(None, ge=1, le=1000, description="model requests per run (default 10)")
    output_schema: dict[str, Any] | None = Field(None, description="JSON schema of the answer (structured output)")
    retrieval: RetrievalConfig | None = None
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
            if tool.tool_name in seen:
                raise ConfigValueError(f"tool {quote(tool.tool_name)} is listed twice", i,
                                       "name" if tool.name is not None else "function")
            seen.add(tool.tool_name)
        return tools

    @field_validator("output_schema")
    @classmethod
    def _schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None and not isinstance(schema.get("type", "object"), str | list):
            raise ValueError("'type' of a JSON schema must be a string such as object")
        return schema

    @model_validator(mode="after")
    def _model_or_providers(self) -> AgentConfig:
        if self.providers is None:
            if self.model is None:
                raise ConfigValueError(
                    "agent needs either 'model' (with 'provider') or a 'providers:' list", "model"
                )
            return self
        for key in _SINGLE_MODEL_KEYS:
            if getattr(self, key) not in (None, False):
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
                headers=self.headers,
                allow_auth_override=self.allow_auth_override,
                timeout=self.timeout,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        ]


# ------------------------------------------------------------------ model services


class ModelServiceOptions(_Model):
    """``config:`` block of a model service. ``address`` may also be written ``endpoint`` or ``base_url``."""

    address: HttpURL | None = Field(None, description="server address; Ollama default http://localhost:11434")
    quantization: Literal["int4", "int8", "fp16"] | None = None
    timeout: PositiveDuration = timedelta(minutes=5)

    @model_validator(mode="before")
    @classmethod
    def _address_alias(cls, data: Any) -> Any:
        return url_alias(data, "address", ("endpoint", "base_url"))


class ModelServiceConfig(_Model):
    """One item of ``model_services:``: a named model served by a local or remote runtime.

    Agents refer to it by name with ``model: <name>``.
    """

    name: NonEmptyStr
    provider: ProviderName = "huggingface"
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
            raise ValueError(f"must start with '/', got {quote(value)}")
        return value


class OTelConfig(_Model):
    """``observability.otel``: OpenTelemetry GenAI spans and metrics (needs the ``otel`` extra).

    When enabled, config-built agents are instrumented and their events exported through the process's
    tracer and meter providers, once per process. ``capture_content`` records prompts and completions on
    the spans (off: never). ``service_name``: when the process has not configured OpenTelemetry yet,
    aixpy installs SDK providers with this ``service.name`` (add exporters to them); a process that
    configured its own providers keeps them.
    """

    enabled: bool = False
    capture_content: bool = False
    service_name: NonEmptyStr | None = None


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
    otel: OTelConfig = Field(default_factory=OTelConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)

    @property
    def uses_ledger(self) -> bool:
        """Whether calls go through the usage ledger (tracking, a limit or an alert is on)."""
        llm = self.llm_observability
        return (self.cost_tracking or (llm.enabled and llm.track_tokens) or self.cost_alert_threshold is not None
                or llm.daily_token_limit is not None or llm.daily_cost_limit is not None)

    @property
    def instruments(self) -> bool:
        """Whether config-built models emit telemetry events (metrics, OpenTelemetry or LLM observability on)."""
        return self.metrics.enabled or self.otel.enabled or self.llm_observability.enabled
