"""Pieces the overhead benchmarks share: a stub HTTP server in its own process, timing of a call,
interleaved rounds with medians, the usual arguments and the closing load-average line."""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

Call = Callable[[], object]

#: The serving half of a stub server script: keep-alive HTTP/1.1 on loopback, port ``argv[1]``, ``ready``
#: printed once listening. The script's own half, before it, imports asyncio and sys and defines
#: ``reply(body: bytes) -> bytes``, the whole HTTP response to a request body.
STUB_SERVE = textwrap.dedent(r'''
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                writer.write(reply(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
        print("ready", flush=True)
        async with server:
            await server.serve_forever()
    asyncio.run(main())
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(call: Call, n: int) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) for ``n`` calls."""
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        call()
    return time.perf_counter() - t, time.process_time() - c


@contextmanager
def stub_server(script: str) -> Iterator[str]:
    """Run ``script`` (a stub server: its port is ``argv[1]``, it prints ``ready`` once listening) in its
    own process, so its time is not this process's; yields its ``/v1`` base URL on loopback."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", script, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)


def overhead_args(doc: str | None) -> argparse.Namespace:
    """The arguments of the instrumentation overhead benchmarks (in-process calls, HTTP calls, rounds)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000, help="in-process calls per row (split over the rounds)")
    ap.add_argument("--http-calls", type=int, default=2000, help="HTTP calls per row (split over the rounds)")
    ap.add_argument("--rounds", type=int, default=7)
    return ap.parse_args()


def load_average() -> str:
    return f"(load average at the end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])})"


def median_rounds(rows: Mapping[str, tuple[Call, Call]], per_round: int, rounds: int,
                  warmup: int) -> dict[str, tuple[float, float]]:
    """Each row is ``(call, close)``: warm every call up, time them in interleaved rounds of ``per_round``
    calls, close them; the median round of each as (wall µs, CPU µs) per call."""
    for call, _ in rows.values():
        timed(call, warmup)  # connections, imports, caches
    wall: dict[str, list[float]] = {k: [] for k in rows}
    cpu: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(rounds):
        for name, (call, _) in rows.items():
            w, c = timed(call, per_round)
            wall[name].append(w / per_round)
            cpu[name].append(c / per_round)
    for _, close in rows.values():
        close()
    return {k: (statistics.median(wall[k]) * 1e6, statistics.median(cpu[k]) * 1e6) for k in rows}


def print_relative(mode: str, medians: dict[str, tuple[float, float]], base: str, widths: tuple[int, int]) -> None:
    """One line per row: wall and CPU µs per call, each also relative to row ``base``."""
    base_us, base_cpu = medians[base]
    for name, (us, cpu_us) in medians.items():
        print(f"{mode:<{widths[0]}}{name:<{widths[1]}}{us:>10.1f}{us / base_us:>9.2f}x"
              f"{cpu_us:>10.1f}{cpu_us / base_cpu:>9.2f}x")
