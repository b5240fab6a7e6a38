"""Session fixture for a real redis server (started on a free loopback port, stopped after).

``redis_url`` starts ``redis-server`` (no persistence, in a temp dir) the first time a test asks for
it and stops it at the end of the session; it fails the test loudly when the server cannot start.
``redis_prefix`` gives each test its own key prefix and deletes that test's keys afterwards, so
tests sharing the server never see each other's data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._services._proc import fail, free_port, stop_process, wait_until

__all__ = ["redis_prefix", "redis_url"]


def _ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a redis-server started for this session."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                              else None)
    if binary is None:
        fail("redis-server", "the redis-server binary is not installed (apt-get install redis-server)")
    assert binary is not None
    root = tmp_path_factory.mktemp("redis")
    log = root / "redis.log"
    port = free_port()
    cmd = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root), "--logfile", str(log),
           "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if not wait_until(lambda: _ping(port), timeout=20.0, proc=proc):
            fail("redis-server", f"no PONG on 127.0.0.1:{port} (exit code {proc.poll()})", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; its keys are deleted when the test ends."""
    import redis

    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
