"""LLM response cache: the latency of a hit (memory, Redis on loopback) next to a miss.

Usage: python bench/llm_cache.py [--calls 4000] [--http-calls 400] [--rounds 5]

Every row is one public ``model.chat(...)`` call, in µs per call: wall time (median of interleaved
rounds, and the best round) and this process's CPU time (best round; on a loaded shared machine
the least disturbed measure of what the call itself costs). A hit includes everything a caller
pays: building the request, the canonical key (JSON + SHA-256), the lookup, decoding the entry and
finishing the answer.

* ``stub``            — TestModel, no cache (what a call costs without any network);
* ``memory hit``      — CachedModel over it, the same request every time;
* ``memory miss``     — a new prompt every call: key + lookup + store + the stub call;
* ``redis hit/miss``  — the same over a redis-server started on loopback for the run;
* ``http miss``       — no cache, an OpenAI-compatible stub in its own process on loopback
  (``bench/llm_overhead.py``): the cheapest a real miss can be; a provider's is 10^5–10^7 µs.

Goals (issue 10): memory hit < 50 µs, Redis hit < 1 ms on loopback.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, load_average, stub_server
from llm_overhead import STUB


def start_redis() -> tuple[str, subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    root = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", root, "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0", proc
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise SystemExit("redis-server did not start")


def rows(redis_url: str, http_base: str) -> dict[str, tuple[Callable[[], None], bool]]:
    from aixpy import llm
    from aixpy.llm import TestModel
    from aixpy.llm.policies import CachedModel, RedisResponseCache

    prompt = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2? " * 8}]
    stub = TestModel(default="Four. " * 20, provider="openai", model="gpt-4o-mini")
    memory = CachedModel(TestModel(default="Four. " * 20, provider="openai", model="gpt-4o-mini"))
    redis = CachedModel(TestModel(default="Four. " * 20, provider="openai", model="gpt-4o-mini"),
                        RedisResponseCache(redis_url, prefix="bench:"))
    http = llm.new("openai_compatible:stub", endpoint=http_base, environ={})
    fresh = itertools.count()
    memory.chat(prompt, temperature=0)
    redis.chat(prompt, temperature=0)
    assert memory.chat(prompt, temperature=0).cached
    assert redis.chat(prompt, temperature=0).cached

    def miss(model: CachedModel) -> Callable[[], None]:
        return lambda: model.chat([*prompt[:1], {"role": "user", "content": f"What is {next(fresh)}+2?"}],
                                  temperature=0)

    return {
        "stub": (lambda: stub.chat(prompt, temperature=0), False),
        "memory hit": (lambda: memory.chat(prompt, temperature=0), False),
        "memory miss": (miss(memory), False),
        "redis hit": (lambda: redis.chat(prompt, temperature=0), False),
        "redis miss": (miss(redis), False),
        "http miss": (lambda: http.chat(prompt, temperature=0), True),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--http-calls", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    redis_url, redis_proc = start_redis()
    try:
        with stub_server(STUB) as base:
            table = rows(redis_url, base)
            times: dict[str, list[float]] = {name: [] for name in table}
            cpu: dict[str, list[float]] = {name: [] for name in table}
            for _ in range(args.rounds):
                for name, (call, is_http) in table.items():
                    n = max(1, (args.http_calls if is_http else args.calls) // args.rounds)
                    t, c = time.perf_counter(), time.process_time()
                    for _ in range(n):
                        call()
                    times[name].append((time.perf_counter() - t) / n * 1e6)
                    cpu[name].append((time.process_time() - c) / n * 1e6)
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
    print(f"python {sys.version.split()[0]}; {args.rounds} interleaved rounds; µs per call")
    print(f"{'row':<14}{'wall median':>12}{'wall best':>11}{'cpu best':>10}")
    for name, samples in times.items():
        print(f"{name:<14}{statistics.median(samples):>12.1f}{min(samples):>11.1f}{min(cpu[name]):>10.1f}")
    print(load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
