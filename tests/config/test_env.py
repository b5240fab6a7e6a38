"""``${VAR}`` / ``${VAR:-default}`` / ``$$`` substitution in string values."""

from __future__ import annotations

import textwrap

import pytest

from aixpy.config import AixpyConfig, VectorStoreConfig, load_config_str
from aixpy.errors import ConfigError


def vs(cfg: AixpyConfig) -> VectorStoreConfig:
    assert cfg.vectorstore is not None
    return cfg.vectorstore


def load(text: str, env: dict[str, str]) -> AixpyConfig:
    return load_config_str(textwrap.dedent(text), "cfg.yaml", env=env)


def prompt_of(value: str, env: dict[str, str]) -> str | None:
    cfg = load_config_str(f"agents:\n  - name: a\n    model: gpt-4\n    prompt: '{value}'\n", env=env)
    return cfg.agents[0].prompt


def test_set_variable() -> None:
    cfg = load(
        """\
        agents:
          - name: a
            model: gpt-4
            api_key: ${KEY}
        """,
        {"KEY": "sk-abc123456789"},
    )
    key = cfg.agents[0].api_key
    assert key is not None
    assert key.get_secret_value() == "sk-abc123456789"


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A}${B}/${A}", {"A": "1", "B": "2"}, "12/1"),
        ("${MISSING:-fallback}", {}, "fallback"),
        ("${EMPTY:-fallback}", {"EMPTY": ""}, "fallback"),  # like the shell: empty uses the default
        ("${EMPTY}x", {"EMPTY": ""}, "x"),
        ("${MISSING:-}", {}, ""),
        ("${A:-d}", {"A": "set"}, "set"),
        ("${D:-http://h:1/p}", {}, "http://h:1/p"),
        ("cost $$5", {}, "cost $5"),
        ("$${NOT_A_VAR}", {}, "${NOT_A_VAR}"),
        ("$$${A}", {"A": "x"}, "$x"),
        ("$$$${A}", {"A": "x"}, "$${A}"),
        ("$5 and $ alone", {}, "$5 and $ alone"),
    ],
)
def test_substitution_forms(value: str, env: dict[str, str], expected: str) -> None:
    assert prompt_of(value, env) == expected


def test_missing_variable_names_var_path_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            """\
            agents:
              - name: a
                model: gpt-4
                provider: openai
                api_key: ${OPENAI_API_KEY}
            """,
            {},
        )
    err = info.value
    assert (err.file, err.path, err.line) == ("cfg.yaml", "agents[0].api_key", 5)
    assert str(err) == (
        "cfg.yaml:5 agents[0].api_key: environment variable OPENAI_API_KEY is not set "
        "(set it, or give a default with ${OPENAI_API_KEY:-default})"
    )


def test_missing_variable_in_nested_list() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            """\
            agents:
              - name: a
                providers:
                  - model: gpt-4
                    api_key: ${OK}
                  - model: claude-3-haiku
                    api_key: ${NOPE}
            """,
            {"OK": "x"},
        )
    assert (info.value.path, info.value.line) == ("agents[0].providers[1].api_key", 7)
    assert "NOPE" in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${UNCLOSED", "unterminated '${'"),
        ("${1BAD}", "invalid variable reference '${1BAD}'"),
        ("${}", "invalid variable reference '${}'"),
        ("${A B}", "invalid variable reference"),
    ],
)
def test_malformed_references(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"agents\[0\]\.prompt") as info:
        prompt_of(value, {})
    assert message in str(info.value)
    assert info.value.line == 4


def test_env_value_into_int_field() -> None:
    cfg = load(
        """\
        vectorstore:
          provider: memory
          embedding_dimensions: ${DIMS}
          memory:
            max_documents: "${MAX_DOCS:-5000}"
        """,
        {"DIMS": "384"},
    )
    store = vs(cfg)
    assert store.embedding_dimensions == 384
    assert store.memory is not None
    assert store.memory.max_documents == 5000


def test_env_values_into_float_bool_and_duration_fields() -> None:
    cfg = load(
        """\
        agents:
          - name: a
            model: gpt-4
            temperature: ${TEMP}
            timeout: ${TIMEOUT:-45s}
        observability:
          cost_tracking: ${COST}
        """,
        {"TEMP": "0.3", "COST": "true"},
    )
    assert cfg.agents[0].temperature == 0.3
    assert cfg.agents[0].timeout is not None
    assert cfg.agents[0].timeout.total_seconds() == 45
    assert cfg.observability.cost_tracking is True


def test_bad_env_value_for_int_field_has_path_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            """\
            vectorstore:
              embedding_dimensions: ${DIMS}
            """,
            {"DIMS": "many"},
        )
    assert (info.value.path, info.value.line) == ("vectorstore.embedding_dimensions", 2)
    assert "(got 'many')" in str(info.value)


def test_value_with_yaml_syntax_stays_a_string() -> None:
    """Substitution happens after parsing: a value can never add keys or structure."""
    injected = "x\nprovider: anthropic\napi_key: stolen\n- [1, 2]: {a: b} &x *y !!python/object:os.system"
    cfg = load(
        """\
        agents:
          - name: a
            model: gpt-4
            prompt: ${PROMPT}
        """,
        {"PROMPT": injected},
    )
    agent = cfg.agents[0]
    assert agent.prompt == injected.strip()
    assert agent.provider is None
    assert agent.api_key is None


def test_env_value_with_dollar_is_not_expanded_again() -> None:
    assert prompt_of("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_keys_are_not_substituted() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            """\
            ${TOP}: 1
            """,
            {"TOP": "agents"},
        )
    assert "unknown key '${TOP}'" in str(info.value)


def test_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIXPY_TEST_DIMS", "768")
    cfg = load_config_str("vectorstore:\n  embedding_dimensions: ${AIXPY_TEST_DIMS}\n")
    assert vs(cfg).embedding_dimensions == 768
    monkeypatch.delenv("AIXPY_TEST_DIMS")
    with pytest.raises(ConfigError, match="AIXPY_TEST_DIMS is not set"):
        load_config_str("vectorstore:\n  embedding_dimensions: ${AIXPY_TEST_DIMS}\n")


def test_substitution_inside_aliased_values() -> None:
    cfg = load(
        """\
        agents:
          - &base
            name: a
            model: gpt-4
            api_key: ${KEY}
          - <<: *base
            name: b
        """,
        {"KEY": "secret-value-1"},
    )
    keys = [a.api_key.get_secret_value() for a in cfg.agents if a.api_key]
    assert keys == ["secret-value-1", "secret-value-1"]
    assert [a.name for a in cfg.agents] == ["a", "b"]
