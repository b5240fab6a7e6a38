"""Session fixture for the real Google Firestore emulator (a JVM on a free loopback port, stopped after).

The emulator ships with the ``google-cloud-cli-firestore-emulator`` Debian package; its jar is
started directly so the process we stop is the JVM itself. A test that needs it fails (never
skips) with the log tail when it cannot start.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._services._proc import fail, free_port, log_tail, stop_process, wait_until
from tests._services.postgres import ServiceError

__all__ = ["firestore_emulator", "firestore_emulator_jar", "start_firestore_emulator"]

PACKAGE = "google-cloud-cli-firestore-emulator"
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
START_TIMEOUT = 90.0  # 2.4-3.3 s idle; a busy 2-core machine can take much longer to start a JVM


def firestore_emulator_jar() -> Path | None:
    """The emulator jar installed by the Debian package, or ``None``."""
    if shutil.which("dpkg") is None:
        return None
    out = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, check=False).stdout
    jars = [Path(line) for line in out.splitlines() if line.endswith("cloud-firestore-emulator.jar")]
    return jars[0] if jars and jars[0].is_file() else None


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
        return bool(r.status == 200)


@contextlib.contextmanager
def start_firestore_emulator(log_dir: Path) -> Iterator[str]:
    """Start the emulator JVM on a free port; yield ``"127.0.0.1:PORT"``; stop it.

    Raises :class:`ServiceError` (with the log tail) when it cannot start. Used by the fixture below
    and by ``bench/vectorstores.py``.
    """
    jar = firestore_emulator_jar()
    java = shutil.which("java")
    if jar is None or java is None:
        raise ServiceError(f"needs java ({java or 'missing'}) and the {PACKAGE} package (jar: {jar or 'missing'})")
    log = log_dir / "firestore-emulator.log"
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [java, "-Duser.language=en", "-cp", str(jar), MAIN_CLASS, "start", "--host=127.0.0.1", f"--port={port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_until(lambda: _ready(port), START_TIMEOUT, proc, interval=0.1):
            why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready in {START_TIMEOUT:.0f} s"
            raise ServiceError(f"{why}\n--- log tail ---\n{log_tail(log)}")
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``"127.0.0.1:PORT"`` of a running Firestore emulator (with vector search), for the session."""
    with contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(start_firestore_emulator(tmp_path_factory.mktemp("firestore")))
        except ServiceError as e:  # the tests that need it fail loudly, never skip
            fail("firestore emulator", str(e))
            raise  # unreachable
        yield host
