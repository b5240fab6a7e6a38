"""The Prometheus exporter read back through its exposition text: the guide's latency histogram, tokens,
cost, errors by type, retries, fallbacks, time to first token, embeddings, vector stores and agents;
bounded labels; the HTTP endpoint and the WSGI/ASGI apps; and config-built agents with metrics on."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from aixpy import telemetry
from aixpy.errors import RateLimitError
from aixpy.llm import ManualClock, TestModel
from aixpy.llm.policies import FallbackModel, InstrumentedModel, RetryModel, RetryPolicy
from aixpy.telemetry import AgentRunEvent, EmbeddingEvent, ToolCallEvent, VectorStoreEvent
from aixpy.telemetry.prometheus import PrometheusMetrics


@pytest.fixture
def metrics() -> Iterator[PrometheusMetrics]:
    m = PrometheusMetrics(CollectorRegistry())
    m.subscribe()
    yield m
    m.unsubscribe()
    m.stop_http_servers()


def samples(m: PrometheusMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: PrometheusMetrics, name: str, **labels: str) -> float:
    return samples(m).get((name, frozenset(labels.items())), 0.0)


GPT = {"provider": "openai", "model": "gpt-4o-mini"}


def test_llm_calls_fill_the_guides_histogram_tokens_cost_and_errors(metrics: PrometheusMetrics) -> None:
    model = InstrumentedModel(TestModel("one two three", RateLimitError("no", provider="openai"),
                                        provider="openai", model="gpt-4o-mini"))
    model.chat("a b c d")
    with pytest.raises(RateLimitError):
        model.chat("x")
    assert value(metrics, "llm_provider_latency_seconds_count", **GPT) == 2
    assert value(metrics, "llm_provider_latency_seconds_bucket", **GPT, le="+Inf") == 2
    assert value(metrics, "llm_requests_total", **GPT, operation="chat", outcome="ok") == 1
    assert value(metrics, "llm_errors_total", **GPT, error="RateLimitError") == 1
    assert value(metrics, "llm_tokens_total", **GPT, type="input") == 4
    assert value(metrics, "llm_tokens_total", **GPT, type="output") == 3
    assert value(metrics, "llm_cost_usd_total", **GPT) == pytest.approx(4 * 0.15e-6 + 3 * 0.6e-6)
    text = metrics.exposition().decode()
    assert "a b c d" not in text
    assert "one two three" not in text


def test_retries_fallbacks_and_time_to_first_token(metrics: PrometheusMetrics) -> None:
    clock = ManualClock()
    primary = TestModel(RateLimitError("no", provider="openai"), provider="openai", model="gpt-4o-mini", default=None)
    backup = TestModel(["hel", "lo"], provider="anthropic", model="claude-haiku-4-5")
    model = InstrumentedModel(RetryModel(FallbackModel([primary, backup], clock=clock),
                                         RetryPolicy(max_attempts=2), clock=clock))
    with model.stream("hi") as s:
        s.get_response()
    claude = {"provider": "anthropic", "model": "claude-haiku-4-5"}
    assert value(metrics, "llm_fallbacks_total", **claude) == 1
    assert value(metrics, "llm_retries_total", **claude) == 1          # 2 requests: primary, then backup
    assert value(metrics, "llm_time_to_first_token_seconds_count", **claude) == 1
    assert value(metrics, "llm_requests_total", **claude, operation="stream", outcome="ok") == 1


def test_embeddings_vectorstores_and_agents(metrics: PrometheusMetrics) -> None:
    telemetry.emit(EmbeddingEvent(timestamp=0, duration=0.01, provider="openai", model="text-embedding-3-small",
                                  texts=3, tokens=30, cost_usd=0.001))
    telemetry.emit(EmbeddingEvent(timestamp=0, duration=0.01, provider="openai", model="text-embedding-3-small",
                                  error="ServerError"))
    telemetry.emit(VectorStoreEvent(timestamp=0, duration=0.002, provider="qdrant", operation="query",
                                    collection="user-private-name", count=5))
    telemetry.emit(AgentRunEvent(timestamp=0, duration=1.5, agent="support", run_id="r-123", stop_reason="final",
                                 steps=2))
    telemetry.emit(ToolCallEvent(timestamp=0, duration=0.1, agent="support", run_id="r-123", step=1, tool="search"))
    emb = {"provider": "openai", "model": "text-embedding-3-small"}
    assert value(metrics, "embedding_latency_seconds_count", **emb) == 2
    assert value(metrics, "embedding_texts_total", **emb) == 3
    assert value(metrics, "embedding_tokens_total", **emb) == 30
    assert value(metrics, "embedding_cost_usd_total", **emb) == pytest.approx(0.001)
    assert value(metrics, "embedding_errors_total", **emb, error="ServerError") == 1
    assert value(metrics, "vectorstore_operation_seconds_count", provider="qdrant", operation="query") == 1
    assert value(metrics, "agent_runs_total", agent="support", stop_reason="final", error="") == 1
    assert value(metrics, "agent_run_seconds_count", agent="support") == 1
    assert value(metrics, "agent_tool_calls_total", agent="support", tool="search", error="") == 1
    text = metrics.exposition().decode()
    assert "user-private-name" not in text
    assert "r-123" not in text


def test_label_values_are_bounded() -> None:
    m = PrometheusMetrics(CollectorRegistry(), max_label_values=3)
    for i in range(10):
        m(telemetry.LLMEvent(timestamp=0, duration=0.1, provider="openai", model=f"m{i}", operation="chat"))
    models = {dict(k[1]).get("model") for k in samples(m) if k[0] == "llm_provider_latency_seconds_count"}
    assert models == {"m0", "m1", "m2", "other"}
    assert value(m, "llm_provider_latency_seconds_count", provider="openai", model="other") == 7


def test_http_server_wsgi_and_asgi_apps_serve_the_exposition(metrics: PrometheusMetrics) -> None:
    InstrumentedModel(TestModel(provider="openai", model="gpt-4o-mini")).chat("hi")
    host, port = metrics.start_http_server(0)
    assert host == "127.0.0.1"
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'llm_provider_latency_seconds_count{model="gpt-4o-mini",provider="openai"} 1.0' in body

    got: list[bytes] = []
    status: list[str] = []
    wsgi_body = b"".join(metrics.wsgi_app()({"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""},
                                            lambda s, h: status.append(s)))
    assert status[0].startswith("200")
    assert b"llm_provider_latency_seconds_count" in wsgi_body

    async def asgi() -> None:
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
        await metrics.asgi_app()(scope, receive, send)
        got.extend(m["body"] for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]

    asyncio.run(asgi())
    assert b"llm_provider_latency_seconds_count" in b"".join(got)


def test_enable_prometheus_is_one_call_and_idempotent() -> None:
    registry = CollectorRegistry()
    m = telemetry.enable_prometheus(registry=registry)
    try:
        assert telemetry.enable_prometheus(registry=registry) is m
        assert telemetry.subscribers() == (m,)
        InstrumentedModel(TestModel(provider="openai", model="gpt-4o-mini")).chat("hi")
        assert value(m, "llm_provider_latency_seconds_count", **GPT) == 1
    finally:
        telemetry.disable_prometheus(registry)
    assert telemetry.subscribers() == ()


def test_nothing_is_recorded_while_unsubscribed(metrics: PrometheusMetrics) -> None:
    metrics.unsubscribe()
    InstrumentedModel(TestModel(provider="openai", model="gpt-4o-mini")).chat("hi")
    assert value(metrics, "llm_provider_latency_seconds_count", **GPT) == 0


def test_a_real_agent_run_feeds_the_agent_metrics(metrics: PrometheusMetrics) -> None:
    from aixpy.agents import Agent
    from aixpy.llm import ChatResponse, ToolCall

    def search(query: str) -> str:
        """Search."""
        return "found"

    def broken(query: str) -> str:
        """Fails."""
        raise KeyError(query)

    ask = ChatResponse(tool_calls=[ToolCall("c1", "search", {"query": "q"}), ToolCall("c2", "broken", {"query": "q"})],
                       finish_reason="tool_calls")
    Agent("support", "", TestModel(ask, "done", **GPT), tools=[search, broken]).run("help me")
    assert value(metrics, "agent_runs_total", agent="support", stop_reason="final", error="") == 1
    assert value(metrics, "agent_run_seconds_count", agent="support") == 1
    assert value(metrics, "agent_steps_total", agent="support") == 2
    assert value(metrics, "agent_tool_calls_total", agent="support", tool="search", error="") == 1
    assert value(metrics, "agent_tool_calls_total", agent="support", tool="broken", error="KeyError") == 1
