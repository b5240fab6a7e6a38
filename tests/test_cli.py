"""End to end: the real CLI in separate processes, offline defaults (local model + embedded Qdrant)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"


def run(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}
    env.update({"HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200", **(env_extra or {})})
    return subprocess.run([sys.executable, "-m", "aixpy", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("cli")
    shutil.copytree(CORPUS, wd / "corpus")
    return wd


def test_index_then_search_in_separate_processes(workdir: Path) -> None:
    first = run(["index", "corpus", "--json"], workdir)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["files_seen"] == 10
    assert report["files_indexed"] == 10
    assert report["chunks_embedded"] >= 10
    assert (workdir / ".aixpy" / "qdrant").is_dir()

    res = run(["search", "which planets are gas giants", "--json", "--limit", "3"], workdir)
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["source"] == "solar-system.html"
    assert hits[0]["score"] > hits[1]["score"] >= hits[2]["score"]

    res = run(["search", "how do I bake bread with a starter", "--json", "--limit", "1"], workdir)
    assert json.loads(res.stdout)[0]["source"] == "sourdough.md"


def test_reindex_unchanged_embeds_nothing(workdir: Path) -> None:
    again = run(["index", "corpus", "--json"], workdir)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["files_unchanged"], report["chunks_embedded"]) == (10, 0)


def test_human_output_has_table(workdir: Path) -> None:
    res = run(["search", "retry after 429 rate limit", "--limit", "2"], workdir)
    assert res.returncode == 0, res.stderr
    assert "http-retries.md#0" in res.stdout
    assert "score" in res.stdout


def test_embed_command(workdir: Path) -> None:
    res = run(["embed", "machine learning", "--json"], workdir)
    data = json.loads(res.stdout)
    assert data["dimensions"] == 384 == len(data["embedding"])
    assert abs(sum(v * v for v in data["embedding"]) - 1.0) < 1e-3


def test_doctor_and_version(workdir: Path) -> None:
    res = run(["doctor"], workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "knowledge_base" in res.stdout
    assert "embed a text" in res.stdout
    ver = run(["version"], workdir)
    assert ver.stdout.startswith("aixpy ")


def test_errors_are_clear(workdir: Path, tmp_path: Path) -> None:
    empty = run(["search", "anything"], tmp_path)
    assert empty.returncode == 2
    assert "is empty" in empty.stderr
    assert "aixpy index" in empty.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("embeddings:\n  provider: local\n  locall: {}\n")
    res = run(["search", "x", "--config", str(bad)], tmp_path)
    assert res.returncode == 2
    assert "bad.yaml:3" in res.stderr
    assert "locall" in res.stderr
    missing = run(["index", "nope"], tmp_path)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_help_explains() -> None:
    res = run(["--help"], ROOT)
    assert res.returncode == 0
    for word in ("index", "search", "embed", "doctor", "version", "AIXPY_CONFIG"):
        assert word in res.stdout


def test_chat_with_the_in_memory_test_model(tmp_path: Path) -> None:
    res = run(["chat", "--model", "test", "hello", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["provider"] == "test"
    assert data["finish_reason"] == "stop"
    assert data["usage"]["input_tokens"] > 0
    streamed = run(["chat", "--model", "test", "hello"], tmp_path)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.strip() == data["text"]
    assert "in /" in streamed.stderr
    assert "tokens" in streamed.stderr


def test_chat_needs_a_model(tmp_path: Path) -> None:
    res = run(["chat", "hello"], tmp_path)
    assert res.returncode == 2
    assert "--model" in res.stderr
    res = run(["chat", "--model", "no-such-model-name", "hello"], tmp_path)
    assert res.returncode == 2
    assert "cannot tell which provider" in res.stderr


def test_models_lists_prices(tmp_path: Path) -> None:
    res = run(["models", "--provider", "openai", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    rows = {r["model"]: r for r in json.loads(res.stdout)}
    assert rows["gpt-4o"]["input"] == 2.5
    assert rows["gpt-4o"]["output"] == 10
    assert all(r["provider"] == "openai" for r in rows.values())
