"""Two ``aixpy index --store memory`` processes writing one snapshot at once: nothing acknowledged is lost.

The embedding server (a loopback fake of Ollama) holds the first request until a second one arrives
(or 6 s pass), so without a lock both processes load the same empty snapshot, embed side by side and
the last save drops the other's documents. With the snapshot lock the second process waits for the
first to save, then loads that snapshot and adds its own.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

from aixpy.vectorstores._memory_snapshot import read_snapshot
from tests.embeddings._servers import LoopbackServer, Recorded, Reply, fake_ollama, loopback  # noqa: F401


def test_concurrent_index_runs_keep_both_documents(tmp_path: Path, loopback: LoopbackServer) -> None:  # noqa: F811
    answer = fake_ollama(dims=8)
    barrier = threading.Barrier(2)

    def handle(rec: Recorded) -> Reply:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=6)
        return answer(rec)

    loopback.handler = handle
    (tmp_path / "aixpy.yaml").write_text(
        "embeddings:\n  provider: ollama\n  ollama:\n"
        f"    base_url: {loopback.url}\n    model: fake-embed\n    dimensions: 8\n"
        "vectorstore:\n  provider: memory\n")
    for name, text in (("apple", "apples grow on trees"), ("banana", "bananas are yellow")):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.md").write_text(f"# {name}\n\n{text}\n")
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}
    env["NO_COLOR"] = "1"
    procs = [subprocess.Popen([sys.executable, "-m", "aixpy", "index", name, "--store", "memory"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("apple", "banana")]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, out + err
        assert "indexed 1 file(s)" in out
    (collection,) = read_snapshot(tmp_path / ".aixpy" / "memory.snapshot")
    sources = sorted(d.metadata["source"] for d in collection.documents)
    assert sources == ["apple.md", "banana.md"]
    assert any("waiting for another aixpy process" in err for _, err in results)


def test_snapshot_lock_is_reentrant_and_exclusive_between_processes(tmp_path: Path) -> None:
    from aixpy.vectorstores._memory_snapshot import lock_path, snapshot_lock

    snap = tmp_path / "s.snapshot"
    probe = ("import sys, fcntl, os; fd = os.open(sys.argv[1], os.O_RDWR);"
             "\ntry:\n fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n sys.exit(3)")

    def other_process_can_lock() -> bool:
        code = subprocess.run([sys.executable, "-c", probe, str(lock_path(snap))], check=False).returncode
        assert code in (0, 3)
        return code == 0

    waited: list[Path] = []
    with snapshot_lock(snap):
        with snapshot_lock(snap, on_wait=waited.append):  # same process: no wait, no deadlock
            assert not other_process_can_lock()
        assert not other_process_can_lock()  # still held by the outer block
    assert other_process_can_lock()
    assert waited == []
    assert lock_path(snap) == tmp_path / "s.snapshot.lock"
