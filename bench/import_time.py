"""Cold import time of aixpy and its subpackages, each in a fresh interpreter.

Usage: python bench/import_time.py [--runs 7]

Prints the median wall time of ``import <module>`` over several fresh processes, next to an empty
interpreter start, plus the heaviest modules from ``python -X importtime``. Goal: ``import aixpy``
< 150 ms; heavy libraries (numpy, onnxruntime, pydantic models) load only when used.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

MODULES = ["aixpy", "aixpy.errors", "aixpy.config", "aixpy.llm", "aixpy.embeddings", "aixpy.vectorstores", "aixpy.cli"]
GOAL_MS = 150.0
SNIPPET = "import time; t=time.perf_counter(); import {m}; print((time.perf_counter()-t)*1000)"


def measure(module: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", SNIPPET.format(m=module)], capture_output=True, text=True,
                             check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def heaviest(module: str, n: int = 5) -> list[tuple[int, str]]:
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                         text=True, check=True)
    rows = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cum_us, name = line.removeprefix("import time:").split("|")
        rows.append((int(cum_us), name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {args.runs} fresh processes per row, median")
    print(f"{'module':<22}{'import ms':>10}{'vs goal 150ms':>15}  heaviest dependencies (cumulative ms)")
    for m in MODULES:
        ms = measure(m, args.runs)
        heavy = ", ".join(f"{name.strip()} {us / 1000:.0f}" for us, name in heaviest(m)[1:4])
        print(f"{m:<22}{ms:>10.1f}{ms / GOAL_MS:>14.2f}x  {heavy}")


if __name__ == "__main__":
    main()
