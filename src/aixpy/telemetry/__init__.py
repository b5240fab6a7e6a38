"""Telemetry: one event model for everything aixpy does, and where the events go.

::

    from aixpy import telemetry
    from aixpy.llm.policies import InstrumentedModel

    stop = telemetry.subscribe(lambda e: print(e.kind, e.labels(), e.measures()))
    model = InstrumentedModel(llm.new(...))          # or on_event=handler for this stack only
    model.chat("hi")                                 # -> one LLMEvent, plus an HttpEvent per request
    stop()

Events (:mod:`aixpy.telemetry.events`) are frozen dataclasses sharing :class:`Event`
(``kind``, ``timestamp``, ``duration``, ``error`` type); each names its bounded *label* fields and its
numeric *measures* apart from free-form attributes, so Prometheus/OpenTelemetry exporters, a cost
ledger or a budget can be built on them without changing them. They never carry content (prompts,
completions, texts, documents, vectors, URL queries, headers) — except ``LLMEvent.content`` while a
subscriber explicitly asked for it (:func:`capture_content`, e.g. ``enable_otel(capture_content=True)``).

OpenTelemetry: :mod:`aixpy.telemetry.otel` (extra ``otel``) turns the events into GenAI
semantic-convention spans and metrics.

Who emits them: instrumentation is a policy, so a *wrapper* emits, never a provider —
:class:`~aixpy.llm.policies.InstrumentedModel`, :class:`~aixpy.embeddings.policies.InstrumentedEmbeddings`,
:class:`~aixpy.vectorstores.instrumented.InstrumentedStore` /
:class:`~aixpy.vectorstores.instrumented.InstrumentedCollection`; every agent run emits
:class:`AgentRunEvent`, :class:`AgentStepEvent` and :class:`ToolCallEvent`. With nobody listening (no
subscriber, no ``on_event``) a wrapper calls straight through: no clock read, no event built.

Where this package sits, and HTTP events
    ``aixpy.telemetry`` imports only the standard library and ``aixpy.errors``; it is on the same
    floor as ``aixpy.http``, and the two never import each other. So the HTTP layer keeps its own
    public hook, unchanged: ``HttpClient(on_request=[hook])`` (and every provider's ``on_request=``
    option) still receives :class:`aixpy.http.RequestEvent`. The telemetry *type* of a request,
    :class:`HttpEvent`, lives here; the bridge between the two is an ordinary ``on_request`` hook,
    :class:`~aixpy.telemetry.bridge.HttpBridge`, duck-typed on the ``RequestEvent`` fields, which the
    instrumented wrappers — one floor up, allowed to see both — attach to the HTTP clients of what they
    wrap (:func:`~aixpy.telemetry.bridge.attach_http`). A hook that says it is not ``listening`` is
    skipped by the client, so the bridge costs nothing while nobody listens. Moving ``RequestEvent``
    here instead would make ``http`` import ``telemetry`` (same floor: not allowed); emitting from
    inside providers would put instrumentation in adapters (not allowed either).

Exporters and the ledger
    :func:`enable_prometheus` (extra ``metrics``, :mod:`aixpy.telemetry.prometheus`) subscribes a
    Prometheus collector and can serve ``/metrics``; :mod:`aixpy.telemetry.ledger` stores usage by day,
    provider, model and agent (SQLite or Redis) for budgets, alerts and ``aixpy usage``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aixpy.telemetry.bridge import HttpBridge, attach_http, http_event
from aixpy.telemetry.events import (
    AgentRunEvent,
    AgentStepEvent,
    EmbeddingEvent,
    Event,
    HttpEvent,
    LLMEvent,
    ToolCallEvent,
    VectorStoreEvent,
)
from aixpy.telemetry.hub import (
    Handler,
    Timer,
    capture_content,
    capturing_content,
    emit,
    error_name,
    listening,
    subscribe,
    subscribers,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from aixpy.telemetry.prometheus import PrometheusMetrics


def enable_prometheus(*, registry: CollectorRegistry | None = None, port: int | None = None,
                      addr: str = "127.0.0.1") -> PrometheusMetrics:
    """Turn Prometheus metrics on (extra ``metrics``): see :func:`aixpy.telemetry.prometheus.enable_prometheus`."""
    from aixpy.telemetry import prometheus

    return prometheus.enable_prometheus(registry=registry, port=port, addr=addr)


def disable_prometheus(registry: CollectorRegistry | None = None) -> None:
    """Turn Prometheus metrics off again (see :func:`aixpy.telemetry.prometheus.disable_prometheus`)."""
    from aixpy.telemetry import prometheus

    prometheus.disable_prometheus(registry)

__all__ = [
    "AgentRunEvent",
    "AgentStepEvent",
    "EmbeddingEvent",
    "Event",
    "Handler",
    "HttpBridge",
    "HttpEvent",
    "LLMEvent",
    "Timer",
    "ToolCallEvent",
    "VectorStoreEvent",
    "attach_http",
    "capture_content",
    "capturing_content",
    "disable_prometheus",
    "emit",
    "enable_prometheus",
    "error_name",
    "http_event",
    "listening",
    "subscribe",
    "subscribers",
]
