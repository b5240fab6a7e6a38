"""What Prometheus metrics cost per call: an instrumented chat call with metrics off vs on.

Usage: python bench/metrics_overhead.py [--http-calls 2000] [--calls 20000] [--rounds 7]

Rows, each the same call measured interleaved in rounds (the least disturbed round is reported, CPU time
of this process per call, as in ``bench/telemetry_overhead.py``):

* ``off`` — ``InstrumentedModel`` around the model, nobody subscribed (metrics not enabled: the wrapper
  calls straight through);
* ``on``  — the same with a :class:`~aixpy.telemetry.prometheus.PrometheusMetrics` subscribed (an event
  built per call, the latency histogram, request/token/cost counters updated).

``http chat`` is the goal's row: an OpenAI-compatible stub in its own process on loopback (from
``bench/llm_overhead.py``), so the stub's own time is left out; goal: on/off <= 1.03. ``stub chat`` is a
TestModel in-process (no I/O: the absolute cost of the metrics, in µs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prometheus_client import CollectorRegistry

from _common import load_average, overhead_args, stub_server, timed
from aixpy.telemetry.prometheus import PrometheusMetrics
from llm_overhead import STUB

Call = Callable[[], object]


def measure(rows: dict[str, Call], per_round: int, rounds: int) -> None:
    metrics = PrometheusMetrics(CollectorRegistry())
    for call in rows.values():  # warm-up: imports, caches, connections, metric children
        timed(call, 20)
        metrics.subscribe()
        timed(call, 20)
        metrics.unsubscribe()
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, call in rows.items():
            times.setdefault((name, "off"), []).append(timed(call, per_round)[1] / per_round)
            metrics.subscribe()
            try:
                times.setdefault((name, "on"), []).append(timed(call, per_round)[1] / per_round)
            finally:
                metrics.unsubscribe()
    for name in rows:
        off, on = (min(times[(name, m)]) * 1e6 for m in ("off", "on"))
        print(f"{name:<12}{off:>11.2f}{on:>11.2f}{on - off:>11.2f}{on / off:>11.3f}x")


def main() -> int:
    args = overhead_args(__doc__)
    from aixpy import llm
    from aixpy.llm import TestModel
    from aixpy.llm.policies import InstrumentedModel

    print(f"python {sys.version.split()[0]}; {args.rounds} interleaved rounds; CPU us per call, least disturbed round")
    print(f"{'row':<12}{'off':>11}{'on':>11}{'on - off':>11}{'on/off':>12}")
    stub = InstrumentedModel(TestModel(provider="openai", model="gpt-4o-mini", default="a short answer of six words"))
    measure({"stub chat": lambda: stub.chat("hello there")}, max(1, args.calls // args.rounds), args.rounds)
    with stub_server(STUB) as base:
        model = InstrumentedModel(llm.new("openai_compatible:stub", endpoint=base, environ={}))
        try:
            measure({"http chat": lambda: model.chat("Say hello.")}, max(1, args.http_calls // args.rounds),
                    args.rounds)
        finally:
            model.close()
    print(load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
