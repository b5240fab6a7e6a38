"""Recall@10 vs QPS of the ANN backends' query-time knob, one index build per backend.

Builds each index once on the same data, then sweeps the query-time candidate list size
(``qdrant.hnsw_ef``, ``pgvector.hnsw_ef_search``) and prints recall@10 and
single-query QPS for each value, side by side. Data: ``bench/search.py``'s generator (``--flat`` drops
its decaying spectrum, which makes the set harder). PostgreSQL is started on loopback by the script.

    .venv/bin/python bench/ann_knobs.py --n 100000 --flat                 # ~6 min on 2 cores
    .venv/bin/python bench/ann_knobs.py --n 20000 --backends qdrant       # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from aixpy import vectorstores  # noqa: E402
from aixpy.vectorstores import CollectionOptions, Document, Query  # noqa: E402
from search import exact_top_k, make_data  # noqa: E402

KNOBS = {"qdrant": [100, 128, 200, 256, 400], "pgvector": [40, 100, 200, 400]}


@contextlib.contextmanager
def open_backend(name: str, tmp: Path) -> Iterator[tuple[Any, Callable[[int], None]]]:
    if name == "pgvector":
        from tests._services.postgres import start_postgres

        with start_postgres("-c maintenance_work_mem=1GB") as dsn:
            store = vectorstores.new({"provider": "pgvector", "pgvector": {"connection_string": dsn}})
            yield store, lambda ef: setattr(store, "hnsw_ef_search", ef)
            store.close()
    else:
        store = vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(tmp / "q")}})
        yield store, lambda ef: setattr(store, "hnsw_ef", ef)
        store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--flat", action="store_true", help="no decaying spectrum (a harder data set)")
    ap.add_argument("--backends", default="qdrant,pgvector", help="comma list of: qdrant, pgvector")
    args = ap.parse_args()
    x, qs = make_data(args.n, args.queries, args.dims, args.latent, args.seed)
    if args.flat:  # same shape, every latent factor equally strong
        rng = np.random.default_rng(args.seed)
        proj = rng.standard_normal((args.latent, args.dims)).astype(np.float32) / np.sqrt(args.latent)

        def draw(m: int) -> np.ndarray:
            v = rng.standard_normal((m, args.latent)).astype(np.float32) @ proj
            v += 0.05 * rng.standard_normal((m, args.dims)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        x, qs = draw(args.n), draw(args.queries)
    truth = exact_top_k(x, qs, 10)
    docs = [Document(id=f"d{i}", content="", embedding=x[i].tolist()) for i in range(args.n)]
    print(f"data: {args.n} x {args.dims}, rank {args.latent}{' flat' if args.flat else ''}; {args.queries} queries")
    print(f"{'backend':<9} {'knob':>5} {'recall@10':>10} {'QPS':>8}   (build s)")
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, open_backend(name, Path(tmp)) as (store, set_ef):
            coll = store.collection("bench", CollectionOptions(dimensions=args.dims))
            t0 = time.perf_counter()
            for a in range(0, args.n, 10_000 if name != "pgvector" else args.n):
                coll.upsert_batch(docs[a : a + (10_000 if name != "pgvector" else args.n)])
            if hasattr(coll, "optimize"):
                coll.optimize()
            coll.query(Query(qs[0].tolist(), limit=10))  # builds lazy indexes
            build = time.perf_counter() - t0
            for ef in KNOBS[name]:
                set_ef(ef)
                hits, t = 0, time.perf_counter()
                for i in range(args.queries):
                    got = {int(m.document.id[1:]) for m in coll.query(Query(qs[i].tolist(), limit=10)).matches}
                    hits += len(got & set(truth[i].tolist()))
                dt = time.perf_counter() - t
                recall = hits / (10 * args.queries)
                print(f"{name:<9} {ef:>5} {recall:>10.4f} {args.queries / dt:>8.1f}   ({build:.0f})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
