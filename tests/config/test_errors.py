"""Every config error names the file, the key path and the exact line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aixpy.config import AixpyConfig, VectorStoreConfig, load_config, load_config_str, parse_config
from aixpy.errors import ConfigError


def vs(cfg: AixpyConfig) -> VectorStoreConfig:
    assert cfg.vectorstore is not None
    return cfg.vectorstore


def fail(yaml_text: str, env: dict[str, str] | None = None, source: str = "cfg.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_str(textwrap.dedent(yaml_text), source, env=env or {})
    return info.value


# ---------------------------------------------------------------- unknown keys


def test_unknown_key_with_suggestion() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            retry:
              max_attempts: 2
              max_backof: 10s
        """)
    assert (err.file, err.path, err.line) == ("cfg.yaml", "agents[0].retry.max_backof", 6)
    assert str(err) == "cfg.yaml:6 agents[0].retry.max_backof: unknown key 'max_backof'; did you mean 'max_backoff'?"


def test_unknown_key_without_close_match_lists_allowed_keys() -> None:
    err = fail("""\
        observability:
          cost_tracking: true
          zzz: 1
        """)
    assert (err.path, err.line) == ("observability.zzz", 3)
    allowed = "cost_tracking, cost_alert_threshold, cost_alert_webhook, llm_observability, metrics, otel, ledger"
    assert f"unknown key 'zzz'; allowed keys: {allowed}" in str(err)


def test_unknown_top_level_key() -> None:
    err = fail("""\
        embeddings:
          provider: local
        vectorstor:
          provider: memory
        """)
    assert (err.path, err.line) == ("vectorstor", 3)
    assert "did you mean 'vectorstore'?" in str(err)


def test_unknown_key_in_store_block() -> None:
    err = fail("""\
        vectorstore:
          provider: qdrant
          qdrant:
            path: ./data
            colection: docs
        """)
    assert (err.path, err.line) == ("vectorstore.qdrant.colection", 5)
    assert "did you mean 'collection'?" in str(err)


# ---------------------------------------------------------------- wrong types and bad values


def test_wrong_type_names_path_line_and_value() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            provider: openai
            max_tokens: lots
        """)
    assert (err.path, err.line) == ("agents[0].max_tokens", 5)
    assert str(err) == (
        "cfg.yaml:5 agents[0].max_tokens: Input should be a valid integer, "
        "unable to parse string as an integer (got 'lots')"
    )


def test_mapping_expected() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            retry: 5
        """)
    assert (err.path, err.line) == ("agents[0].retry", 4)
    assert "expected a mapping (key: value pairs), got an integer" in str(err)


def test_list_expected() -> None:
    err = fail("""\
        agents:
          name: a
        """)
    assert (err.path, err.line) == ("agents", 1)
    assert "expected a list, got a mapping" in str(err)


def test_literal_with_suggestion() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            provider: opneai
        """)
    assert (err.path, err.line) == ("agents[0].provider", 4)
    assert "(got 'opneai'); did you mean 'openai'?" in str(err)


def test_range_error() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            temperature: 2.5
        """)
    assert (err.path, err.line) == ("agents[0].temperature", 4)
    assert "less than or equal to 2 (got 2.5)" in str(err)


def test_bad_duration() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            timeout: soon
        """)
    assert (err.path, err.line) == ("agents[0].timeout", 4)
    assert "invalid duration 'soon'" in str(err)


def test_backoff_order_points_at_max_backoff() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            retry:
              initial_backoff: 5s
              max_backoff: 2s
        """)
    assert (err.path, err.line) == ("agents[0].retry.max_backoff", 6)
    assert "max_backoff (2s) is shorter than initial_backoff (5s)" in str(err)


def test_missing_required_key_points_at_parent() -> None:
    err = fail("""\
        vectorstore:
          provider: pgvector
          pgvector:
            table: docs
        """)
    assert (err.path, err.line) == ("vectorstore.pgvector.connection_string", 3)
    assert "missing required key 'connection_string'" in str(err)


def test_store_block_required_by_provider() -> None:
    err = fail("""\
        embeddings:
          model: x
        vectorstore:
          provider: firestore
        """)
    # Two problems: both reported, the first one (by line) in the error's path/line.
    assert (err.path, err.line) == ("embeddings.model", 2)
    assert "cfg.yaml:3 vectorstore: provider 'firestore' needs a firestore: block" in str(err)
    assert "1 more problem(s)" in str(err)


def test_union_errors_are_merged() -> None:
    err = fail("""\
        embeddings:
          provider: huggingface_tei
          huggingface_tei:
            endpoint: 8080
        """)
    assert (err.path, err.line) == ("embeddings.huggingface_tei.endpoint", 4)
    assert "expected a string, got an integer or expected a list, got an integer" in str(err)


def test_several_problems_are_all_listed() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            temperature: 5
            max_tokens: 0
            foo: 1
        """)
    assert (err.path, err.line) == ("agents[0].temperature", 4)
    text = str(err)
    assert "2 more problem(s)" in text
    assert "cfg.yaml:5 agents[0].max_tokens: Input should be greater than 0 (got 0)" in text
    assert "cfg.yaml:6 agents[0].foo: unknown key 'foo'" in text


# ---------------------------------------------------------------- agent rules and references


def test_agent_needs_model_or_providers() -> None:
    err = fail("""\
        agents:
          - name: ok
            model: gpt-4
          - name: empty
            role: react
        """)
    assert (err.path, err.line) == ("agents[1].model", 4)
    assert "needs either 'model'" in str(err)


def test_agent_model_and_providers_conflict() -> None:
    err = fail("""\
        agents:
          - name: a
            provider: openai
            providers:
              - model: gpt-4
        """)
    assert (err.path, err.line) == ("agents[0].provider", 3)
    assert "cannot be used together with 'providers:'" in str(err)


def test_empty_providers_list() -> None:
    err = fail("""\
        agents:
          - name: a
            providers: []
        """)
    assert (err.path, err.line) == ("agents[0].providers", 3)


def test_duplicate_agent_names() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
          - name: b
            model: gpt-4
          - name: a
            model: claude-3-haiku
        """)
    assert (err.path, err.line) == ("agents[2].name", 6)
    assert "agent name 'a' is already used by agents[0]" in str(err)


def test_duplicate_model_service_names() -> None:
    err = fail("""\
        model_services:
          - name: local
            model: phi3
          - name: local
            model: llama3
        """)
    assert (err.path, err.line) == ("model_services[1].name", 4)


def test_unknown_model_service_reference() -> None:
    err = fail("""\
        model_services:
          - name: phi-local
            model: phi3.5
        agents:
          - name: a
            model: phi-locl
        """)
    assert (err.path, err.line) == ("agents[0].model", 6)
    assert "'phi-locl' is not a model_services name" in str(err)
    assert "did you mean 'phi-local'?" in str(err)


def test_unknown_reference_inside_providers() -> None:
    err = fail("""\
        agents:
          - name: a
            providers:
              - model: gpt-4
              - model: my-llm
        """)
    assert (err.path, err.line) == ("agents[0].providers[1].model", 5)


def test_bad_address_url() -> None:
    err = fail("""\
        model_services:
          - name: s
            model: m
            config:
              address: localhost:11434
              timeout: 10s
        """)
    assert (err.path, err.line) == ("model_services[0].config.address", 5)
    assert "expected an http(s) URL" in str(err)


def test_duplicate_tool() -> None:
    err = fail("""\
        agents:
          - name: a
            model: gpt-4
            tools:
              - search
              - name: search
        """)
    assert (err.path, err.line) == ("agents[0].tools[1].name", 6)


# ---------------------------------------------------------------- YAML syntax, files, dict input


def test_yaml_syntax_error_has_line() -> None:
    err = fail("""\
        agents:
          - name: a
           model: x
        """)
    assert (err.file, err.line) == ("cfg.yaml", 3)
    assert str(err).startswith("cfg.yaml:3: invalid YAML: ")


def test_top_level_must_be_mapping() -> None:
    err = fail("- agents\n")
    assert err.line == 1
    assert "top level must be a mapping" in str(err)


def test_two_documents_rejected() -> None:
    err = fail("agents: []\n---\nagents: []\n")
    assert err.line == 2
    assert "expected a single document" in str(err)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.file == str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        load_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"agents:\n  - name: \xff\n")
    with pytest.raises(ConfigError, match="not valid UTF-8") as info:
        load_config(bad)
    assert info.value.line == 2


def test_file_path_is_in_message(tmp_path: Path) -> None:
    path = tmp_path / "aixpy.yaml"
    path.write_text("agents:\n  - name: a\n    modle: gpt-4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:3 agents[0].modle: unknown key 'modle'; did you mean 'model'?")


def test_parse_config_dict_has_paths_but_no_lines() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"agents": [{"name": "a", "model": "gpt-4", "retry": {"multiplier": 0.5}}]})
    err = info.value
    assert (err.file, err.path, err.line) == (None, "agents[0].retry.multiplier", None)
    assert str(err).startswith("agents[0].retry.multiplier: Input should be greater than or equal to 1")


def test_parse_config_ok_and_not_a_mapping() -> None:
    cfg = parse_config({"vectorstore": {"provider": "memory", "embedding_dimensions": 384}})
    assert vs(cfg).embedding_dimensions == 384
    assert parse_config(None).agents == []
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config([1, 2])  # type: ignore[arg-type]
