"""The LLM-side models, durations, and the public surface of ``aixpy.config``."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from pydantic import ValidationError

import aixpy.config as config_pkg
from aixpy.config import (
    AgentConfig,
    AixpyConfig,
    MetricsConfig,
    ModelServiceConfig,
    RetryConfig,
    format_duration,
    infer_provider,
    load_config_str,
    parse_duration,
)
from aixpy.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1),
        ("500ms", 0.5),
        ("2m", 120),
        ("1h", 3600),
        ("1m30s", 90),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        (" 10s ", 10),
        ("300", 300),
        (5, 5),
        (2.5, 2.5),
        (0, 0),
        (timedelta(seconds=3), 3),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "soon", "1d", "10 s", "s", "-1s", -1, True, None, [1], "nan", "inf"])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.5, "500ms"), (1, "1s"), (90, "1m30s"), (3600, "1h"), (3725, "1h2m5s"), (1.25, "1.25s")],
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4-turbo", "openai"),
        ("o1-mini", "openai"),
        ("claude-3-haiku", "anthropic"),
        ("gemini-1.5-flash", "gemini"),
        ("grok-beta", "xai"),
        ("meta-llama/Llama-2-70b-chat-hf", "huggingface"),
        ("phi-local", None),
        ("llama3.1:8b", "ollama"),
        ("openai:gpt-4o", "openai"),
        ("gpt-oss:20b", "ollama"),
        ("o1x", None),
    ],
)
def test_infer_provider(model: str, provider: str | None) -> None:
    assert infer_provider(model) == provider


def test_retry_defaults_and_bounds() -> None:
    retry = RetryConfig()
    assert retry.max_attempts == 3
    assert retry.multiplier == 2.0
    assert retry.initial_backoff == timedelta(seconds=1)
    assert retry.max_backoff == timedelta(seconds=30)
    assert retry.retry_on == ["rate_limit", "timeout", "server_error", "connection"]
    for bad in (
        {"max_attempts": 0},
        {"multiplier": 0.9},
        {"retry_on": ["sometimes"]},
        {"initial_backoff": "5s", "max_backoff": "1s"},
    ):
        with pytest.raises(ValidationError):
            RetryConfig.model_validate(bad)
    same = RetryConfig.model_validate({"initial_backoff": "2s", "max_backoff": "2s"})
    assert same.max_backoff == timedelta(seconds=2)


def test_agent_shorthands_for_tools_inputs_outputs() -> None:
    agent = AgentConfig.model_validate(
        {
            "name": "a",
            "model": "gpt-4",
            "tools": [
                "search",
                {
                    "name": "calc",
                    "description": "math",
                    "input_schema": {"type": "object", "properties": {"x": {"type": "number"}}},
                },
            ],
            "inputs": ["producer", {"source": "other"}],
            "outputs": ["logger", {"target": "remote", "addr": "localhost:50051"}],
            "mcp_servers": ["fs"],
            "interval": "1s",
        }
    )
    assert [t.name for t in agent.tools] == ["search", "calc"]
    assert agent.tools[0].input_schema == {"type": "object", "properties": {}}
    assert [i.source for i in agent.inputs] == ["producer", "other"]
    assert agent.outputs[1].addr == "localhost:50051"
    assert agent.interval == timedelta(seconds=1)


def test_single_model_agent_has_one_provider_entry() -> None:
    agent = AgentConfig.model_validate(
        {"name": "a", "model": "gpt-4", "provider": "openai", "api_key": "k", "temperature": 0.2}
    )
    (entry,) = agent.provider_entries
    assert (entry.model, entry.provider, entry.temperature) == ("gpt-4", "openai", 0.2)
    assert entry.api_key is not None
    assert entry.api_key.get_secret_value() == "k"


def test_models_are_frozen() -> None:
    agent = AgentConfig.model_validate({"name": "a", "model": "gpt-4"})
    with pytest.raises(ValidationError):
        agent.name = "b"  # type: ignore[misc]


def test_model_service_defaults_and_quantization() -> None:
    svc = ModelServiceConfig.model_validate({"name": "s", "model": "m"})
    assert (svc.provider, svc.runtime, svc.transport) == ("huggingface", "ollama", "local")
    assert svc.config.timeout == timedelta(minutes=5)
    assert svc.config.address is None
    with pytest.raises(ConfigError) as info:
        load_config_str("model_services:\n  - name: s\n    model: m\n    config:\n      quantization: q4\n")
    assert (info.value.path, info.value.line) == ("model_services[0].config.quantization", 5)
    with pytest.raises(ConfigError) as info:
        load_config_str("model_services:\n  - name: s\n    model: m\n    config:\n      threads: 4\n")
    assert "unknown key 'threads'; allowed keys: address, quantization, timeout" in str(info.value)


def test_agent_may_reference_model_service() -> None:
    cfg = load_config_str(
        "model_services:\n  - name: local\n    model: llama3.1:8b\n"
        "agents:\n  - name: a\n    model: local\n  - name: b\n    providers:\n      - model: local\n"
    )
    assert cfg.model_service("local") is not None
    assert cfg.model_service("nope") is None
    with pytest.raises(KeyError):
        cfg.agent("nope")


def test_metrics_block() -> None:
    cfg = load_config_str("observability:\n  metrics:\n    enabled: true\n    port: 9464\n")
    assert cfg.observability.metrics == MetricsConfig(enabled=True, port=9464)
    assert cfg.observability.metrics.path == "/metrics"
    assert cfg.observability.metrics.host == "127.0.0.1"
    for bad, path in (("port: 70000", "port"), ("path: metrics", "path"), ("enabled: maybe", "enabled")):
        with pytest.raises(ConfigError) as info:
            load_config_str(f"observability:\n  metrics:\n    {bad}\n")
        assert (info.value.path, info.value.line) == (f"observability.metrics.{path}", 3)


def test_cost_alert_threshold_not_negative() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str("observability:\n  cost_alert_threshold: -1\n")
    assert (info.value.path, info.value.line) == ("observability.cost_alert_threshold", 2)


def test_redacted_dict_durations_are_readable() -> None:
    cfg = load_config_str(
        "agents:\n  - name: a\n    model: gpt-4\n    timeout: 90\n    retry:\n      initial_backoff: 250ms\n"
    )
    agent = cfg.redacted_dict(exclude_defaults=True)["agents"][0]
    assert agent["timeout"] == "1m30s"
    assert agent["retry"] == {"initial_backoff": "250ms"}


def test_public_surface() -> None:
    for name in config_pkg.__all__:
        assert hasattr(config_pkg, name), name
    for name in (
        "AixpyConfig",
        "load_config",
        "load_config_str",
        "parse_config",
        "find_config",
        "AgentConfig",
        "ProviderEntry",
        "RetryConfig",
        "ModelServiceConfig",
        "ObservabilityConfig",
        "EmbeddingsConfig",
        "VectorStoreConfig",
        "SessionsConfig",
    ):
        assert name in config_pkg.__all__
    assert AixpyConfig.model_fields.keys() == {
        "agents",
        "model_services",
        "embeddings",
        "vectorstore",
        "observability",
        "serve",
        "sessions",
    }


def test_import_is_light() -> None:
    code = "import sys, aixpy.config; print('yaml' in sys.modules, 'httpx' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
