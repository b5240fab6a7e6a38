"""The OpenTelemetry exporter through the SDK's in-memory span exporter and metric reader: GenAI
semantic-convention names and attributes, metrics, content only when explicitly enabled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aixpy import telemetry
from aixpy.errors import ServerError
from aixpy.llm import TestModel
from aixpy.llm.policies import CachedModel, InstrumentedModel
from aixpy.llm.types import ChatResponse, Usage
from aixpy.telemetry import AgentRunEvent, EmbeddingEvent, ToolCallEvent
from aixpy.telemetry.otel import OTelExporter, enable_otel


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def metrics(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


def answer() -> ChatResponse:
    return ChatResponse(text="Paris", usage=Usage(12, 3), finish_reason="stop")


def test_a_chat_call_becomes_a_genai_span_and_metrics(otel: Otel) -> None:
    exporter = enable_otel(otel.tracer_provider, otel.meter_provider)
    try:
        InstrumentedModel(TestModel(answer(), provider="openai", model="gpt-4o")).chat("capital of France?")
    finally:
        exporter.stop()
    (span,) = otel.spans.get_finished_spans()
    assert span.name == "chat gpt-4o"
    assert span.kind == SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (12, 3)
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["aixpy.attempts"] == 1
    assert attrs["aixpy.cached"] is False
    assert "gen_ai.input.messages" not in attrs          # content is off by default
    assert span.end_time is not None
    assert span.start_time is not None
    assert span.end_time >= span.start_time
    metrics = otel.metrics()
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert dict(duration.attributes) == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                         "gen_ai.request.model": "gpt-4o"}
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in metrics["gen_ai.client.token.usage"]}
    assert tokens == {"input": 12, "output": 3}


def test_a_failed_call_has_error_type_and_an_error_status(otel: Otel) -> None:
    exporter = enable_otel(otel.tracer_provider, otel.meter_provider)
    model = InstrumentedModel(TestModel(ServerError("boom", status_code=503), provider="gemini", model="gemini-2.5"))
    with pytest.raises(ServerError):
        model.chat("hi")
    exporter.stop()
    (span,) = otel.spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ServerError"
    assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
    (duration,) = otel.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "ServerError"


def test_content_is_recorded_only_when_explicitly_enabled(otel: Otel) -> None:
    model = InstrumentedModel(TestModel(answer(), answer(), provider="openai", model="gpt-4o"))
    off = enable_otel(otel.tracer_provider, otel.meter_provider)
    model.chat("secret prompt")
    off.stop()
    on = enable_otel(otel.tracer_provider, otel.meter_provider, capture_content=True)
    assert telemetry.capturing_content()
    with model.stream("capital of France?", system="be brief") as s:
        list(s)
    on.stop()
    assert not telemetry.capturing_content()
    first, second = otel.spans.get_finished_spans()
    assert "secret prompt" not in json.dumps(dict(first.attributes or {}))
    attrs = dict(second.attributes or {})
    assert json.loads(str(attrs["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "capital of France?"}]}]
    assert json.loads(str(attrs["gen_ai.output.messages"])) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris"}], "finish_reason": "stop"}]


def test_cache_hits_are_marked(otel: Otel) -> None:
    exporter = enable_otel(otel.tracer_provider, otel.meter_provider)
    model = InstrumentedModel(CachedModel(TestModel(answer(), provider="openai", model="gpt-4o")))
    model.chat("q", temperature=0)
    model.chat("q", temperature=0)
    exporter.stop()
    miss, hit = otel.spans.get_finished_spans()
    assert miss.attributes is not None
    assert hit.attributes is not None
    assert (miss.attributes["aixpy.cached"], hit.attributes["aixpy.cached"]) == (False, True)
    assert hit.attributes["aixpy.cost_usd"] == 0.0


def test_embeddings_tools_and_agents(otel: Otel) -> None:
    exporter = OTelExporter(otel.tracer_provider, otel.meter_provider).start()
    telemetry.emit(EmbeddingEvent(timestamp=100.0, duration=0.5, provider="openai", model="text-embedding-3-small",
                                  texts=3, tokens=30, dimensions=1536))
    telemetry.emit(ToolCallEvent(timestamp=101.0, duration=0.1, agent="helper", run_id="r1", step=1,
                                 tool="get_weather", call_id="call_1"))
    telemetry.emit(AgentRunEvent(timestamp=99.0, duration=3.0, agent="helper", run_id="r1", stop_reason="final",
                                 steps=2, tool_calls=1, input_tokens=40, output_tokens=9))
    exporter.stop()
    emb, tool, agent = otel.spans.get_finished_spans()
    assert (emb.name, tool.name, agent.name) == ("embeddings text-embedding-3-small", "execute_tool get_weather",
                                                 "invoke_agent helper")
    assert emb.attributes is not None
    assert tool.attributes is not None
    assert agent.attributes is not None
    assert emb.attributes["gen_ai.operation.name"] == "embeddings"
    assert emb.attributes["gen_ai.usage.input_tokens"] == 30
    assert (tool.attributes["gen_ai.tool.name"], tool.attributes["gen_ai.tool.call.id"]) == ("get_weather", "call_1")
    assert tool.kind == SpanKind.INTERNAL
    assert agent.attributes["gen_ai.agent.name"] == "helper"
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert (emb.start_time, emb.end_time) == (100_000_000_000, 100_500_000_000)  # the operation's own times
    ops = {p.attributes["gen_ai.operation.name"] for p in otel.metrics()["gen_ai.client.operation.duration"]}
    assert ops == {"embeddings", "invoke_agent"}


def test_stopped_exporter_receives_nothing(otel: Otel) -> None:
    exporter = enable_otel(otel.tracer_provider, otel.meter_provider)
    exporter.stop()
    exporter.stop()
    InstrumentedModel(TestModel()).chat("hi")
    assert otel.spans.get_finished_spans() == ()
    assert exporter not in telemetry.subscribers()


def test_a_real_agent_run_becomes_invoke_agent_and_execute_tool_spans(otel: Otel) -> None:
    from aixpy.agents import Agent
    from aixpy.llm import ToolCall

    def get_weather(city: str) -> str:
        """Weather."""
        return "sunny"

    ask = ChatResponse(tool_calls=[ToolCall("call_1", "get_weather", {"city": "Paris"})], finish_reason="tool_calls",
                       usage=Usage(10, 2))
    exporter = enable_otel(otel.tracer_provider, otel.meter_provider)
    try:
        Agent("helper", "", TestModel(ask, answer(), provider="openai", model="gpt-4o"), tools=[get_weather]).run("hi")
    finally:
        exporter.stop()
    (tool, agent) = otel.spans.get_finished_spans()
    assert (tool.name, agent.name) == ("execute_tool get_weather", "invoke_agent helper")
    assert tool.attributes is not None
    assert agent.attributes is not None
    assert (tool.attributes["gen_ai.tool.name"], tool.attributes["gen_ai.tool.call.id"]) == ("get_weather", "call_1")
    assert tool.attributes["aixpy.run_id"] == agent.attributes["aixpy.run_id"]
    assert (agent.attributes["gen_ai.usage.input_tokens"], agent.attributes["gen_ai.usage.output_tokens"]) == (22, 5)
    assert (agent.attributes["aixpy.steps"], agent.attributes["aixpy.tool_calls"]) == (2, 1)
    assert agent.attributes["aixpy.stop_reason"] == "final"
    assert "Paris" not in json.dumps(dict(tool.attributes))
    assert agent.start_time is not None
    assert tool.start_time is not None
    assert agent.end_time is not None
    assert tool.end_time is not None
    assert agent.start_time <= tool.start_time <= tool.end_time <= agent.end_time
