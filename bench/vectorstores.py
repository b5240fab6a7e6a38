"""Vector stores side by side: insert throughput, index build, single-query QPS and recall@10.

Every backend gets the same ``--n`` x 384 low-rank vectors and the same queries (the generator of
``bench/search.py``: 64 latent factors projected to 384 dims + noise, unit length), cosine, top-10,
through aixpy's public API (``aixpy.vectorstores.new(config)``). Rows:

- ``memory-exact``  in-process brute force (the reference: ratio 1.00x);
- ``memory-hnsw``   memory backend with ``memory: {index: hnsw}``;
- ``qdrant``        embedded Qdrant engine (qdrant-edge), ``optimize()`` builds its HNSW graph;
- ``pgvector``      PostgreSQL + pgvector, loaded first, then the HNSW index is built;
- ``firestore``     the Firestore emulator (``--subset`` docs: it is a slow JVM emulator);
- ``qdrant-local``  qdrant-client local mode (``--subset`` docs: pure Python, exhaustive).

Subset rows are compared with a memory-exact row measured on the same subset. Recall@10 is against
exact float64 top-10 of the documents that backend holds. "build s" is ``optimize()`` (if the
backend has it) plus the first query (which builds lazy indexes). PostgreSQL and the Firestore
emulator are started on free loopback ports in temporary directories and stopped at the end; a
server that cannot start gets a row saying why. Runs inside a temporary working directory.

    .venv/bin/python bench/vectorstores.py                                  # 100k, all backends
    .venv/bin/python bench/vectorstores.py --n 5000 --queries 100           # smoke run
    .venv/bin/python bench/vectorstores.py --backends memory-exact,pgvector
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("memory-exact", "memory-hnsw", "qdrant", "pgvector", "firestore", "qdrant-local")
SUBSET_BACKENDS = frozenset({"firestore", "qdrant-local"})


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="documents (default 100000)")
    p.add_argument("--queries", type=int, default=500, help="single queries timed per backend (default 500)")
    p.add_argument("--slow-queries", type=int, default=30,
                   help="queries for the subset backends (firestore, qdrant-local; default 30)")
    p.add_argument("--subset", type=int, default=10_000, help="documents for the subset backends (default 10000)")
    p.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated, from: {', '.join(BACKENDS)}")
    p.add_argument("--batch", type=int, default=1000, help="documents per upsert_batch call")
    p.add_argument("--dims", type=int, default=384)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads (pinned before numpy loads)")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    a.backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    unknown = [b for b in a.backends if b not in BACKENDS]
    if unknown:
        p.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return a


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search import F32, I64, exact_top_k, make_data, recall  # noqa: E402

K = 10


class CannotStart(Exception):
    """A server the backend needs could not be started (the message says why)."""


# ====================================================================== servers


def _services() -> Any:
    """The test suite's server starters (``tests/_services``: the same servers the tests use)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from tests._services import firestore
        from tests._services import postgres as pg
    except ImportError as e:  # pytest is a dev dependency
        raise CannotStart(f"cannot import the server helpers of tests/_services ({e}); install aixpy[dev]") from e
    return firestore, pg


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL 18 + pgvector, with more ``maintenance_work_mem`` for HNSW builds; yields a DSN."""
    _, pg = _services()
    with contextlib.ExitStack() as stack:
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                dsn = stack.enter_context(pg.start_postgres(
                    "-c maintenance_work_mem=1GB -c max_parallel_maintenance_workers=1"))
        except pg.ServiceError as e:
            raise CannotStart(f"PostgreSQL: {e}") from e
        yield dsn


@contextlib.contextmanager
def firestore_emulator() -> Iterator[str]:
    """The Google Firestore emulator (JVM) on a free port; yields ``host:port``."""
    fs, pg = _services()
    with tempfile.TemporaryDirectory(prefix="aixpy-bench-fs-") as tmp, contextlib.ExitStack() as stack:
        try:
            host = stack.enter_context(fs.start_firestore_emulator(Path(tmp)))
        except pg.ServiceError as e:
            raise CannotStart(f"Firestore emulator: {e}") from e
        yield host


# ====================================================================== measuring one backend


@dataclass
class Row:
    backend: str
    n: int
    queries: int = 0
    insert_s: float = float("nan")
    build_s: float = float("nan")
    query_s: float = float("nan")
    recall: float = float("nan")
    note: str = ""

    @property
    def insert_rate(self) -> float:
        return self.n / self.insert_s

    @property
    def qps(self) -> float:
        return self.queries / self.query_s


def measure(name: str, config: dict[str, Any], x: F32, qs: F32, truth: I64, batch: int) -> Row:
    """Insert ``x`` in ``upsert_batch`` calls of ``batch`` documents, build (``optimize()`` if the
    backend has one, then a first query), then time one query at a time; the collection is dropped
    and the store closed after."""
    from aixpy import vectorstores
    from aixpy.vectorstores import CollectionOptions, Document, Query

    row = Row(name, len(x), len(qs))
    store = vectorstores.new(config)
    try:
        coll = store.collection("bench", CollectionOptions(dimensions=x.shape[1], metric="cosine"))
        t = time.perf_counter()
        for a in range(0, len(x), batch):
            res = coll.upsert_batch([Document(id=f"d{i}", embedding=x[i]) for i in range(a, min(a + batch, len(x)))])
            if res.failed:
                raise RuntimeError(f"{res.failed} documents failed: {res.errors[:1]}")
        row.insert_s = time.perf_counter() - t
        queries = [Query(q, limit=K) for q in qs]
        t = time.perf_counter()
        optimize = getattr(coll, "optimize", None)
        if callable(optimize):
            optimize()
        coll.query(queries[0])
        row.build_s = time.perf_counter() - t
        got: list[list[int]] = []
        t = time.perf_counter()
        for q in queries:
            got.append([int(m.document.id[1:]) for m in coll.query(q).matches])
        row.query_s = time.perf_counter() - t
        row.recall = recall(got, truth)
        store.drop_collection("bench")
    finally:
        store.close()
    return row


def configs(tmp: Path) -> dict[str, Callable[[contextlib.ExitStack], dict[str, Any]]]:
    """Backend name -> function returning its config (starting its server in the exit stack)."""

    def pg(stack: contextlib.ExitStack) -> dict[str, Any]:
        dsn = stack.enter_context(postgres())
        return {"provider": "pgvector", "pgvector": {"connection_string": dsn, "table": "bench"}}

    def fs(stack: contextlib.ExitStack) -> dict[str, Any]:
        host = stack.enter_context(firestore_emulator())
        return {"provider": "firestore", "firestore": {"project_id": "aixpy-bench", "emulator_host": host}}

    return {
        "memory-exact": lambda _s: {"provider": "memory"},
        "memory-hnsw": lambda _s: {"provider": "memory", "memory": {"index": "hnsw"}},
        "qdrant": lambda _s: {"provider": "qdrant", "qdrant": {"path": str(tmp / "qdrant")}},
        "pgvector": pg,
        "firestore": fs,
        "qdrant-local": lambda _s: {"provider": "qdrant", "qdrant": {"local": ":memory:"}},
    }


def _not_what_was_asked(name: str, config: dict[str, Any]) -> str | None:
    """A reason when the backend registered today cannot honour ``config`` (so the row would lie)."""
    from aixpy import vectorstores

    if name == "qdrant-local":
        store = vectorstores.new(config)
        try:
            if type(store).__name__ == "QdrantStore" and hasattr(store, "hnsw_m"):
                return "qdrant-client local mode not available in this aixpy (the embedded engine answered)"
        finally:
            store.close()
    return None


# ====================================================================== main


def main(args: argparse.Namespace) -> int:
    n = args.n
    subset = min(args.subset, n)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"threads pinned to {args.threads}; loadavg {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    x, qs_all = make_data(n, args.queries, args.dims, args.latent, args.seed)
    print(f"data: {n} x {args.dims} float32, rank {args.latent} + noise, unit length; top-{K} cosine; "
          f"generated in {time.perf_counter() - t:.1f}s")
    truths: dict[tuple[int, int], I64] = {}

    def truth(count: int, nq: int) -> I64:
        if (count, nq) not in truths:
            truths[(count, nq)] = exact_top_k(x[:count], qs_all[:nq], K)
        return truths[(count, nq)]

    wanted = list(dict.fromkeys(args.backends))
    needs_ref = {(n, args.queries)} if any(b not in SUBSET_BACKENDS for b in wanted) else set()
    needs_ref |= {(subset, min(args.slow_queries, args.queries)) for b in wanted if b in SUBSET_BACKENDS}
    rows: list[Row] = []
    refs: dict[int, Row] = {}
    old_cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="aixpy-bench-") as tmpdir:
        tmp = Path(tmpdir)
        os.chdir(tmp)  # nothing a backend writes by default lands in the checkout
        try:
            makers = configs(tmp)
            for count, nq in sorted(needs_ref, reverse=True):  # memory exact at every size used
                ref = _run("memory-exact", makers["memory-exact"], x[:count], qs_all[:nq], truth(count, nq), args)
                ref.note = ref.note or ("reference" if count == n else "reference for the subset rows")
                refs[count] = ref
                rows.append(ref)
            for name in wanted:
                if name == "memory-exact":
                    continue
                count, nq = (subset, min(args.slow_queries, args.queries)) if name in SUBSET_BACKENDS \
                    else (n, args.queries)
                row = _run(name, makers[name], x[:count], qs_all[:nq], truth(count, nq), args,
                           batch=count if name == "pgvector" else args.batch)
                if name == "pgvector" and row.query_s == row.query_s:
                    row.note = "one upsert_batch: COPY, then HNSW build (in insert)"
                if name in SUBSET_BACKENDS and count < n:
                    row.note = (row.note + "; " if row.note else "") + f"{count:,}-doc subset"
                rows.append(row)
                print(f"  done: {name}", flush=True)
        finally:
            os.chdir(old_cwd)
    _print(rows, refs)
    return 0


def _run(name: str, maker: Callable[[contextlib.ExitStack], dict[str, Any]], x: F32, qs: F32, truth: I64,
         args: argparse.Namespace, batch: int | None = None) -> Row:
    print(f"  running {name} on {len(x):,} docs, {len(qs)} queries ...", flush=True)
    with contextlib.ExitStack() as stack:
        try:
            config = maker(stack)
        except CannotStart as e:
            return Row(name, len(x), note=f"server could not start: {e}")
        try:
            reason = _not_what_was_asked(name, config)
            if reason:
                return Row(name, len(x), note=f"n/a: {reason}")
            return measure(name, config, x, qs, truth, batch or args.batch)
        except Exception as e:  # a failing backend must not hide the other rows
            return Row(name, len(x), note=f"failed: {type(e).__name__}: {str(e)[:200]}")


def _fmt(v: float, spec: str) -> str:
    return "-" if v != v else format(v, spec)  # NaN -> "-"


def _print(rows: list[Row], refs: dict[int, Row]) -> None:
    head = ("backend", "n", "queries", "insert docs/s", "build s", "QPS (1 query)", "recall@10",
            "QPS vs memory exact", "note")
    table = []
    for r in rows:
        ref = refs.get(r.n)
        ratio = r.qps / ref.qps if ref is not None and ref.query_s == ref.query_s and r.query_s == r.query_s else \
            float("nan")
        table.append((r.backend, f"{r.n:,}", str(r.queries or "-"), _fmt(r.insert_rate, ",.0f"),
                      _fmt(r.build_s, ".2f"), _fmt(r.qps, ",.1f"), _fmt(r.recall, ".4f"),
                      _fmt(ratio, ".2f" if ratio >= 0.1 else ".4f") + ("x" if ratio == ratio else ""), r.note))
    width = [max(len(str(c[i])) for c in [head, *table]) for i in range(len(head))]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(head, width, strict=True)).rstrip())
    print("-+-".join("-" * w for w in width))
    for c in table:
        print(" | ".join(str(v).ljust(w) for v, w in zip(c, width, strict=True)).rstrip())
    print("\nbuild s = optimize() if the backend has one + the first query; recall@10 vs exact float64 "
          "top-10 of the same documents; QPS ratio vs the memory-exact row of the same n.")


if __name__ == "__main__":
    assert ARGS is not None
    raise SystemExit(main(ARGS))
