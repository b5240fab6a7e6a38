"""Secrets never show in repr, str, error messages, tracebacks or dumps."""

from __future__ import annotations

import textwrap
import traceback

import pytest

from aixpy.config import AixpyConfig, VectorStoreConfig, load_config_str, parse_config
from aixpy.errors import ConfigError


def vs(cfg: AixpyConfig) -> VectorStoreConfig:
    assert cfg.vectorstore is not None
    return cfg.vectorstore


KEY = "sk-proj-SECRETabcdef0123456789"
PG = "postgresql://app:Sup3rS3cretPw@db.internal/rag"
ENV = {"OPENAI_API_KEY": KEY, "PG_DSN": PG, "HF_TOKEN": "hf_SECRETabcdef0123"}
SECRETS = [KEY, "Sup3rS3cretPw", "hf_SECRETabcdef0123"]

CONFIG = """\
agents:
  - name: a
    model: gpt-4
    provider: openai
    api_key: ${OPENAI_API_KEY}
    endpoint: https://proxy:Sup3rS3cretPw@llm.internal/v1
  - name: b
    providers:
      - model: claude-3-haiku
        api_key: ${OPENAI_API_KEY}
embeddings:
  provider: huggingface
  huggingface:
    model: BAAI/bge-small-en-v1.5
    api_key: ${HF_TOKEN}
vectorstore:
  provider: pgvector
  pgvector:
    connection_string: ${PG_DSN}
"""


def everything_shown(err: BaseException) -> str:
    return "\n".join([str(err), repr(err), "".join(traceback.format_exception(err))])


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def cfg() -> AixpyConfig:
    return load_config_str(CONFIG, env=ENV)


def test_values_are_loaded(cfg: AixpyConfig) -> None:
    assert cfg.agents[0].api_key is not None
    assert cfg.agents[0].api_key.get_secret_value() == KEY
    pg = vs(cfg).pgvector
    assert pg is not None
    assert pg.connection_string.get_secret_value() == PG


def test_repr_and_str(cfg: AixpyConfig) -> None:
    assert_clean(repr(cfg))
    assert_clean(str(cfg))
    assert_clean(repr(cfg.agents[0]))
    assert_clean(repr(cfg.agents[1].provider_entries))
    assert "https://proxy:***@llm.internal/v1" in repr(cfg.agents[0])


def test_redacted_dict_and_dump(cfg: AixpyConfig) -> None:
    data = cfg.redacted_dict()
    assert data["agents"][0]["api_key"] == "**********"
    assert data["agents"][0]["endpoint"] == "https://proxy:***@llm.internal/v1"
    assert data["vectorstore"]["pgvector"]["connection_string"] == "**********"
    assert_clean(str(data))
    dumped = cfg.dump_yaml()
    assert_clean(dumped)
    assert "api_key: '**********'" in dumped


def test_dump_reloads_to_same_shape(cfg: AixpyConfig) -> None:
    again = load_config_str(cfg.dump_yaml(exclude_defaults=True))
    assert again.redacted_dict() == cfg.redacted_dict()


def test_secret_as_the_bad_value_of_a_secret_field() -> None:
    text = "agents:\n  - name: a\n    model: gpt-4\n    api_key:\n      - ${OPENAI_API_KEY}\n"
    with pytest.raises(ConfigError) as info:
        load_config_str(text, env=ENV)
    assert (info.value.path, info.value.line) == ("agents[0].api_key", 4)
    assert_clean(everything_shown(info.value))


def test_secret_pasted_into_a_non_secret_field() -> None:
    text = "agents:\n  - name: a\n    model: gpt-4\n    provider: ${OPENAI_API_KEY}\n"
    with pytest.raises(ConfigError) as info:
        load_config_str(text, env=ENV)
    assert info.value.path == "agents[0].provider"
    assert "(got '***')" in str(info.value)
    assert_clean(everything_shown(info.value))


def test_literal_secret_in_wrong_place_is_redacted() -> None:
    text = textwrap.dedent("""\
        agents:
          - name: a
            model: gpt-4
            api_key: zq8-literal-secret-value
            endpoint: zq8-literal-secret-value
        """)
    with pytest.raises(ConfigError) as info:
        load_config_str(text)
    assert info.value.path == "agents[0].endpoint"
    assert "zq8-literal-secret-value" not in everything_shown(info.value)


def test_url_password_in_error_is_redacted() -> None:
    text = "model_services:\n  - name: s\n    model: m\n    config:\n      address: ftp://u:Sup3rS3cretPw@h\n"
    with pytest.raises(ConfigError) as info:
        load_config_str(text)
    assert info.value.path == "model_services[0].config.address"
    assert_clean(everything_shown(info.value))


def test_secret_in_yaml_syntax_error_line_not_quoted() -> None:
    text = f"agents:\n  - name: a\n    api_key: {KEY}: oops\n"
    with pytest.raises(ConfigError) as info:
        load_config_str(text)
    assert info.value.line == 3
    assert_clean(everything_shown(info.value))


def test_validation_error_not_chained() -> None:
    text = "agents:\n  - name: a\n    model: gpt-4\n    api_key: ${OPENAI_API_KEY}\n    temperature: hot\n"
    with pytest.raises(ConfigError) as info:
        load_config_str(text, env=ENV)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert_clean(everything_shown(info.value))


def test_parse_config_redacts_dict_secrets() -> None:
    data = {"agents": [{"name": "a", "model": "gpt-4", "api_key": KEY, "provider": KEY}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.path == "agents[0].provider"
    assert_clean(everything_shown(info.value))
