"""What instrumentation costs: an instrumented call vs the bare call, with nobody listening and with one.

Usage: python bench/telemetry_overhead.py [--calls 20000] [--http-calls 2000] [--rounds 7]

Rows (each the same call three ways, interleaved in rounds; the least disturbed round is reported):

* ``bare``      — the object itself (no wrapper, no HTTP bridge);
* ``quiet``     — wrapped by its ``Instrumented*`` wrapper (HTTP: the telemetry bridge on the client), with
  **no** subscriber and no ``on_event``: the wrapper only checks that nobody listens;
* ``heard``     — the same with one global subscriber (a no-op handler): events are built and delivered.

Every row reports this process's CPU time per call (``time.process_time``), in the least disturbed round
(the minimum over rounds): on a shared 2-core machine wall time and even the median round mostly measure
the other processes. In-process rows: TestModel chat and stream, hash embeddings, memory-store
count/query. The HTTP row: an OpenAI-compatible stub in its own process on loopback (from
``bench/llm_overhead.py``), so the stub's own time is left out. "quiet/bare" is the number that must stay
~1.00 (no clock read, no event built): what is left is one wrapper's method call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, overhead_args, stub_server, timed
from aixpy import telemetry
from llm_overhead import STUB

Call = Callable[[], object]


def llm_rows() -> dict[str, tuple[Call, Call]]:
    from aixpy.llm import TestModel
    from aixpy.llm.policies import InstrumentedModel

    bare = TestModel(provider="openai", model="gpt-4o-mini", default="a short answer of six words")
    wrapped = InstrumentedModel(TestModel(provider="openai", model="gpt-4o-mini",
                                          default="a short answer of six words"))

    def stream(model: TestModel | InstrumentedModel) -> Call:
        def call() -> None:
            with model.stream("hello there") as s:
                for _ in s:
                    pass
        return call

    return {"llm chat": (lambda: bare.chat("hello there"), lambda: wrapped.chat("hello there")),
            "llm stream": (stream(bare), stream(wrapped))}


def embedding_rows() -> dict[str, tuple[Call, Call]]:
    from aixpy.embeddings.hashing import HashEmbeddings
    from aixpy.embeddings.policies import InstrumentedEmbeddings

    bare = HashEmbeddings(dimensions=64)
    wrapped = InstrumentedEmbeddings(HashEmbeddings(dimensions=64))
    texts = ["a short text to embed"]
    return {"embed 1 text": (lambda: bare.embed_array(texts), lambda: wrapped.embed_array(texts))}


def store_rows() -> dict[str, tuple[Call, Call]]:
    import numpy as np

    from aixpy.vectorstores import Document, InstrumentedStore, Query
    from aixpy.vectorstores.memory import MemoryStore

    rng = np.random.default_rng(0)
    docs = [Document(f"d{i}", "x", rng.standard_normal(32).tolist()) for i in range(200)]
    bare = MemoryStore().collection("c")
    wrapped = InstrumentedStore(MemoryStore()).collection("c")
    bare.upsert_batch(docs)
    wrapped.upsert_batch(docs)
    q = Query(embedding=rng.standard_normal(32).tolist(), limit=5)
    return {"store count": (bare.count, wrapped.count),
            "store query": (lambda: bare.query(q), lambda: wrapped.query(q))}


def http_rows(base: str) -> tuple[dict[str, tuple[Call, Call]], Callable[[], None]]:
    from aixpy import llm

    bare = llm.new("openai_compatible:stub", endpoint=base, environ={})
    bridged = llm.new("openai_compatible:stub", endpoint=base, environ={})
    assert telemetry.attach_http(bridged) == 1

    def close() -> None:
        bare.close()
        bridged.close()

    return {"http chat": (lambda: bare.chat("Say hello."), lambda: bridged.chat("Say hello."))}, close


def measure(rows: dict[str, tuple[Call, Call]], per_round: int, rounds: int) -> None:
    for bare, wrapped in rows.values():  # warm-up: imports, caches, connections
        timed(bare, 20)
        timed(wrapped, 20)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, (bare, wrapped) in rows.items():
            for mode, call in (("bare", bare), ("quiet", wrapped)):
                times.setdefault((name, mode), []).append(timed(call, per_round)[1] / per_round)
            stop = telemetry.subscribe(lambda e: None)
            try:
                times.setdefault((name, "heard"), []).append(timed(wrapped, per_round)[1] / per_round)
            finally:
                stop()
    for name in rows:
        b, q, h = (min(times[(name, m)]) * 1e6 for m in ("bare", "quiet", "heard"))
        print(f"{name:<14}{b:>11.2f}{q:>11.2f}{q / b:>11.3f}x{h:>11.2f}{h / b:>11.3f}x")


def main() -> int:
    args = overhead_args(__doc__)
    print(f"python {sys.version.split()[0]}; {args.rounds} interleaved rounds; CPU us per call, least disturbed round")
    print(f"{'row':<14}{'bare':>11}{'quiet':>11}{'quiet/bare':>12}{'heard':>11}{'heard/bare':>12}")
    per_round = max(1, args.calls // args.rounds)
    measure({**llm_rows(), **embedding_rows(), **store_rows()}, per_round, args.rounds)
    with stub_server(STUB) as base:
        rows, close = http_rows(base)
        try:
            measure(rows, max(1, args.http_calls // args.rounds), args.rounds)
        finally:
            close()
    print(load_average())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
