"""Issue 13 item 11, CLI side: ``aixpy doctor`` warns about variables only unselected provider blocks
use, and selecting such a block (``--store``/``--provider``) is refused naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aixpy.cli import app
from aixpy.cli._runtime import resolve
from aixpy.errors import ConfigError

CONFIG = """\
embeddings:
  provider: hash
  openai: {api_key: "${AIXPY_TEST_UNSET_OPENAI_KEY}"}
vectorstore:
  provider: memory
  memory: {path: ./snap.aixpy}
  pgvector: {connection_string: "postgresql://u:${AIXPY_TEST_UNSET_PGPASSWORD}@localhost/db"}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    monkeypatch.delenv("AIXPY_TEST_UNSET_OPENAI_KEY", raising=False)
    monkeypatch.delenv("AIXPY_TEST_UNSET_PGPASSWORD", raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "aixpy.yaml"
    path.write_text(CONFIG)
    return path


def test_doctor_warns_about_unset_variables_of_unselected_blocks(config: Path) -> None:
    res = CliRunner().invoke(app, ["doctor", "--config", str(config)])
    assert res.exit_code == 0, res.output
    assert "embeddings.openai.api_key" in res.output
    assert "$AIXPY_TEST_UNSET_OPENAI_KEY not set" in res.output
    assert "vectorstore.pgvector.connection_string" in res.output
    assert "$AIXPY_TEST_UNSET_PGPASSWORD not set" in res.output


def test_selecting_a_block_with_an_unset_variable_is_refused(config: Path) -> None:
    assert resolve(str(config)).embeddings.provider == "hash"
    with pytest.raises(ConfigError, match="AIXPY_TEST_UNSET_PGPASSWORD is not set") as info:
        resolve(str(config), store="pgvector")
    assert info.value.path == "vectorstore.pgvector.connection_string"
    with pytest.raises(ConfigError, match="AIXPY_TEST_UNSET_OPENAI_KEY is not set"):
        resolve(str(config), provider="openai")


def test_bench_does_not_run_a_block_whose_variable_is_unset(config: Path) -> None:
    res = CliRunner().invoke(app, ["bench", "embeddings", "--config", str(config), "--texts", "3", "--single", "1",
                                   "--rounds", "1"])
    text = res.stdout + res.stderr
    assert res.exit_code == 1, text
    assert "hash" in text
    assert "AIXPY_TEST_UNSET_OPENAI_KEY is not set" in text
