"""OpenTelemetry: spans and metrics named after the GenAI semantic conventions (``pip install 'aixpy[otel]'``).

::

    from aixpy.telemetry.otel import enable_otel
    exporter = enable_otel()            # the global tracer/meter providers; or tracer_provider=, meter_provider=
    ...
    exporter.stop()

:class:`OTelExporter` is an ordinary telemetry subscriber (:func:`aixpy.telemetry.subscribe`): the
events of the instrumented wrappers become

==========================  ==============================  =========================================
event                       span (kind CLIENT/INTERNAL)     ``gen_ai.operation.name``
==========================  ==============================  =========================================
``LLMEvent`` chat/stream    ``chat {model}``                ``chat``
``EmbeddingEvent``          ``embeddings {model}``          ``embeddings``
``ToolCallEvent``           ``execute_tool {tool}``         ``execute_tool``
``AgentRunEvent``           ``invoke_agent {agent}``        ``invoke_agent``
==========================  ==============================  =========================================

with ``gen_ai.provider.name`` (and the older ``gen_ai.system``), ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens``/``output_tokens``,
``gen_ai.response.finish_reasons``, ``gen_ai.tool.name``/``gen_ai.tool.call.id``, ``gen_ai.agent.name``,
``error.type`` on failures, and aixpy's own ``aixpy.*`` attributes (attempts, fallbacks, cost, cached).
Spans keep the operation's real start time and duration; they are children of whatever span is current
where the event is emitted. Metrics: the histograms ``gen_ai.client.operation.duration`` (seconds) and
``gen_ai.client.token.usage`` (``gen_ai.token.type`` = ``input``/``output``), with bounded attributes only.

Content (prompts, completions) is **off** by default. ``capture_content=True`` asks the instrumented
wrappers to attach it (:func:`aixpy.telemetry.capture_content`) and records it as the
``gen_ai.input.messages`` / ``gen_ai.output.messages`` span attributes (JSON). Only this module
imports ``opentelemetry`` (an import-linter contract).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aixpy.errors import MissingDependencyError
from aixpy.telemetry.events import AgentRunEvent, EmbeddingEvent, Event, LLMEvent, ToolCallEvent
from aixpy.telemetry.hub import capture_content, subscribe

__all__ = ["OTelExporter", "configure_otel", "enable_otel", "provider_name"]

_PROVIDER_NAMES = {"gemini": "gcp.gemini", "vertexai": "gcp.vertex_ai", "xai": "x_ai", "huggingface": "huggingface",
                   "azure": "azure.ai.openai"}
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


def provider_name(provider: str) -> str:
    """The ``gen_ai.provider.name`` of an aixpy provider (its well-known value where there is one)."""
    return _PROVIDER_NAMES.get(provider, provider)


def _otel() -> tuple[Any, Any]:
    try:
        from opentelemetry import metrics, trace
    except ImportError as e:
        raise MissingDependencyError("opentelemetry-api", "pip install 'aixpy[otel]'") from e
    return trace, metrics


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class OTelExporter:
    """Turns telemetry events into OpenTelemetry spans and metrics (see the module docstring)."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None, *,
                 capture_content: bool = False) -> None:
        trace, metrics = _otel()
        from aixpy._version import __version__

        self._trace = trace
        self.capture_content = capture_content
        self._tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("aixpy", __version__)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("aixpy", __version__)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Measures number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS)
        self._stops: list[Callable[[], None]] = []
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            LLMEvent: self._llm, EmbeddingEvent: self._embedding, ToolCallEvent: self._tool,
            AgentRunEvent: self._agent}

    # ------------------------------------------------------------------ subscription

    def start(self) -> OTelExporter:
        """Subscribe to every event of the process (and ask for content when ``capture_content``)."""
        if not self._stops:
            self._stops.append(subscribe(self))
            if self.capture_content:
                self._stops.append(capture_content())
        return self

    def stop(self) -> None:
        """Unsubscribe (idempotent)."""
        while self._stops:
            self._stops.pop()()

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    # ------------------------------------------------------------------ events

    def _span(self, name: str, event: Event, attrs: dict[str, Any], *, client: bool = True) -> None:
        kind = self._trace.SpanKind.CLIENT if client else self._trace.SpanKind.INTERNAL
        span = self._tracer.start_span(name, kind=kind, start_time=_ns(event.timestamp),
                                       attributes={k: v for k, v in attrs.items() if v is not None})
        if event.error is not None:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end(end_time=_ns(event.timestamp + event.duration))

    def _record(self, event: Event, base: dict[str, Any], tokens: tuple[tuple[str, int | None], ...]) -> None:
        labels = {k: v for k, v in base.items() if v is not None}
        self._duration.record(event.duration, labels)
        for token_type, count in tokens:
            if count is not None:
                self._tokens.record(count, {**labels, "gen_ai.token.type": token_type})

    def _llm(self, e: LLMEvent) -> None:
        if e.operation not in ("chat", "stream"):
            return
        base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider_name(e.provider),
                "gen_ai.request.model": e.model, "error.type": e.error}
        attrs = {**base, "gen_ai.system": provider_name(e.provider), "gen_ai.response.model": e.model,
                 "gen_ai.usage.input_tokens": e.input_tokens, "gen_ai.usage.output_tokens": e.output_tokens,
                 "gen_ai.response.finish_reasons": [e.finish_reason] if e.finish_reason else None,
                 "aixpy.stream": e.operation == "stream", "aixpy.attempts": e.attempts,
                 "aixpy.fallbacks": e.fallbacks, "aixpy.cost_usd": e.cost_usd, "aixpy.cached": e.cached,
                 "aixpy.time_to_first_token": e.time_to_first_token}
        if self.capture_content and e.content is not None:
            attrs["gen_ai.input.messages"], attrs["gen_ai.output.messages"] = e.content
        self._span(f"chat {e.model}", e, attrs)
        self._record(e, base, (("input", e.input_tokens), ("output", e.output_tokens)))

    def _embedding(self, e: EmbeddingEvent) -> None:
        base = {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": provider_name(e.provider),
                "gen_ai.request.model": e.model, "error.type": e.error}
        self._span(f"embeddings {e.model}", e, {**base, "gen_ai.system": provider_name(e.provider),
                                                "gen_ai.usage.input_tokens": e.tokens,
                                                "gen_ai.embeddings.dimension.count": e.dimensions,
                                                "aixpy.texts": e.texts, "aixpy.cost_usd": e.cost_usd})
        self._record(e, base, (("input", e.tokens),))

    def _tool(self, e: ToolCallEvent) -> None:
        self._span(f"execute_tool {e.tool}", e, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": e.tool, "gen_ai.tool.call.id": e.call_id,
            "gen_ai.agent.name": e.agent, "error.type": e.error, "aixpy.run_id": e.run_id, "aixpy.step": e.step},
            client=False)

    def _agent(self, e: AgentRunEvent) -> None:
        base = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": e.agent, "error.type": e.error}
        self._span(f"invoke_agent {e.agent}", e, {
            **base, "gen_ai.usage.input_tokens": e.input_tokens, "gen_ai.usage.output_tokens": e.output_tokens,
            "aixpy.run_id": e.run_id, "aixpy.stop_reason": e.stop_reason, "aixpy.steps": e.steps,
            "aixpy.tool_calls": e.tool_calls, "aixpy.cost_usd": e.cost_usd}, client=False)
        self._duration.record(e.duration, {k: v for k, v in base.items() if v is not None})


def enable_otel(tracer_provider: Any = None, meter_provider: Any = None, *,
                capture_content: bool = False) -> OTelExporter:
    """Start exporting every telemetry event to OpenTelemetry; ``.stop()`` the result to end."""
    return OTelExporter(tracer_provider, meter_provider, capture_content=capture_content).start()


_configured: dict[tuple[bool, str | None], OTelExporter] = {}
_lock = threading.Lock()


def configure_otel(*, capture_content: bool = False, service_name: str | None = None) -> OTelExporter:
    """What ``observability.otel`` turns on, once per process and setting: :func:`enable_otel` on the
    global providers. With ``service_name``, a process whose global providers are still OpenTelemetry's
    defaults (nothing configured) first gets SDK providers with that ``service.name`` resource (the
    application adds its exporters to them); providers the application set are kept."""
    key = (capture_content, service_name)
    with _lock:
        exporter = _configured.get(key)
        if exporter is None:
            trace, metrics = _otel()
            if service_name is not None:
                _install_providers(trace, metrics, service_name)
            exporter = _configured[key] = enable_otel(capture_content=capture_content)
    return exporter


def _install_providers(trace: Any, metrics: Any, service_name: str) -> None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError as e:
        raise MissingDependencyError("opentelemetry-sdk", "pip install 'aixpy[otel]'") from e
    resource = Resource.create({"service.name": service_name})
    if type(trace.get_tracer_provider()).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        trace.set_tracer_provider(TracerProvider(resource=resource))
    if type(metrics.get_meter_provider()).__name__ in ("_ProxyMeterProvider", "NoOpMeterProvider"):
        metrics.set_meter_provider(MeterProvider(resource=resource))
