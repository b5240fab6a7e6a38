"""find_config precedence: explicit argument > $AIXPY_CONFIG > ./aixpy.yaml > None."""

from __future__ import annotations

from pathlib import Path

import pytest

from aixpy.config import find_config
from aixpy.errors import ConfigError


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    return tmp_path


def make(path: Path) -> Path:
    path.write_text("agents: []\n")
    return path


def test_nothing_found(workdir: Path) -> None:
    assert find_config(None) is None


def test_default_file_in_cwd(workdir: Path) -> None:
    make(workdir / "aixpy.yaml")
    found = find_config(None)
    assert found is not None
    assert found.resolve() == (workdir / "aixpy.yaml").resolve()


def test_env_var_beats_default(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(workdir / "aixpy.yaml")
    other = make(workdir / "other.yaml")
    monkeypatch.setenv("AIXPY_CONFIG", str(other))
    assert find_config(None) == other


def test_explicit_beats_env_var(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(workdir / "aixpy.yaml")
    monkeypatch.setenv("AIXPY_CONFIG", str(make(workdir / "env.yaml")))
    explicit = make(workdir / "explicit.yaml")
    assert find_config(str(explicit)) == explicit
    assert find_config(explicit) == explicit


def test_explicit_missing_is_an_error(workdir: Path) -> None:
    make(workdir / "aixpy.yaml")
    with pytest.raises(ConfigError, match="config file not found") as info:
        find_config("missing.yaml")
    assert info.value.file == "missing.yaml"


def test_explicit_directory_is_an_error(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        find_config(str(workdir))


def test_env_var_missing_file_is_an_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(workdir / "aixpy.yaml")
    monkeypatch.setenv("AIXPY_CONFIG", str(workdir / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"config file not found \(from \$AIXPY_CONFIG\)"):
        find_config(None)


def test_empty_env_var_is_ignored(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIXPY_CONFIG", "")
    assert find_config(None) is None


def test_default_must_be_a_file(workdir: Path) -> None:
    (workdir / "aixpy.yaml").mkdir()
    assert find_config(None) is None
