"""Runs of the real CLI killed with SIGKILL after every possible number of collection writes: the next
run completes the collection to exactly what an uninterrupted run produces (no duplicates, no orphans).

The kill point comes from the indexer's write counter (AIXPY_TEST_KILL_AFTER_WRITES), not from timing.
The store is embedded Qdrant on disk (the CLI's default), the embedder the hash one (fast, offline).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.rag.indexer import KILL_AFTER_WRITES, file_key
from aixpy.rag.manifest import CHUNKS, read_root, read_signature

V1 = {"a.md": "# Alpha\n\n" + "\n\n".join(f"alpha paragraph {i} about bread and ovens." for i in range(40)),
      "b.txt": "planets and moons " * 30, "c.md": "comets have icy tails", "sub/d.rst": "docs in rst " * 50}
V2_CHANGES = {"a.md": "# Alpha\n\nnow short", "e.md": "a new file about rivers " * 40}
V2_REMOVED = ("c.md",)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _index(corpus: Path, store: Path, kill_after: int | None = None) -> subprocess.CompletedProcess[str]:
    """``aixpy index corpus`` into the embedded Qdrant store at ``store`` (the corpus path never changes:
    chunk ids hash absolute paths)."""
    env = {k: v for k, v in os.environ.items() if k not in ("AIXPY_CONFIG", KILL_AFTER_WRITES)}
    env.update({"NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    if kill_after is not None:
        env[KILL_AFTER_WRITES] = str(kill_after)
    config = store.parent / f"{store.name}.yaml"
    config.write_text(f"embeddings:\n  provider: hash\nvectorstore:\n  provider: qdrant\n  qdrant:\n"
                      f"    path: {store}\n")
    return subprocess.run([sys.executable, "-m", "aixpy", "index", str(corpus), "--json", "--chunk-size", "24",
                           "--config", str(config)], cwd=corpus.parent, env=env, capture_output=True, text=True,
                          timeout=120)


State = tuple[int, dict[tuple[str, int], str], list[str]]


def _state(corpus: Path, store_path: Path) -> State:
    """(chunk count, (file, chunk) -> content of every chunk the files' markers promise, files in the
    root record)."""
    store = vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(store_path)}})
    try:
        coll = store.collection("knowledge_base")
        root = str(corpus.resolve())
        docs: dict[tuple[str, int], str] = {}
        for p in sorted(corpus.rglob("*.*")):
            key = file_key(p.resolve())
            [head] = coll.get([f"{key}:0"])
            n = int(head.metadata["file_chunks"])
            found = coll.get([f"{key}:{i}" for i in range(n)])
            assert len(found) == n
            docs.update({(p.relative_to(corpus).as_posix(), int(d.metadata["chunk"])): d.content for d in found})
        assert read_signature(coll) is not None
        return coll.count(CHUNKS), docs, read_root(coll, root, root).files
    finally:
        store.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, State]:
    """The corpus (V2 by now), a store holding V1 of it, and the state of a clean V2 run on that store."""
    root = tmp_path_factory.mktemp("interrupted")
    corpus = root / "corpus"
    _write(corpus, V1)
    v1 = root / "v1-store"
    assert _index(corpus, v1).returncode == 0
    _write(corpus, V2_CHANGES)
    for rel in V2_REMOVED:
        (corpus / rel).unlink()
    clean = root / "clean-store"
    shutil.copytree(v1, clean)
    res = _index(corpus, clean)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert (report["files_indexed"], report["files_pruned"], report["files_unchanged"]) == (2, 1, 2)
    return corpus, v1, _state(corpus, clean)


@pytest.mark.parametrize("start", ["empty store", "store with V1"])
def test_kill_at_every_write_then_rerun_completes(base: tuple[Path, Path, State], start: str, tmp_path: Path) -> None:
    corpus, v1, (want_count, want_docs, want_files) = base
    kills = 0
    for n in range(1, 100):
        store = tmp_path / f"store{n}"
        if start == "store with V1":
            shutil.copytree(v1, store)
        killed = _index(corpus, store, kill_after=n)
        if killed.returncode == 0:  # n is past the last write: every earlier point was covered
            break
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        kills += 1
        again = _index(corpus, store)
        assert again.returncode == 0, again.stderr
        count, docs, files = _state(corpus, store)
        assert docs == want_docs, f"killed after {n} writes"
        assert count == want_count, f"killed after {n} writes: {count} chunks, want {want_count}"
        assert sorted(files) == sorted(want_files)
        shutil.rmtree(store)
    assert kills >= 5, f"only {kills} kill points: the scenario writes too little to test anything"
