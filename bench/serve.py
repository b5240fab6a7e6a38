"""Throughput and added latency of `aixpy serve` over calling the same stub upstream directly, driven by wrk.

Usage: python bench/serve.py [--duration 5] [--concurrency 1 16 64] [--workers 1 2] [--litellm-venv PATH]

The upstream is the fast OpenAI-compatible stub of bench/llm_overhead.py (asyncio, keep-alive, canned
replies: one JSON completion; an SSE stream of 8 deltas + usage + [DONE]) in its own process on loopback.
`aixpy serve` runs as its own process (`python -m aixpy serve --config <tmp> --port <free>`, h11, no
client keys since it listens on 127.0.0.1) with one agent whose provider is the stub. wrk (Debian
package `wrk`; one thread, `-c` connections, keep-alive, a Lua script for the POST body) loads each
target for `--duration` seconds; "direct" is wrk against the stub itself, so "added" = gateway percentile
- direct percentile at the same concurrency. Loopback only; every run is bounded by --duration.

LiteLLM's proxy is measured on the same stub when a venv holding it exists (--litellm-venv, default
~/.cache/aixpy/venv-litellm), else the table says it was not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from _common import free_port, load_average, stub_server
from llm_overhead import STUB

SRC = str(Path(__file__).resolve().parents[1] / "src")
LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {body}\n'
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _body(model: str, stream: bool) -> str:
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Say hello."}]})


@contextmanager
def gateway(upstream: str, workers: int) -> Iterator[str]:
    """`aixpy serve` in its own process in front of ``upstream``; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "aixpy.yaml"
        config.write_text(f"agents:\n  - name: assistant\n    providers:\n      - provider: openai_compatible\n"
                          f"        model: stub\n        endpoint: {upstream}\n        api_key: sk-stub\n"
                          f"serve:\n  graceful_shutdown: 1\n")
        env = {**os.environ, "PYTHONPATH": SRC}
        proc = subprocess.Popen([sys.executable, "-m", "aixpy", "serve", "--config", str(config), "--port", str(port),
                                 "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"aixpy serve exited with {proc.returncode}")
        try:
            r = httpx.post(f"{url}/v1/chat/completions", content=_body("assistant", False),
                           headers={"content-type": "application/json"}, timeout=5)
            if r.status_code == 200:
                return
            raise SystemExit(f"aixpy serve answered {r.status_code}: {r.text[:300]}")
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("aixpy serve did not start")


def wrk(url: str, body: str, connections: int, duration: int, script_dir: str) -> dict[str, float]:
    """One wrk run: requests/s, p50/p99 in ms, errors (socket errors + non-2xx)."""
    script = Path(script_dir) / "post.lua"
    script.write_text(LUA.format(body=json.dumps(body)))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
                          "-s", str(script), f"{url}/v1/chat/completions"],
                         capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    pct = {p: float(v) * UNITS[u] for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": pct["50"], "p99": pct["99"], "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="gateway rows: uvicorn worker counts")
    ap.add_argument("--litellm-venv", default=str(Path.home() / ".cache/aixpy/venv-litellm"))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    litellm_note = (f"litellm proxy: not measured ({args.litellm_venv} does not exist)"
                    if not (Path(args.litellm_venv) / "bin" / "litellm").exists()
                    else "litellm proxy: venv found but this script does not drive it yet")
    results: dict[tuple[str, bool, int], dict[str, float]] = {}
    with stub_server(STUB) as upstream, tempfile.TemporaryDirectory() as tmp:
        root = upstream.removesuffix("/v1")
        targets: list[tuple[str, str, str]] = [("direct (stub)", root, "stub")]
        for stream in (False, True):
            for c in args.concurrency:
                results["direct (stub)", stream, c] = wrk(root, _body("stub", stream), c, args.duration, tmp)
        for workers in args.workers:
            name = f"aixpy serve, {workers} worker" + ("s" if workers > 1 else "")
            targets.append((name, "", "assistant"))
            with gateway(upstream, workers) as url:
                for stream in (False, True):
                    wrk(url, _body("assistant", stream), 16, 1, tmp)  # warm up
                    for c in args.concurrency:
                        results[name, stream, c] = wrk(url, _body("assistant", stream), c, args.duration, tmp)
    print(f"wrk -t1, {args.duration:g} s per row, loopback, {os.cpu_count()} cores; added = row - direct")
    print(f"{'target':<24}{'mode':<8}{'conc':>5}{'req/s':>10}{'vs direct':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'added p50':>10}{'added p99':>10}{'errors':>8}")
    for name, _, _ in targets:
        for stream in (False, True):
            for c in args.concurrency:
                r, d = results[name, stream, c], results["direct (stub)", stream, c]
                mode = "stream" if stream else "json"
                print(f"{name:<24}{mode:<8}{c:>5}{r['rps']:>10.0f}{r['rps'] / d['rps']:>9.2f}x"
                      f"{r['p50']:>9.2f}{r['p99']:>9.2f}{r['p50'] - d['p50']:>10.2f}{r['p99'] - d['p99']:>10.2f}"
                      f"{r['errors']:>8.0f}")
    print(litellm_note)
    print(load_average())
    return 0


if __name__ == "__main__":
    sys.exit(main())
