"""``aixpy index --engine ray`` on a real local Ray cluster (a head and a second node process, both on
loopback, started here) writing to the real PostgreSQL: the documents must be exactly those of the
single-process path (ids, content, metadata, tags, vectors to 1e-6, index records).

Ray not starting is a failure, never a skip."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aixpy import vectorstores
from aixpy.cli import app
from aixpy.config.stores import PgvectorStoreConfig, VectorStoreConfig
from aixpy.rag import manifest as mf
from aixpy.rag.indexer import file_key
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.types import Document

RAY = Path(sys.executable).with_name("ray")
WORDS = ("alpha", "beta", "gamma", "delta", "vector", "store", "embedding", "cluster", "node", "worker",
         "ray", "chunk", "index", "file", "document")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ours(marker: str) -> list[int]:
    """Pids of processes whose command line holds ``marker`` (this test's Ray temp dir)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head node and a second node (1 CPU each) on 127.0.0.1; stopped (only this cluster's processes) after."""
    if not RAY.exists():
        pytest.fail(f"the ray command is missing ({RAY}): install aixpy[ray] (make test does)")
    temp = tmp_path_factory.mktemp("ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(Path("src").resolve()),
                                                                   os.environ.get("PYTHONPATH", "")) if p),
           "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=150000000",
              "--disable-usage-stats"]
    cmds = [[str(RAY), "start", "--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false",
             f"--ray-client-server-port={_free_port()}", *common],
            [str(RAY), "start", f"--address={address}", *common]]
    try:
        for cmd in cmds:
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
            if res.returncode != 0:
                pytest.fail(f"Ray did not start ({' '.join(cmd[1:3])}): {res.stdout[-1500:]}{res.stderr[-1500:]}")
        yield address
    finally:
        for pid in _ours(str(temp)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while _ours(str(temp)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in _ours(str(temp)):
            os.kill(pid, signal.SIGKILL)


def _corpus(root: Path) -> Path:
    rnd = random.Random(7)
    root.mkdir()
    for i in range(14):
        body = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 700)))
        front = f"---\ntitle: Doc {i}\nlevel: {i % 3}\n---\n" if i % 4 == 0 else ""
        (root / f"doc{i:02d}.md").write_text(f"{front}# Section {i}\n\n{body}\n\n## More\n\n{body[::-1]}\n")
    (root / "notes.txt").write_text("plain text " * 50)
    (root / "empty.md").write_text("")
    (root / "image.png").write_bytes(b"\x89PNG")
    return root


def _dump(coll: BaseCollection, corpus: Path) -> dict[str, Document]:
    """Every document of the run: the index records and each file's chunks (from its chunk 0's count)."""
    found = {d.id: d for d in coll.get([mf.SIGNATURE_ID, mf.root_id(str(corpus))])}
    for p in sorted(corpus.iterdir()):
        key = file_key(p.resolve())
        head = coll.get([f"{key}:0"])
        if head:
            n = int(head[0].metadata["file_chunks"])
            found.update((d.id, d) for d in coll.get([f"{key}:{i}" for i in range(n)]))
    return found


def _index(corpus: Path, collection: str, *extra: str) -> None:
    res = CliRunner().invoke(app, ["index", str(corpus), "--store", "pgvector", "--collection", collection,
                                   "--json", *extra])
    assert res.exit_code == 0, f"{res.stdout}\n{res.stderr}"


def test_ray_engine_matches_single_process(ray_cluster: str, postgres_dsn: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
    assert len(alive) == 2, alive

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    monkeypatch.setenv("DATABASE_URL", postgres_dsn)
    corpus = _corpus(tmp_path / "corpus")
    _index(corpus, "ray_single")
    _index(corpus, "ray_cluster", "--engine", "ray", "--address", ray_cluster)

    with vectorstores.new(VectorStoreConfig(provider="pgvector",
                                            pgvector=PgvectorStoreConfig(connection_string=postgres_dsn))) as store:
        single, dist = store.collection("ray_single"), store.collection("ray_cluster")
        want, got = _dump(single, corpus), _dump(dist, corpus)
        assert single.count() == dist.count() == len(want)
    assert len(want) > 20  # records plus chunks of several files
    assert sorted(got) == sorted(want)
    assert {mf.SIGNATURE_ID, mf.root_id(str(corpus))} <= set(want)
    for doc_id, w in want.items():
        g = got[doc_id]
        assert (g.content, g.metadata, g.tags, g.embedding_model) == (w.content, w.metadata, w.tags,
                                                                     w.embedding_model), doc_id
        assert w.embedding is not None
        assert g.embedding is not None
        np.testing.assert_allclose(np.asarray(g.embedding), np.asarray(w.embedding), rtol=0, atol=1e-6)

    # a second run over the cluster finds every file unchanged: the markers are the single path's
    res = CliRunner().invoke(app, ["index", str(corpus), "--store", "pgvector", "--collection", "ray_cluster",
                                   "--json", "--engine", "ray", "--address", ray_cluster])
    assert res.exit_code == 0, res.stderr
    again = json.loads(res.stdout)
    assert (again["files_unchanged"], again["files_indexed"], again["chunks_embedded"]) == (15, 0, 0), again


@pytest.mark.parametrize("store", ["memory", "qdrant"])
def test_ray_engine_refuses_embedded_store(store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.md").write_text("hello")
    res = CliRunner().invoke(app, ["index", "c", "--store", store, "--engine", "ray"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "server-mode vector store" in lines[0]
    assert store in lines[0]
    assert not list(tmp_path.rglob("*.snapshot"))  # refused before any store was opened


def test_engine_flag_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    res = CliRunner().invoke(app, ["index", str(tmp_path), "--engine", "spark"])
    assert res.exit_code == 2
    assert "--engine" in res.stderr
    res = CliRunner().invoke(app, ["index", str(tmp_path), "--address", "127.0.0.1:1"])
    assert res.exit_code == 2
    assert "--address needs --engine ray" in res.stderr
