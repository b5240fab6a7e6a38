"""``--store`` / ``--collection`` on index and search, and ``aixpy collections list|stats|drop``.

Runs the real Typer app (the console script's ``app``) in-process for speed, plus one check in a
separate process that a memory store persists between CLI invocations. The hash embedder keeps
every test offline and fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aixpy.cli import app

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"
HASH_CONFIG = "embeddings:\n  provider: hash\n"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the example corpus and a config using the offline hash embedder."""
    for var in ("AIXPY_CONFIG", "DATABASE_URL", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CORPUS, tmp_path / "corpus")
    (tmp_path / "aixpy.yaml").write_text(HASH_CONFIG)
    return tmp_path


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok_json(*args: str) -> object:
    res = cli(*args, "--json")
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout)


def test_store_override_keeps_collections_apart(work: Path) -> None:
    report = ok_json("index", "corpus", "--store", "memory")
    assert isinstance(report, dict)
    assert report["files_indexed"] == 10
    chunks = report["collection_count"]
    assert (work / ".aixpy" / "memory.snapshot").is_file()  # the CLI persists a memory store
    assert not (work / ".aixpy" / "qdrant").exists()  # the configured default (qdrant) was not touched
    ok_json("index", "corpus/sourdough.md", "--store", "memory", "--collection", "bread")

    rows = ok_json("collections", "list", "--store", "memory")
    assert rows == [
        {"name": "bread", "count": 3, "dimensions": 256, "metric": "cosine"},  # 1 chunk + 2 index records
        {"name": "knowledge_base", "count": chunks, "dimensions": 256, "metric": "cosine"},
    ]
    assert ok_json("collections", "list") == []  # default store (embedded qdrant) holds nothing

    hits = ok_json("search", "sourdough starter bread", "--store", "memory", "--collection", "bread")
    assert isinstance(hits, list)
    assert [h["source"] for h in hits] == ["sourdough.md"]
    missing = cli("search", "anything", "--store", "memory", "--collection", "nope")
    assert missing.exit_code == 2
    assert "'nope'" in missing.stderr
    assert "--store memory" in missing.stderr


def test_stats_and_table(work: Path) -> None:
    ok_json("index", "corpus", "--store", "qdrant")
    info = ok_json("collections", "stats", "knowledge_base", "--store", "qdrant")
    assert isinstance(info, dict)
    assert info["provider"] == "qdrant"
    assert info["count"] >= 10
    assert (info["dimensions"], info["metric"], info["dedup"], info["ttl_seconds"]) == (256, "cosine", False, None)
    assert info["embedding_model"] == "hash-bow"
    assert info["size_bytes"] > 0
    assert info["size_note"] == "on disk"
    table = cli("collections", "stats", "knowledge_base")
    assert table.exit_code == 0, table.stderr
    for word in ("documents", "dimensions", "cosine", "hash-bow", "max_documents", "unlimited", "on disk"):
        assert word in table.stdout
    listing = cli("collections", "list")
    assert "knowledge_base" in listing.stdout
    assert "256" in listing.stdout


def test_store_keeps_that_providers_block(work: Path) -> None:
    snap = work / "custom.snap"
    (work / "aixpy.yaml").write_text(HASH_CONFIG + f"vectorstore:\n  provider: qdrant\n  memory:\n"
                                     f"    path: {snap}\n    max_documents: 5\n")
    res = cli("index", "corpus", "--store", "memory")
    assert res.exit_code == 1  # more chunks than max_documents: the memory block was used
    assert "max_documents" in res.stderr
    assert snap.is_file()
    assert not (work / ".aixpy" / "memory.snapshot").exists()
    info = ok_json("collections", "stats", "knowledge_base", "--store", "memory")
    assert isinstance(info, dict)
    assert (info["count"], info["max_documents"]) == (5, 5)


def test_drop_asks_then_drops(work: Path) -> None:
    ok_json("index", "corpus/pasta.txt", "--store", "memory", "--collection", "pasta")
    no = cli("collections", "drop", "pasta", "--store", "memory", input="n\n")
    assert no.exit_code == 1
    assert "not dropped" in no.stderr
    silent = cli("collections", "drop", "pasta", "--store", "memory", input="")
    assert silent.exit_code == 1  # end of input is not a yes
    assert "not dropped" in silent.stderr
    assert [r["name"] for r in ok_json("collections", "list", "--store", "memory")] == ["pasta"]  # type: ignore[index]

    yes = cli("collections", "drop", "pasta", "--store", "memory", input="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert "dropped collection pasta" in yes.stdout
    assert ok_json("collections", "list", "--store", "memory") == []

    gone = cli("collections", "drop", "pasta", "--store", "memory", "--yes")
    assert gone.exit_code == 1
    assert "no collection 'pasta'" in gone.stderr
    assert "Traceback" not in gone.output + gone.stderr
    stats = cli("collections", "stats", "pasta", "--store", "memory")
    assert stats.exit_code == 1
    assert "no collection 'pasta'" in stats.stderr


def test_drop_yes_on_qdrant(work: Path) -> None:
    ok_json("index", "corpus/pasta.txt", "--collection", "pasta")
    res = cli("collections", "drop", "pasta", "-y")
    assert res.exit_code == 0, res.stderr
    assert not (work / ".aixpy" / "qdrant" / "pasta").exists()


@pytest.mark.parametrize(
    ("store", "words"),
    [
        ("pgvector", ["vectorstore.pgvector.connection_string", "DATABASE_URL"]),
        ("firestore", ["vectorstore.firestore.project_id", "GOOGLE_CLOUD_PROJECT"]),
        ("redis", ["unknown vector store provider 'redis'", "memory", "qdrant"]),
    ],
)
def test_store_needs_its_settings(work: Path, store: str, words: list[str]) -> None:
    for args in (["index", "corpus", "--store", store], ["search", "x", "--store", store],
                 ["collections", "list", "--store", store]):
        res = cli(*args)
        assert res.exit_code == 2, (args, res.output, res.stderr)
        for w in words:
            assert w in res.stderr
        assert "Traceback" not in res.stderr


def test_memory_store_persists_across_processes(work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aixpy", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=120)

    first = run("index", "corpus/gardening.md", "--store", "memory", "--json")
    assert first.returncode == 0, first.stderr
    second = run("collections", "list", "--store", "memory", "--json")
    assert second.returncode == 0, second.stderr
    assert [(r["name"], r["count"]) for r in json.loads(second.stdout)] == [
        ("knowledge_base", json.loads(first.stdout)["collection_count"])]


def _server_round_trip(work: Path, store: str, name: str) -> None:
    """index -> list -> stats -> search -> drop through ``--store`` on a real server (two files: the
    emulator is slow)."""
    (work / "small").mkdir()
    for f in ("sourdough.md", "pasta.txt"):
        shutil.copy(work / "corpus" / f, work / "small" / f)
    report = ok_json("index", "small", "--store", store, "--collection", name)
    assert isinstance(report, dict)
    assert report["files_indexed"] == 2
    rows = ok_json("collections", "list", "--store", store)
    assert isinstance(rows, list)
    assert {"name": name, "count": report["collection_count"], "dimensions": 256, "metric": "cosine"} in rows
    info = ok_json("collections", "stats", name, "--store", store)
    assert isinstance(info, dict)
    assert (info["provider"], info["embedding_model"]) == (store, "hash-bow")
    hits = ok_json("search", "sourdough starter", "--store", store, "--collection", name, "--limit", "1")
    assert isinstance(hits, list)
    assert hits[0]["source"] == "sourdough.md"
    res = cli("collections", "drop", name, "--store", store, "--yes")
    assert res.exit_code == 0, res.stderr
    rows = ok_json("collections", "list", "--store", store)
    assert isinstance(rows, list)
    assert name not in [r["name"] for r in rows]


def test_store_pgvector_from_database_url(work: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_dsn)  # no pgvector: block in the config
    _server_round_trip(work, "pgvector", "cli_docs")


def test_store_firestore_from_env(work: Path, firestore_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "aixpy-cli-test")  # no firestore: block in the config
    _server_round_trip(work, "firestore", "cli_docs")
