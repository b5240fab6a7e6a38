"""CLI consistency: ``-h`` everywhere, ``--version``, usage errors as one line with exit 2 naming the
flag, options checked before anything is written, ``doctor``'s exit codes and wording, and ``chat``'s
timeout and waiting indicator."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner, Result

from aixpy import __version__
from aixpy.cli import app
from aixpy.llm.model import ChatStream
from aixpy.llm.testing import TestModel
from aixpy.llm.types import ChatResponse

COMMANDS = [[], ["index"], ["search"], ["embed"], ["doctor"], ["version"], ["chat"], ["models"], ["collections"],
            ["collections", "list"], ["collections", "stats"], ["collections", "drop"], ["bench"],
            ["bench", "embeddings"]]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nsome text about bread\n")
    (tmp_path / "aixpy.yaml").write_text("embeddings:\n  provider: hash\nvectorstore:\n  provider: memory\n")
    return tmp_path


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "aixpy")
def test_dash_h_is_help_on_every_command(command: list[str]) -> None:
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert long.exit_code == 0, long.output
    assert (short.exit_code, short.stdout) == (0, long.stdout)
    assert "Usage:" in short.stdout


def test_version_flag() -> None:
    res = cli("--version")
    assert (res.exit_code, res.stdout.strip()) == (0, f"aixpy {__version__}")
    assert cli("version").stdout == res.stdout


USAGE_ERRORS = [
    (["search", "x", "--filter", "{nope"], ["--filter", "not valid JSON", """'{"source": "guide.md"}'"""]),
    (["search", "x", "--filter", '{"a": {"$nope": 1}}'], ["--filter", "$nope"]),
    (["search", "x", "--limit", "0"], ["--limit", "search --help"]),
    (["search", "x", "--nope"], ["--nope", "search --help"]),
    (["index", "docs", "--chunk-size", "800", "--overlap", "800"], ["--overlap", "--chunk-size", "399"]),
    (["index", "docs", "--chunk-size", "800", "--overlap", "1200"], ["--overlap", "--chunk-size"]),
    (["index", "docs", "--chunk-size", "800", "--overlap", "400"], ["--overlap", "less than half"]),
    (["index", "docs", "--chunk-size", "10"], ["--chunk-size"]),
    (["index"], ["PATH", "index --help"]),
    (["chat", "hi", "--timeout", "0"], ["--timeout"]),
    (["no-such-command"], ["no-such-command", "--help"]),
    (["collections", "stats"], ["NAME"]),
    (["bench", "embeddings", "--texts", "x"], ["--texts"]),
]


@pytest.mark.parametrize(("args", "words"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_naming_the_flag(work: Path, args: list[str], words: list[str]) -> None:
    res = cli(*args)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert res.stderr.startswith("error: ")
    assert res.stderr.endswith("\n")
    assert res.stderr.count("\n") == 1, res.stderr
    for w in words:
        assert w.lower() in res.stderr.lower(), (w, res.stderr)
    assert "Traceback" not in res.stderr
    assert not (work / ".aixpy").exists()  # refused before anything was opened or written


def test_overlap_is_checked_before_any_file_fails(work: Path) -> None:
    ok = cli("index", "docs", "--chunk-size", "800", "--overlap", "399", "--json")
    assert ok.exit_code == 0, ok.output


def test_doctor_exits_2_on_a_config_error(work: Path) -> None:
    (work / "aixpy.yaml").write_text("embeddings:\n  provider: hash\n  hassh: {}\n")
    res = cli("doctor")
    assert res.exit_code == 2, res.output
    assert "config" in res.stdout
    assert "FAIL" in res.stdout
    assert res.stderr.startswith("error: ")
    assert res.stderr.count("\n") == 1
    assert "hassh" in res.stderr


def test_doctor_describes_things_without_object_reprs(work: Path) -> None:
    res = cli("doctor")
    assert res.exit_code == 0, res.output
    assert " object at 0x" not in res.stdout
    assert "<" not in res.stdout
    assert "MemoryStore, path .aixpy/memory.snapshot" in res.stdout
    assert "HashEmbeddings, model hash-bow" in res.stdout


class _Recording(TestModel):
    """The test provider, recording the timeout each call was given."""

    timeouts: ClassVar[list[float | None]] = []

    def chat(self, prompt: Any, /, *, timeout: float | None = None, **kw: Any) -> ChatResponse:
        self.timeouts.append(timeout)
        return super().chat(prompt, timeout=timeout, **kw)

    def stream(self, prompt: Any, /, *, timeout: float | None = None, **kw: Any) -> ChatStream:
        self.timeouts.append(timeout)
        return super().stream(prompt, timeout=timeout, **kw)


def test_chat_waits_60_s_by_default_and_takes_timeout(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aixpy.cli._llm._resolve_model", lambda *a, **k: _Recording("hello"))
    _Recording.timeouts.clear()
    for args in (["chat", "hi"], ["chat", "hi", "--no-stream"], ["chat", "hi", "--timeout", "2.5"]):
        res = cli(*args)
        assert res.exit_code == 0, res.output
        assert res.stdout.strip() == "hello"
        assert "waiting" not in res.stderr  # stderr is no terminal here
    assert _Recording.timeouts == [60.0, 60.0, 2.5]


# --------------------------------------------------------------------------- a server that never answers


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback TCP server that accepts connections and never answers (until the test ends)."""
    srv = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join()
    for c in conns:
        c.close()
    srv.close()


def _chat_process(port: int, timeout: str, stderr: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}
    env.update({"COLUMNS": "120", "TERM": "xterm-256color"})
    env.pop("NO_COLOR", None)
    return subprocess.Popen([sys.executable, "-m", "aixpy", "chat", "--model", "ollama:llama3", "--endpoint",
                             f"http://127.0.0.1:{port}", "--timeout", timeout, "hello"],
                            stdout=subprocess.PIPE, stderr=stderr, env=env)


def test_chat_gives_up_after_its_timeout_with_one_line(silent_server: int, tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = _chat_process(silent_server, "1.5", subprocess.PIPE)
    _stdout, stderr = proc.communicate(timeout=60)
    elapsed = time.monotonic() - t0
    text = stderr.decode()
    assert proc.returncode == 1, text
    assert elapsed < 20  # 1.5 s of waiting plus the interpreter's start-up, not 600 s
    assert text.startswith("error: "), text
    assert text.count("\n") == 1, text
    assert "waiting" not in text  # stderr is a pipe: no spinner


def test_chat_shows_a_spinner_on_a_terminal(silent_server: int) -> None:
    master, slave = pty.openpty()
    proc = _chat_process(silent_server, "2", slave)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    assert proc.stdout is not None
    proc.stdout.close()
    text = seen.decode(errors="replace")
    assert proc.returncode == 1, text
    assert "waiting for ollama:llama3 (up to 2 s)" in text
    assert "error:" in text
