"""SIGTERM drains: ``python -m aixpy serve`` as a real process, in front of a loopback upstream that streams
slowly; an in-flight stream finishes (``[DONE]``) and the process exits 0 within ``serve.graceful_shutdown``,
or, when the stream outlives it, the stream is cut and the process still exits within the bound."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._services.loopback_http import LoopbackHTTPServer
from tests.serve.conftest import KEY, config_yaml

pytest.importorskip("uvicorn")

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``python -m aixpy serve --config <file> --port <free>`` until it answers ``/healthz``."""

    def __init__(self, config: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([sys.executable, "-m", "aixpy", "serve", "--config", str(config),
                                      "--port", str(self.port)], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"aixpy serve exited early: {self.output()}"
            assert time.monotonic() < deadline, "aixpy serve did not start"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)

    def output(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stdout is not None
        return self.proc.stdout.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _serve(tmp_path: Path, upstream: LoopbackHTTPServer, graceful: float) -> Iterator[ServeProcess]:
    config = tmp_path / "aixpy.yaml"
    config.write_text(config_yaml(upstream.url, extra=f"  graceful_shutdown: {graceful}\n"))
    server = ServeProcess(config)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def patient(tmp_path: Path, upstream: LoopbackHTTPServer) -> Iterator[ServeProcess]:
    yield from _serve(tmp_path, upstream, graceful=20)


@pytest.fixture
def hasty(tmp_path: Path, upstream: LoopbackHTTPServer) -> Iterator[ServeProcess]:
    yield from _serve(tmp_path, upstream, graceful=1)


def _stream_then_sigterm(server: ServeProcess, chunk_ms: int) -> tuple[list[str], float, BaseException | None]:
    """Start a streamed chat, SIGTERM the server once its first event arrived, read on; returns the SSE lines
    read, the monotonic time of the SIGTERM and the error that ended the read, if any."""
    body = {"model": "assistant", "stream": True, "seed": chunk_ms, "messages": [{"role": "user", "content": "drain"}]}
    lines: list[str] = []
    sent = 0.0
    error: BaseException | None = None
    with httpx.Client(timeout=30) as client, client.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body,
            headers={"authorization": f"Bearer {KEY}"}) as resp:
        assert resp.status_code == 200
        try:
            for line in resp.iter_lines():
                if not line:
                    continue
                lines.append(line)
                if not sent:
                    server.proc.send_signal(signal.SIGTERM)
                    sent = time.monotonic()
        except httpx.TransportError as e:  # the server cut the stream
            error = e
    return lines, sent, error


def test_sigterm_lets_an_in_flight_stream_finish_then_exits_0(patient: ServeProcess,
                                                              upstream: LoopbackHTTPServer) -> None:
    lines, sent, error = _stream_then_sigterm(patient, chunk_ms=250)  # six upstream events: ~1.5 s
    assert error is None
    assert lines[-1] == "data: [DONE]"
    text = "".join(line for line in lines if '"content"' in line)
    assert '"echo:' in text
    assert 'drain"' in text
    assert time.monotonic() - sent > 0.5  # the stream really was in flight when SIGTERM came
    assert patient.proc.wait(20) == 0, patient.output()
    assert time.monotonic() - sent < 20
    # once draining, the server takes no new work
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{patient.url}/healthz", timeout=2)


def test_sigterm_cuts_a_stream_that_outlives_graceful_shutdown(hasty: ServeProcess,
                                                               upstream: LoopbackHTTPServer) -> None:
    lines, sent, error = _stream_then_sigterm(hasty, chunk_ms=2000)  # six upstream events: ~12 s
    ended = time.monotonic() - sent
    assert "data: [DONE]" not in lines
    assert ended < 6, f"the stream ran {ended:.1f} s past SIGTERM with graceful_shutdown: 1"
    assert hasty.proc.wait(6) == 0, hasty.output()
    assert time.monotonic() - sent < 6
    assert error is not None or len(lines) < 6  # cut, not completed
