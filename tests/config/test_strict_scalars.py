"""Issue 13 item 6: numbers must be numbers, booleans booleans, and errors never copy a huge value.

YAML 1.1 reads ``yes``/``no``/``on``/``off``/``true`` as booleans; pydantic's lax mode made them 1/0
(``retry.max_attempts: on`` silently turned retries off). Strings still convert, because ``${VAR}``
substitution yields strings (``embedding_dimensions: ${DIMS}`` is documented).
"""

from __future__ import annotations

import pytest

from aixpy.config import (
    EmbeddingsRetryConfig,
    LocalEmbeddingsConfig,
    ObservabilityConfig,
    QdrantStoreConfig,
    RetryConfig,
    VectorStoreConfig,
    load_config_str,
)
from aixpy.errors import ConfigError


def error_of(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_str(text, "cfg.yaml", env=env or {})
    return info.value


@pytest.mark.parametrize(("text", "path"), [
    ("vectorstore:\n  embedding_dimensions: true\n", "vectorstore.embedding_dimensions"),
    ("agents:\n  - {name: a, model: gpt-4o, retry: {max_attempts: on}}\n", "agents[0].retry.max_attempts"),
    ("agents:\n  - {name: a, model: gpt-4o, max_tokens: yes}\n", "agents[0].max_tokens"),
    ("embeddings:\n  retry: {max_attempts: off}\n", "embeddings.retry.max_attempts"),
    ("vectorstore:\n  qdrant: {path: ./q, port: true}\n", "vectorstore.qdrant.port"),
    ("agents:\n  - {name: a, model: gpt-4o, temperature: true}\n", "agents[0].temperature"),
    ("embeddings:\n  rate_limit: {requests_per_second: yes}\n", "embeddings.rate_limit.requests_per_second"),
    ("embeddings:\n  openai: {timeout: on}\n", "embeddings.openai.timeout"),
    ("observability:\n  cost_alert_threshold: true\n", "observability.cost_alert_threshold"),
])
def test_a_yaml_boolean_is_not_a_number(text: str, path: str) -> None:
    err = error_of(text)
    assert err.path == path
    assert "got a boolean" in str(err)


@pytest.mark.parametrize(("text", "path"), [
    ("agents:\n  - {name: a, model: gpt-4o, retry: {jitter: 1}}\n", "agents[0].retry.jitter"),
    ("embeddings:\n  local: {quantize: 0}\n", "embeddings.local.quantize"),
    ("observability:\n  metrics: {enabled: 'yes'}\n", "observability.metrics.enabled"),
    ("vectorstore:\n  qdrant: {url: 'http://q', prefer_grpc: 'on'}\n", "vectorstore.qdrant.prefer_grpc"),
])
def test_a_number_or_a_word_is_not_a_boolean(text: str, path: str) -> None:
    err = error_of(text)
    assert err.path == path
    assert "expected a boolean" in str(err)


def test_an_integer_field_refuses_a_float() -> None:
    assert error_of("embeddings:\n  local: {batch_size: 64.0}\n").path == "embeddings.local.batch_size"


def test_what_the_docs_write_still_loads() -> None:
    cfg = load_config_str(
        """
embeddings:
  local: {batch_size: 64, quantize: true}
  retry: {max_attempts: 4, initial_backoff: 500ms, max_backoff: 2, multiplier: 2}
  cache: {ttl: 86400}
  openai: {timeout: 30s}
vectorstore:
  embedding_dimensions: ${DIMS}
  qdrant: {path: ./q, prefer_grpc: "${GRPC:-false}", timeout: 5}
agents:
  - {name: a, model: gpt-4o, temperature: 0, max_tokens: "${MAX_TOKENS:-512}",
     retry: {max_attempts: 3, jitter: true, multiplier: 1}}
observability: {cost_alert_threshold: 100, metrics: {enabled: false, port: "9100"}}
""", env={"DIMS": "384"})
    assert cfg.vectorstore is not None
    assert cfg.vectorstore.embedding_dimensions == 384
    assert cfg.vectorstore.qdrant is not None
    assert cfg.vectorstore.qdrant.prefer_grpc is False
    assert cfg.agents[0].max_tokens == 512
    assert cfg.agents[0].temperature == 0.0
    assert cfg.observability.metrics.port == 9100
    assert cfg.embeddings is not None
    assert cfg.embeddings.retry is not None
    assert cfg.embeddings.retry.initial_backoff == 0.5
    assert cfg.embeddings.retry.max_backoff == 2.0


def test_models_built_in_python_are_strict_too() -> None:
    with pytest.raises(ValueError, match="got a boolean"):
        RetryConfig(max_attempts=True)
    with pytest.raises(ValueError, match="got a boolean"):
        EmbeddingsRetryConfig(multiplier=True)
    with pytest.raises(ValueError, match="got a boolean"):
        VectorStoreConfig(embedding_dimensions=True)
    with pytest.raises(ValueError, match="expected a boolean"):
        LocalEmbeddingsConfig(quantize=1)
    with pytest.raises(ValueError, match="expected a boolean"):
        ObservabilityConfig(cost_tracking="yes")
    assert QdrantStoreConfig(path="q", https="true").https is True   # ${VAR} text "true"/"false" converts


BIG = "x" * 1_000_000


@pytest.mark.parametrize("text", [
    f"vectorstore: {{embedding_dimensions: '{BIG}'}}",
    f"vectorstore: {{metric: '{BIG}'}}",
    f"vectorstore: {{provider: '{BIG}'}}",
    f"embeddings: {{provider: '{BIG}'}}",
    f"agents: [{{name: a, model: gpt-4o, timeout: '{BIG}'}}]",
    f"agents: [{{name: a, model: gpt-4o, endpoint: '{BIG}'}}]",
    f"agents: [{{name: a, model: '{BIG}'}}]",
    f"agents: [{{name: a, model: gpt-4o, tools: ['{BIG}', '{BIG}']}}]",
    f"agents: [{{name: '{BIG}', model: gpt-4o}}, {{name: '{BIG}', model: gpt-4o}}]",
    f"embeddings: {{local: {{'{BIG}': 1}}}}",
    f"observability: {{metrics: {{path: '{BIG}'}}}}",
    f"x: '${{{BIG}}}'",
    f"x: '${{{BIG[:1000]}-}}'",
    f"embeddings: {{local: {{batch_size: {'9' * 100_000}}}}}",
    f"{BIG}: 1\n{BIG}: 2\n",
    f"vectorstore: {{qdrant: {{path: a, url: '{BIG}'}}}}",
])
def test_a_huge_value_is_not_copied_into_the_error(text: str) -> None:
    err = error_of(text)
    assert len(str(err)) < 1000, str(err)[:2000]
