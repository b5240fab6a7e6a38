"""Starting and stopping real servers for the tests: free loopback ports, readiness polling, loud failure.

A test that needs a server it could not start must fail (never skip): :func:`fail` raises
``pytest.fail`` with the server's log tail so CI shows why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = ["fail", "free_port", "log_tail", "stop_process", "wait_until"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def fail(what: str, detail: str, log: Path | None = None) -> None:
    """Fail the requesting test loudly: the service is required, so this is never a skip."""
    pytest.fail(f"{what} could not be started: {detail}\n--- log tail ---\n{log_tail(log)}", pytrace=False)


def wait_until(ready: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None,
               interval: float = 0.05) -> bool:
    """Poll ``ready()`` until it is true (True), the timeout passes or ``proc`` exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(Exception):
            if ready():
                return True
        time.sleep(interval)
    return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL if it does not exit in ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
