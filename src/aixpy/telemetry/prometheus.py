"""Prometheus exporter (extra ``metrics``): a telemetry subscriber that keeps Prometheus metrics.

::

    from aixpy import telemetry

    metrics = telemetry.enable_prometheus(port=9464)      # subscribe + serve /metrics on 127.0.0.1:9464
    # or, inside a service: app = metrics.asgi_app() / metrics.wsgi_app()
    ...
    telemetry.disable_prometheus()

The metrics (every label is bounded: provider, model, operation, error *type*, agent, tool; never a
prompt, an id or user input):

=========================================  =========  ======================================================
``llm_provider_latency_seconds``           histogram  {provider, model} — the guide's metric, every LLM call
``llm_requests_total``                     counter    {provider, model, operation, outcome (ok/error)}
``llm_errors_total``                       counter    {provider, model, error}
``llm_tokens_total``                       counter    {provider, model, type: input/output/cached_input/...}
``llm_cost_usd_total``                     counter    {provider, model}
``llm_retries_total``                      counter    {provider, model} — requests beyond the first
``llm_fallbacks_total``                    counter    {provider, model} — calls served by a fallback
``llm_time_to_first_token_seconds``        histogram  {provider, model} — streams only
``embedding_latency_seconds``              histogram  {provider, model}
``embedding_texts_total``                  counter    {provider, model}
``embedding_tokens_total``                 counter    {provider, model}
``embedding_cost_usd_total``               counter    {provider, model}
``embedding_errors_total``                 counter    {provider, model, error}
``vectorstore_operation_seconds``          histogram  {provider, operation}
``vectorstore_errors_total``               counter    {provider, operation, error}
``agent_runs_total``                       counter    {agent, stop_reason, error}
``agent_run_seconds``                      histogram  {agent}
``agent_steps_total``                      counter    {agent}
``agent_tool_calls_total``                 counter    {agent, tool, error}
=========================================  =========  ======================================================

Collection names are *not* a label (users create them freely). As a last guard, each label keeps at
most ``max_label_values`` distinct values; later ones are counted under ``"other"`` (a model name
coming from a misbehaving server can never explode the series count).

Cost: the handler looks up its children once per label tuple (cached) and then only increments and
observes; with nobody subscribed the instrumented wrappers do not even build events
(``bench/metrics_overhead.py``).

This is the only module of aixpy, with the OpenTelemetry exporter, that imports ``prometheus_client``
(an import-linter contract enforces it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from aixpy.errors import MissingDependencyError
from aixpy.telemetry.events import (
    AgentRunEvent,
    AgentStepEvent,
    EmbeddingEvent,
    Event,
    LLMEvent,
    ToolCallEvent,
    VectorStoreEvent,
)
from aixpy.telemetry.hub import subscribe

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client import make_asgi_app as _make_asgi_app
    from prometheus_client import make_wsgi_app as _make_wsgi_app
    from prometheus_client import start_http_server as _start_http_server
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("prometheus-client", "pip install 'aixpy[metrics]'") from e

__all__ = ["LATENCY_BUCKETS", "PrometheusMetrics", "disable_prometheus", "enable_prometheus", "enabled_metrics"]

LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Buckets (seconds) of the LLM and agent latency histograms: model calls take 50 ms to minutes."""

FAST_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Buckets of embedding and vector-store latencies (a millisecond up)."""

OTHER = "other"
KINDS = frozenset(cls.kind for cls in (LLMEvent, EmbeddingEvent, VectorStoreEvent, AgentRunEvent, AgentStepEvent,
                                       ToolCallEvent))
"""The event kinds the metrics are made of (no ``http.request``: an HTTP event per request is not needed)."""
_TOKEN_TYPES = (("input_tokens", "input"), ("output_tokens", "output"), ("cached_input_tokens", "cached_input"),
                ("cache_creation_tokens", "cache_creation"), ("reasoning_tokens", "reasoning"))


class _Bounded:
    """At most ``limit`` distinct values of one label; the rest become ``"other"``."""

    __slots__ = ("_lock", "limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        v = value or ""
        if v in self.seen:
            return v
        with self._lock:
            if len(self.seen) >= self.limit:
                return OTHER
            self.seen.add(v)
        return v


class PrometheusMetrics:
    """The metrics of aixpy in one Prometheus registry; call it with an event (it is a telemetry handler).

    ``registry``: a :class:`prometheus_client.CollectorRegistry` (default: the process-wide
    ``prometheus_client.REGISTRY``). Two instances cannot share one registry (metric names clash):
    :func:`enable_prometheus` keeps one per registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, max_label_values: int = 200,
                 latency_buckets: Sequence[float] = LATENCY_BUCKETS, fast_buckets: Sequence[float] = FAST_BUCKETS
                 ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self._label: dict[str, _Bounded] = {}
        self._max = max_label_values
        self._children: dict[tuple[Any, ...], Any] = {}
        self._stop: Callable[[], None] | None = None
        self._servers: list[Any] = []
        r, slow, fast = self.registry, tuple(latency_buckets), tuple(fast_buckets)
        pm = ("provider", "model")
        self.llm_latency = Histogram("llm_provider_latency_seconds", "Latency of LLM calls (whole call: retries and "
                                     "fallbacks included)", pm, registry=r, buckets=slow)
        self.llm_requests = Counter("llm_requests", "LLM calls", (*pm, "operation", "outcome"), registry=r)
        self.llm_errors = Counter("llm_errors", "Failed LLM calls by error type", (*pm, "error"), registry=r)
        self.llm_tokens = Counter("llm_tokens", "Tokens of LLM calls by type", (*pm, "type"), registry=r)
        self.llm_cost = Counter("llm_cost_usd", "Cost of LLM calls in US dollars (priced calls only)", pm,
                                registry=r)
        self.llm_retries = Counter("llm_retries", "LLM requests beyond the first of their call", pm, registry=r)
        self.llm_fallbacks = Counter("llm_fallbacks", "LLM calls served by a fallback provider", pm, registry=r)
        self.llm_ttft = Histogram("llm_time_to_first_token_seconds", "Delay until the first delta of a stream", pm,
                                  registry=r, buckets=slow)
        self.emb_latency = Histogram("embedding_latency_seconds", "Latency of embedding calls", pm, registry=r,
                                     buckets=fast)
        self.emb_texts = Counter("embedding_texts", "Texts embedded", pm, registry=r)
        self.emb_tokens = Counter("embedding_tokens", "Tokens embedded (estimated when the provider does not say)",
                                  pm, registry=r)
        self.emb_cost = Counter("embedding_cost_usd", "Cost of embedding calls in US dollars", pm, registry=r)
        self.emb_errors = Counter("embedding_errors", "Failed embedding calls by error type", (*pm, "error"),
                                  registry=r)
        po = ("provider", "operation")
        self.vs_latency = Histogram("vectorstore_operation_seconds", "Latency of vector-store operations", po,
                                    registry=r, buckets=fast)
        self.vs_errors = Counter("vectorstore_errors", "Failed vector-store operations by error type",
                                 (*po, "error"), registry=r)
        self.agent_runs = Counter("agent_runs", "Agent runs", ("agent", "stop_reason", "error"), registry=r)
        self.agent_run_latency = Histogram("agent_run_seconds", "Duration of agent runs", ("agent",), registry=r,
                                           buckets=slow)
        self.agent_steps = Counter("agent_steps", "Agent steps (model turns)", ("agent",), registry=r)
        self.agent_tools = Counter("agent_tool_calls", "Tools executed by agents", ("agent", "tool", "error"),
                                   registry=r)

    # ------------------------------------------------------------------ the handler

    def __call__(self, event: Event) -> None:
        if isinstance(event, LLMEvent):
            self._llm(event)
        elif isinstance(event, EmbeddingEvent):
            self._embedding(event)
        elif isinstance(event, VectorStoreEvent):
            self._vectorstore(event)
        elif isinstance(event, AgentRunEvent):
            agent = self._b("agent", event.agent)
            self.agent_runs.labels(agent, self._b("stop_reason", event.stop_reason),
                                   self._b("error", event.error)).inc()
            self.agent_run_latency.labels(agent).observe(event.duration)
        elif isinstance(event, AgentStepEvent):
            self.agent_steps.labels(self._b("agent", event.agent)).inc()
        elif isinstance(event, ToolCallEvent):
            self.agent_tools.labels(self._b("agent", event.agent), self._b("tool", event.tool),
                                    self._b("error", event.error)).inc()

    def _b(self, label: str, value: str | None) -> str:
        bounded = self._label.get(label)
        if bounded is None:
            bounded = self._label.setdefault(label, _Bounded(self._max))
        return bounded(value)

    def _llm_children(self, provider: str, model: str) -> tuple[Any, ...]:
        key = ("llm", provider, model)
        children = self._children.get(key)
        if children is None:
            p, m = self._b("provider", provider), self._b("model", model)
            children = (self.llm_latency.labels(p, m), self.llm_cost.labels(p, m), self.llm_retries.labels(p, m),
                        self.llm_fallbacks.labels(p, m), self.llm_ttft.labels(p, m),
                        tuple(self.llm_tokens.labels(p, m, t) for _, t in _TOKEN_TYPES), p, m)
            self._children[key] = children
        return children

    def _llm(self, e: LLMEvent) -> None:
        latency, cost, retries, fallbacks, ttft, tokens, p, m = self._llm_children(e.provider, e.model)
        latency.observe(e.duration)
        outcome = "ok" if e.error is None else "error"
        key = ("llm-op", p, m, e.operation, outcome)
        requests = self._children.get(key)
        if requests is None:
            requests = self._children[key] = self.llm_requests.labels(p, m, self._b("operation", e.operation), outcome)
        requests.inc()
        if e.error is not None:
            self.llm_errors.labels(p, m, self._b("error", e.error)).inc()
        for (field, _), child in zip(_TOKEN_TYPES, tokens, strict=True):
            n = getattr(e, field)
            if n:
                child.inc(n)
        if e.cost_usd:
            cost.inc(e.cost_usd)
        if e.attempts > 1:
            retries.inc(e.attempts - 1)
        if e.fallbacks > 0:
            fallbacks.inc()
        if e.time_to_first_token is not None:
            ttft.observe(e.time_to_first_token)

    def _embedding(self, e: EmbeddingEvent) -> None:
        p, m = self._b("provider", e.provider), self._b("model", e.model)
        self.emb_latency.labels(p, m).observe(e.duration)
        if e.texts:
            self.emb_texts.labels(p, m).inc(e.texts)
        if e.tokens:
            self.emb_tokens.labels(p, m).inc(e.tokens)
        if e.cost_usd:
            self.emb_cost.labels(p, m).inc(e.cost_usd)
        if e.error is not None:
            self.emb_errors.labels(p, m, self._b("error", e.error)).inc()

    def _vectorstore(self, e: VectorStoreEvent) -> None:
        p, op = self._b("provider", e.provider), self._b("operation", e.operation)
        self.vs_latency.labels(p, op).observe(e.duration)
        if e.error is not None:
            self.vs_errors.labels(p, op, self._b("error", e.error)).inc()

    # ------------------------------------------------------------------ wiring and exporting

    def subscribe(self) -> Callable[[], None]:
        """Receive every telemetry event of the process (idempotent); returns :meth:`unsubscribe`."""
        if self._stop is None:  # HTTP events are not wanted: the HTTP bridge stays off for these metrics
            self._stop = subscribe(self, kinds=KINDS)
        return self.unsubscribe

    def unsubscribe(self) -> None:
        """Stop receiving events (the metrics keep their values)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    @property
    def subscribed(self) -> bool:
        return self._stop is not None

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what ``/metrics`` serves)."""
        return bytes(generate_latest(self.registry))

    def start_http_server(self, port: int, addr: str = "127.0.0.1") -> tuple[str, int]:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread (``port=0``: a free port); returns
        the address bound. Loopback by default: exposing metrics to a network is a deliberate choice."""
        server, _thread = _start_http_server(port, addr=addr, registry=self.registry)
        self._servers.append(server)
        host, bound = server.server_address[:2]
        return str(host), int(bound)

    def stop_http_servers(self) -> None:
        """Stop the servers started by :meth:`start_http_server`."""
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()

    def wsgi_app(self) -> Callable[..., Any]:
        """A WSGI app serving this registry (mount it at ``/metrics`` of a WSGI service)."""
        return _make_wsgi_app(self.registry)

    def asgi_app(self) -> Callable[..., Any]:
        """An ASGI app serving this registry (``app.mount("/metrics", metrics.asgi_app())``)."""
        return _make_asgi_app(self.registry)


_instances: dict[int, PrometheusMetrics] = {}
_instances_lock = threading.Lock()


def enabled_metrics(registry: CollectorRegistry | None = None) -> PrometheusMetrics | None:
    """The subscribed :class:`PrometheusMetrics` of ``registry`` (default registry), if any."""
    m = _instances.get(id(REGISTRY if registry is None else registry))
    return m if m is not None and m.subscribed else None


def enable_prometheus(*, registry: CollectorRegistry | None = None, port: int | None = None,
                      addr: str = "127.0.0.1") -> PrometheusMetrics:
    """Turn Prometheus metrics on for the whole process: one :class:`PrometheusMetrics` per registry,
    subscribed to every event; with ``port`` (``0``: any free one), also serve ``/metrics`` on ``addr``
    (once per address: calling again with the same port does not start a second server).

    The models must be instrumented to emit events: config-built agents are when ``observability.metrics``
    is enabled; otherwise wrap them in :class:`~aixpy.llm.policies.InstrumentedModel` (and the embedding
    and vector-store wrappers).
    """
    reg = REGISTRY if registry is None else registry
    with _instances_lock:
        metrics = _instances.get(id(reg))
        if metrics is None:
            metrics = _instances[id(reg)] = PrometheusMetrics(reg)
        metrics.subscribe()
        if port is not None and not any(_same(s, addr, port) for s in metrics._servers):
            metrics.start_http_server(port, addr)
    return metrics


def disable_prometheus(registry: CollectorRegistry | None = None) -> None:
    """Unsubscribe the metrics of ``registry`` and stop their HTTP servers (values are kept)."""
    metrics = _instances.get(id(REGISTRY if registry is None else registry))
    if metrics is not None:
        metrics.unsubscribe()
        metrics.stop_http_servers()


def _same(server: Any, addr: str, port: int) -> bool:
    host, bound = server.server_address[:2]
    return port != 0 and int(bound) == port and addr in (host, "")
