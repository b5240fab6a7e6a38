"""The one event model: frozen dataclasses, one per kind of operation, sharing :class:`Event`.

Every event describes one *finished* operation: when it started (``timestamp``, seconds since the
epoch), how long it took (``duration``, seconds) and, when it failed, the class name of the exception
(``error``). An exporter turns an event into a span (start + duration) or metric samples without
asking more.

Fields fall into three groups, named on each class so that exporters never guess:

* ``LABELS`` — *bounded* strings (provider, model, operation, status, error type...), safe as metric
  labels: their number of distinct values is small. :meth:`Event.labels` returns them as strings.
* ``MEASURES`` — numbers to count, sum or histogram (duration, tokens, cost, counts).
  :meth:`Event.measures` returns those that are known (``None`` means unknown, never 0).
* everything else is a free-form *attribute* (an HTTP path, a run id, a step number): fine on a span
  or a log line, never a metric label. :meth:`Event.attributes`.

Content never rides on an event: no prompt, completion, embedded text, document, query vector, tool
argument or result, URL query string or header. Only its size (tokens, texts, counts, bytes). The one
exception is opt-in: ``LLMEvent.content``, filled only while a subscriber asked for content
(:func:`~aixpy.telemetry.hub.capture_content`); it is never a label, measure or attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "AgentRunEvent",
    "AgentStepEvent",
    "EmbeddingEvent",
    "Event",
    "HttpEvent",
    "LLMEvent",
    "ToolCallEvent",
    "VectorStoreEvent",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every event carries. ``kind`` (a class attribute) names the type, e.g. ``"llm.call"``."""

    kind: ClassVar[str] = "event"
    LABELS: ClassVar[tuple[str, ...]] = ("error",)
    MEASURES: ClassVar[tuple[str, ...]] = ("duration",)

    timestamp: float
    duration: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the operation succeeded."""
        return self.error is None

    def labels(self) -> dict[str, str]:
        """The bounded fields as strings (``""`` for unknown), for metric labels."""
        return {name: "" if (v := getattr(self, name)) is None else str(v) for name in self.LABELS}

    def measures(self) -> dict[str, float]:
        """The known numeric fields (booleans as 0/1)."""
        return {name: float(v) for name in self.MEASURES if (v := getattr(self, name)) is not None}

    def attributes(self) -> dict[str, Any]:
        """The free-form fields (neither labels nor measures, nor ``timestamp``)."""
        skip = {"timestamp", "content", *self.LABELS, *self.MEASURES}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMEvent(Event):
    """One chat model call (``operation``: ``chat``, ``stream`` or ``list_models``).

    ``provider``/``model`` name who served the call (after a fallback, the one that answered or was
    tried last). ``attempts`` counts requests actually made (retries included); ``fallbacks`` is how
    far down the fallback chain the serving model is (0: the primary). ``time_to_first_token`` is the
    delay until the first text or tool-call delta of a stream. Tokens and ``cost_usd`` are ``None``
    when the provider reported no usage or the price is unknown. ``completed`` is false for a stream
    the caller stopped reading before its end (not an error). ``events`` counts stream events delivered.
    ``cached`` is true when a response cache answered (no request was made, ``attempts`` is 0 and
    ``cost_usd`` 0; the tokens are those of the call that filled the cache, not spent again).
    ``content`` is ``None`` unless content capture was asked for: then the input and output messages as
    GenAI semantic-convention JSON texts.
    """

    kind: ClassVar[str] = "llm.call"
    LABELS: ClassVar[tuple[str, ...]] = ("provider", "model", "operation", "finish_reason", "error")
    MEASURES: ClassVar[tuple[str, ...]] = (
        "duration", "time_to_first_token", "input_tokens", "output_tokens", "cached_input_tokens",
        "cache_creation_tokens", "reasoning_tokens", "cost_usd", "attempts", "fallbacks")

    provider: str
    model: str
    operation: str
    finish_reason: str | None = None
    time_to_first_token: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    attempts: int = 0
    fallbacks: int = 0
    events: int = 0
    completed: bool = True
    cached: bool = False
    content: tuple[str, str] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingEvent(Event):
    """One embedding call: ``texts`` embedded, ``tokens`` (an estimate when ``tokens_estimated``),
    ``requests`` sent (0 when the provider does not say), ``dimensions`` of the vectors, ``cost_usd``
    (``None`` when the price is unknown)."""

    kind: ClassVar[str] = "embeddings.call"
    LABELS: ClassVar[tuple[str, ...]] = ("provider", "model", "operation", "error")
    MEASURES: ClassVar[tuple[str, ...]] = ("duration", "texts", "tokens", "requests", "cost_usd")

    provider: str
    model: str
    operation: str = "embed"
    texts: int = 0
    tokens: int | None = None
    tokens_estimated: bool = False
    requests: int = 0
    dimensions: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorStoreEvent(Event):
    """One vector-store operation (``upsert``, ``upsert_batch``, ``query``, ``get``, ``delete``, ``count``,
    ``clear``, ``open``, ``list_collections``, ``drop_collection``) on ``collection`` (``None`` for
    store-level operations).

    ``count`` is what the operation touched: documents written (inserted + updated), matches or
    documents returned, documents deleted, documents counted, collections listed, 1/0 for a dropped
    collection. ``requested`` is what was asked for (documents sent, ids asked, the query's limit);
    ``failed``/``deduplicated`` come from an upsert's result.
    """

    kind: ClassVar[str] = "vectorstore.op"
    LABELS: ClassVar[tuple[str, ...]] = ("provider", "collection", "operation", "error")
    MEASURES: ClassVar[tuple[str, ...]] = ("duration", "count", "requested", "failed", "deduplicated")

    provider: str
    operation: str
    collection: str | None = None
    count: int | None = None
    requested: int | None = None
    failed: int | None = None
    deduplicated: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpEvent(Event):
    """One HTTP request (after its body was read or its stream closed). ``path`` never carries the
    query string; it is an attribute, not a label (it may hold ids). ``status`` is ``None`` when no
    response came; ``bytes`` counts body bytes read off the wire."""

    kind: ClassVar[str] = "http.request"
    LABELS: ClassVar[tuple[str, ...]] = ("provider", "model", "method", "host", "status", "error")
    MEASURES: ClassVar[tuple[str, ...]] = ("duration", "bytes")

    provider: str | None
    model: str | None
    method: str
    host: str
    path: str
    status: int | None = None
    bytes: int = 0
    stream: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRunEvent(Event):
    """One agent run from its input to its final answer (or failure). ``stop_reason`` says why it
    ended (e.g. ``final``, ``max_steps``, ``budget``); tokens and cost add up every step."""

    kind: ClassVar[str] = "agent.run"
    LABELS: ClassVar[tuple[str, ...]] = ("agent", "stop_reason", "error")
    MEASURES: ClassVar[tuple[str, ...]] = ("duration", "steps", "tool_calls", "input_tokens", "output_tokens",
                                           "cost_usd")

    agent: str
    run_id: str
    stop_reason: str | None = None
    steps: int = 0
    tool_calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStepEvent(Event):
    """One step of an agent run: one model turn (numbered from 1) and the tool calls it asked for."""

    kind: ClassVar[str] = "agent.step"
    LABELS: ClassVar[tuple[str, ...]] = ("agent", "provider", "model", "error")
    MEASURES: ClassVar[tuple[str, ...]] = ("duration", "tool_calls", "input_tokens", "output_tokens", "cost_usd")

    agent: str
    run_id: str
    step: int
    provider: str | None = None
    model: str | None = None
    tool_calls: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallEvent(Event):
    """One tool executed by an agent (its arguments and result are content: never here)."""

    kind: ClassVar[str] = "agent.tool_call"
    LABELS: ClassVar[tuple[str, ...]] = ("agent", "tool", "error")

    agent: str
    run_id: str
    step: int
    tool: str
    call_id: str | None = None
