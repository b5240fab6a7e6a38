"""Exact-search benchmark: plain numpy vs aixpy's memory backend (and embedded Qdrant if present).

Data: ``--n`` x 384 float32 *low-rank* vectors (64 latent factors, a fixed random projection to
384 dims, small noise, L2-normalised); ``--queries`` queries drawn the same way; top-10, cosine.

Rows, all measured in the same process with the same BLAS thread count:

- numpy baseline: ``Q @ X.T`` + ``np.argpartition`` + sort of the k best, batched (in chunks of
  ``--chunk`` queries) and one query at a time;
- memory backend through its public API: ``query_batch`` (batched) and ``query`` (one at a time);
- embedded Qdrant (HNSW) through ``aixpy.vectorstores.new``: upsert time, QPS and recall@10.

Timed runs of a row and its baseline are interleaved, so background load hits both alike.

    python bench/search.py                          # 100k x 384, 1000 queries
    python bench/search.py --n 5000 --queries 100   # smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="documents (default 100000)")
    p.add_argument("--queries", type=int, default=1000, help="queries (default 1000)")
    p.add_argument("--dims", type=int, default=384)
    p.add_argument("--latent", type=int, default=64, help="rank of the data before noise")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP threads for every row")
    p.add_argument("--repeat", type=int, default=3, help="timed passes of each batched row (median)")
    p.add_argument("--chunk", type=int, default=0, help="baseline batch chunk; 0 = same as the backend")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-qdrant", action="store_true", help="skip the Qdrant row")
    return p.parse_args()


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:  # thread pinning must happen before numpy is imported
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def make_data(n: int, q: int, dims: int, latent: int, seed: int) -> tuple[F32, F32]:
    """Low-rank realistic vectors: latent factors -> fixed projection -> + noise -> unit length."""
    rng = np.random.default_rng(seed)
    proj = (rng.standard_normal((latent, dims)) / np.sqrt(latent)).astype(np.float32)
    scales = np.linspace(1.0, 0.2, latent, dtype=np.float32)  # decaying spectrum, like text embeddings

    def draw(count: int) -> F32:
        out = np.empty((count, dims), dtype=np.float32)
        for a in range(0, count, 20_000):
            m = min(20_000, count - a)
            z = rng.standard_normal((m, latent)).astype(np.float32) * scales
            x = z @ proj + 0.05 * rng.standard_normal((m, dims)).astype(np.float32)
            out[a : a + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    return draw(n), draw(q)


def exact_top_k(x: F32, qs: F32, k: int) -> I64:
    """Ground truth in float64 (score desc, row asc)."""
    x64 = x.astype(np.float64)
    out = np.empty((len(qs), k), dtype=np.int64)
    for a in range(0, len(qs), 64):
        s = qs[a : a + 64].astype(np.float64) @ x64.T
        for j, row in enumerate(s):
            part = np.argpartition(row, -k - 5)[-k - 5 :]
            order = np.lexsort((part, -row[part]))[:k]
            out[a + j] = part[order]
    return out


def numpy_batched(x: F32, qs: F32, k: int, chunk: int) -> I64:
    out = np.empty((len(qs), k), dtype=np.int64)
    for a in range(0, len(qs), chunk):
        s = qs[a : a + chunk] @ x.T
        part = np.argpartition(s, -k, axis=1)[:, -k:]
        vals = np.take_along_axis(s, part, axis=1)
        out[a : a + chunk] = np.take_along_axis(part, np.argsort(-vals, axis=1), axis=1)
    return out


def numpy_single(x: F32, q: F32, k: int) -> I64:
    s = x @ q
    part = np.argpartition(s, -k)[-k:]
    return part[np.argsort(-s[part])].astype(np.int64)


def recall(got: Sequence[Sequence[int]] | Sequence[I64] | I64, truth: I64) -> float:
    k = int(truth.shape[1])
    hits = sum(len({int(v) for v in g} & set(truth[i].tolist())) for i, g in enumerate(got))
    return hits / (k * len(truth))


def interleaved(fns: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Median wall time of each function over ``repeat`` rounds, alternating between them."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [float(np.median(np.asarray(t))) for t in times]


def main(args: argparse.Namespace) -> int:
    from aixpy import vectorstores
    from aixpy.vectorstores import CollectionOptions, Document, Query
    from aixpy.vectorstores.memory import _BATCH_BYTES, MemoryCollection

    k, n = args.k, args.n
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}, "
          f"threads pinned to {args.threads} (OMP/OPENBLAS/MKL/RAYON_NUM_THREADS)")
    t = time.perf_counter()
    x, qs = make_data(n, args.queries, args.dims, args.latent, args.seed)
    print(f"data: {n} x {args.dims} float32, rank {args.latent} + noise, unit length; "
          f"{len(qs)} queries; top-{k}; generated in {time.perf_counter() - t:.1f}s")
    truth = exact_top_k(x, qs, k)
    queries = [Query(q, limit=k) for q in qs]
    chunk = args.chunk or max(1, min(len(qs), _BATCH_BYTES // (4 * n)))

    store = vectorstores.new({"provider": "memory"})
    coll = store.collection("bench", CollectionOptions(dimensions=args.dims, metric="cosine"))
    assert isinstance(coll, MemoryCollection)
    docs = [Document(id=f"d{i}", embedding=x[i]) for i in range(n)]
    t = time.perf_counter()
    for a in range(0, n, 10_000):
        coll.upsert_batch(docs[a : a + 10_000])
    mem_upsert = time.perf_counter() - t

    def rows_of(results: list[Any]) -> list[list[int]]:
        return [[int(m.document.id[1:]) for m in r.matches] for r in results]

    rows: list[tuple[str, str, float, float, str, str]] = []
    q_total = len(qs)

    # ---- batched, like with like
    coll.query_batch(queries[:chunk])  # warm-up
    numpy_batched(x, qs[:chunk], k, chunk)
    got_np: list[I64] = []
    got_mem: list[list[Any]] = []
    fns: list[Callable[[], Any]] = [lambda: got_np.append(numpy_batched(x, qs, k, chunk)),
                                    lambda: got_mem.append(coll.query_batch(queries))]
    if chunk < q_total:
        fns.append(lambda: numpy_batched(x, qs, k, q_total))
    t_np, t_mem, *t_all = interleaved(fns, args.repeat)
    rows.append(("numpy matmul+argpartition", f"batched ({chunk}/chunk)", t_np, q_total / t_np, "1.00x",
                 f"{recall(got_np[-1], truth):.4f}"))
    rows.append(("aixpy memory query_batch()", f"batched ({chunk}/chunk)", t_mem, q_total / t_mem,
                 f"{t_np / t_mem:.2f}x", f"{recall(rows_of(got_mem[-1]), truth):.4f}"))
    if t_all:
        rows.append(("numpy matmul+argpartition", f"batched (all {q_total} at once)", t_all[0],
                     q_total / t_all[0], f"{t_np / t_all[0]:.2f}x", "-"))
        rows.append(("aixpy memory query_batch()", "vs numpy all-at-once", t_mem, q_total / t_mem,
                     f"{t_all[0] / t_mem:.2f}x", "-"))

    # ---- one query at a time, interleaved in blocks
    t_ns = t_ms = 0.0
    single_np: list[I64] = []
    single_mem: list[Any] = []
    for a in range(0, q_total, 50):
        t = time.perf_counter()
        single_np += [numpy_single(x, q, k) for q in qs[a : a + 50]]
        t_ns += time.perf_counter() - t
        t = time.perf_counter()
        single_mem += [coll.query(q) for q in queries[a : a + 50]]
        t_ms += time.perf_counter() - t
    rows.append(("numpy matmul+argpartition", "1 query/call", t_ns, q_total / t_ns, "1.00x",
                 f"{recall(single_np, truth):.4f}"))
    rows.append(("aixpy memory query()", "1 query/call", t_ms, q_total / t_ms, f"{t_ns / t_ms:.2f}x",
                 f"{recall(rows_of(single_mem), truth):.4f}"))

    # ---- embedded Qdrant
    qdrant_note = run_qdrant(args, x, queries, truth, rows, t_ns, rows_of) if not args.no_qdrant else "skipped"

    print(f"memory backend upsert: {n} docs in {mem_upsert:.2f}s ({n / mem_upsert:,.0f} docs/s)")
    if qdrant_note:
        print(f"qdrant: {qdrant_note}")
    print()
    head = ("engine", "mode", "seconds", "QPS", "vs numpy", "recall@10")
    width = [max(len(str(r[i])) if i not in (2, 3) else 10 for r in [*rows, head]) for i in range(6)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, width, strict=True)))
    print("-+-".join("-" * w for w in width))
    for r in rows:
        cells = [r[0], r[1], f"{r[2]:.3f}", f"{r[3]:,.1f}", r[4], r[5]]
        print(" | ".join(str(c).ljust(w) for c, w in zip(cells, width, strict=True)))
    print("\n'vs numpy' = baseline time / row time for the same mode (>1 is faster than numpy).")
    return 0


def run_qdrant(args: argparse.Namespace, x: F32, queries: list[Any], truth: I64,
               rows: list[tuple[str, str, float, float, str, str]], t_single_np: float,
               rows_of: Callable[[list[Any]], list[list[int]]]) -> str:
    """Add the embedded-Qdrant row; return a note (or the reason it is n/a)."""
    import importlib.util

    from aixpy import vectorstores
    from aixpy.errors import AixpyError
    from aixpy.vectorstores import CollectionOptions, Document

    if importlib.util.find_spec("aixpy.vectorstores.qdrant") is None:
        rows.append(("embedded qdrant (HNSW)", "1 query/call", float("nan"), float("nan"),
                     "n/a (backend missing)", "n/a"))
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            store = vectorstores.new({"provider": "qdrant", "qdrant": {"path": tmp}})
        except (ImportError, AixpyError) as e:
            rows.append(("embedded qdrant (HNSW)", "1 query/call", float("nan"), float("nan"),
                         f"n/a ({type(e).__name__})", "n/a"))
            return str(e)
        try:
            coll = store.collection("bench", CollectionOptions(dimensions=args.dims, metric="cosine"))
            t = time.perf_counter()
            for a in range(0, len(x), 1000):
                coll.upsert_batch([Document(id=f"d{i}", embedding=x[i]) for i in range(a, min(a + 1000, len(x)))])
            upsert = time.perf_counter() - t
            coll.query(queries[0])
            t = time.perf_counter()
            got = [coll.query(q) for q in queries]
            took_exact = time.perf_counter() - t
            t = time.perf_counter()
            coll.optimize()  # type: ignore[attr-defined]  # builds the HNSW graph
            build = time.perf_counter() - t
            coll.query(queries[0])
            t = time.perf_counter()
            got_hnsw = [coll.query(q) for q in queries]
            took = time.perf_counter() - t
        finally:
            store.close()
    rows.append(("embedded qdrant (exact)", "1 query/call", took_exact, len(queries) / took_exact,
                 f"{t_single_np / took_exact:.2f}x", f"{recall(rows_of(got), truth):.4f}"))
    rows.append(("embedded qdrant (HNSW)", "1 query/call", took, len(queries) / took,
                 f"{t_single_np / took:.2f}x", f"{recall(rows_of(got_hnsw), truth):.4f}"))
    return (f"upsert {len(x)} docs in {upsert:.2f}s ({len(x) / upsert:,.0f} docs/s); "
            f"HNSW build (optimize) {build:.1f}s")


if __name__ == "__main__":
    assert ARGS is not None
    raise SystemExit(main(ARGS))
