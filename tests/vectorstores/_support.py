"""Helpers shared by the vector-store tests (data sets, brute-force reference, comparisons)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.vectorstores import Document, QueryResult

MIN_RECALL_AT_10 = 0.95


def is_exact(backend: str) -> bool:
    """Whether the backend's search is exact (brute force); others are approximate and only need recall."""
    import importlib

    return bool(importlib.import_module(f"tests.vectorstores.backends.{backend}").EXACT)


def doc(doc_id: str, vec: Sequence[float], content: str = "", **kw: Any) -> Document:
    return Document(id=doc_id, content=content, embedding=list(vec), **kw)


def ids(result: QueryResult | Sequence[Document]) -> list[str]:
    if isinstance(result, QueryResult):
        return [m.document.id for m in result.matches]
    return [d.id for d in result]


def low_rank(n: int, dims: int, rank: int, seed: int, noise: float = 0.05) -> npt.NDArray[np.float32]:
    """``n`` realistic vectors: ``rank`` latent factors projected to ``dims`` plus small noise."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, rank))
    proj = rng.standard_normal((rank, dims)) / np.sqrt(rank)
    x = latent @ proj + noise * rng.standard_normal((n, dims))
    out: npt.NDArray[np.float32] = x.astype(np.float32)
    return out


def brute_force(data: npt.NDArray[np.float32], q: npt.NDArray[np.float32], k: int,
                metric: str) -> tuple[list[int], list[float]]:
    """Exact top-``k`` rows (score desc, row asc on ties) and their scores, in float64."""
    x = data.astype(np.float64)
    qq = q.astype(np.float64)
    dots = np.einsum("ij,j->i", x, qq)  # not BLAS: identical rows give identical (tied) scores
    if metric == "cosine":
        s = dots / (np.linalg.norm(x, axis=1) * np.linalg.norm(qq))
    elif metric == "dot":
        s = dots
    else:
        s = 1.0 / (1.0 + np.linalg.norm(x - qq, axis=1))
    order = np.lexsort((np.arange(len(s)), -s))[:k]
    return order.tolist(), s[order].tolist()


def summary(result: QueryResult) -> list[tuple[str, float, float, int]]:
    """Comparable content of a query result (no timings)."""
    return [(m.document.id, round(m.score, 6), round(m.distance, 6), m.rank) for m in result.matches]


def doc_fields(d: Document) -> tuple[Any, ...]:
    """Comparable content of a document (no store-set times)."""
    emb = None if d.embedding is None else [round(float(v), 5) for v in d.embedding]
    return (d.id, d.content, emb, d.embedding_model, d.metadata, list(d.tags), d.scope.as_dict(), d.expires_at)
