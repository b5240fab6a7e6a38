"""Issue 13 item 11: the docs' full example loads with only the variables its selected providers need;
every missing variable of a file is reported in one error; unknown provider names get file, line and
a did-you-mean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aixpy.config import load_config, load_config_str
from aixpy.errors import ConfigError

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def docs_full_example() -> str:
    match = re.search(r"## Blocks\n\n```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert match is not None, "docs/configuration.md lost its full example"
    return match.group(1)


# the agent's cascade uses both providers: those two are needed; the rest are unselected blocks'
NEEDED = {"OPENAI_API_KEY": "sk-test-0123456789abcdef", "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}


def test_the_docs_full_example_loads_with_only_what_the_selected_providers_need() -> None:
    cfg = load_config_str(docs_full_example(), "docs.yaml", env=NEEDED)
    assert cfg.embeddings is not None
    assert cfg.embeddings.provider == "local"
    assert cfg.vectorstore is not None
    assert cfg.vectorstore.provider == "qdrant"
    assert set(cfg.unresolved_variables) == {
        "embeddings.huggingface.api_key", "vectorstore.pgvector.connection_string", "vectorstore.firestore.project_id"}
    assert cfg.unresolved_variables["vectorstore.pgvector.connection_string"] == ("PGPASSWORD",)
    # the agents' keys were substituted; the unselected blocks keep the ${VAR} text, never a guess
    assert cfg.agents[0].providers is not None
    key = cfg.agents[0].providers[0].api_key
    assert key is not None
    assert key.get_secret_value() == NEEDED["OPENAI_API_KEY"]
    assert cfg.vectorstore.firestore is not None
    assert cfg.vectorstore.firestore.project_id == "${GCP_PROJECT_ID}"


def test_every_missing_variable_of_a_file_is_in_one_error(tmp_path: Path) -> None:
    text = """\
embeddings:
  provider: openai
  openai: {api_key: "${OPENAI_API_KEY}", base_url: "https://${GATEWAY_HOST}/v1"}
vectorstore:
  provider: pgvector
  pgvector: {connection_string: "postgresql://u:${PGPASSWORD}@${PGHOST}/db"}
agents:
  - {name: a, model: claude-3-5-haiku-latest, api_key: "${ANTHROPIC_API_KEY}"}
"""
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    for name in ("OPENAI_API_KEY", "GATEWAY_HOST", "PGPASSWORD", "PGHOST", "ANTHROPIC_API_KEY"):
        assert name in message
    assert (info.value.line, info.value.path) == (3, "embeddings.openai.api_key")
    assert f"{path}:6 vectorstore.pgvector.connection_string: environment variables PGPASSWORD, PGHOST" in message
    assert f"{path}:8 agents[0].api_key: environment variable ANTHROPIC_API_KEY is not set" in message
    assert "***" not in message   # a key path ending in api_key is not mistaken for a secret


def test_missing_variables_and_other_problems_come_together() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str("vectorstore:\n  provider: qdrant\n  qdrant: {url: '${QURL}', hnsw_mm: 3}\n", env={})
    assert "QURL" in str(info.value)
    assert "did you mean 'hnsw_m'" in str(info.value)


def test_an_unselected_block_is_still_validated() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str("embeddings:\n  provider: local\n  openai: {api_key: '${K}', batch_siz: 3}\n", env={})
    assert info.value.path == "embeddings.openai.batch_siz"


def test_a_numeric_value_of_an_unselected_block_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="environment variable DIMS is not set") as info:
        load_config_str("embeddings:\n  provider: local\n  openai: {dimensions: '${DIMS}'}\n", env={})
    assert info.value.line == 3


def test_fallback_entries_select_their_own_block() -> None:
    text = """\
embeddings:
  provider: local
  fallback:
    - provider: openai
      openai: {api_key: "${OPENAI_API_KEY}"}
      ollama: {base_url: "http://${OLLAMA_HOST}"}
"""
    with pytest.raises(ConfigError) as info:
        load_config_str(text, env={})
    assert info.value.path == "embeddings.fallback[0].openai.api_key"
    assert "OLLAMA_HOST" not in str(info.value)
    cfg = load_config_str(text, env={"OPENAI_API_KEY": "sk-x-0123456789"})
    assert cfg.unresolved_variables == {"embeddings.fallback[0].ollama.base_url": ("OLLAMA_HOST",)}


def test_a_variable_in_the_selected_provider_name_leaves_no_block_unselected() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str("vectorstore:\n  provider: '${STORE}'\n  qdrant: {url: '${QURL}'}\n", env={})
    assert "STORE" in str(info.value)
    assert "QURL" in str(info.value)


@pytest.mark.parametrize(("text", "path", "line", "hint"), [
    ("embeddings:\n  provider: opneai\n", "embeddings.provider", 2, "did you mean 'openai'?"),
    ("vectorstore:\n  metric: cosine\n  provider: qdarnt\n", "vectorstore.provider", 3, "did you mean 'qdrant'?"),
    ("vectorstore:\n  provider: nosuchstore\n", "vectorstore.provider", 2, "known: firestore, memory"),
    ("embeddings:\n  fallback:\n    - provider: olama\n", "embeddings.fallback[0].provider", 3,
     "did you mean 'ollama'?"),
    ("agents:\n  - name: a\n    model: claude-3-5-haiku-latest\n    provider: antropic\n", "agents[0].provider", 4,
     "did you mean 'anthropic'?"),
])
def test_a_wrong_provider_name_gets_file_line_and_a_suggestion(text: str, path: str, line: int, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str(text, "cfg.yaml")
    assert (info.value.file, info.value.path, info.value.line) == ("cfg.yaml", path, line)
    assert hint in str(info.value)


def test_a_registered_provider_name_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from aixpy import _model_names, embeddings

    monkeypatch.setattr(_model_names.EMBEDDINGS, "_entries", dict(_model_names.EMBEDDINGS._entries))
    embeddings.register("hashed-test-provider", "aixpy.embeddings.hashing:create")
    cfg = load_config_str("embeddings:\n  provider: hashed-test-provider\n")
    assert cfg.embeddings is not None
    assert cfg.embeddings.provider == "hashed-test-provider"
