"""Random documents and filter trees for checking a backend's filter compiler against the reference
evaluator (``aixpy.vectorstores.filters.matches``). Each backend test supplies its own key and value
pools (hostile SQL keys for pgvector, int64-safe values for Qdrant...)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aixpy.vectorstores import Document, Scope
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.filters import Cond, Filter
from aixpy.vectorstores.types import utcnow

from ._support import doc

__all__ = ["FilterFuzzer"]


@dataclass(frozen=True)
class FilterFuzzer:
    """``keys`` are stored in metadata (each with probability ``meta_probability``); ``extra_keys`` only
    appear in filters. ``value(rng)`` draws a stored metadata value; filters compare with ``scalars``
    and ``ranges`` (numbers for gt/gte/lt/lte)."""

    keys: Sequence[str]
    extra_keys: Sequence[str]
    scalars: Sequence[Any]
    ranges: Sequence[float | int]
    value: Callable[[random.Random], Any]
    meta_probability: float = 0.5

    def dataset(self, rng: random.Random, n: int) -> list[Document]:
        docs = []
        past = utcnow() - timedelta(minutes=5)
        for i in range(n):
            meta = {k: self.value(rng) for k in self.keys if rng.random() < self.meta_probability}
            tags = sorted({rng.choice(["t1", "t2", "t3"]) for _ in range(rng.randint(0, 2))})
            scope = Scope(rng.choice(["acme", "beta", None]), rng.choice(["u1", None]), rng.choice(["s1", None]))
            docs.append(doc(f"d{i:03d}", [rng.random() + 0.1 for _ in range(4)], metadata=meta, tags=tags,
                            scope=scope, expires_at=past if i % 17 == 0 else None))
        return docs

    def leaf(self, rng: random.Random) -> Filter:
        key = rng.choice([*self.keys, *self.keys, *self.extra_keys])
        op = rng.choice(["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "exists", "tags", "scope"])
        if op == "tags":
            pick = rng.sample(["t1", "t2", "t3", "t4"], rng.randint(1, 2))
            return F.tags_any(*pick) if rng.random() < 0.5 else F.tags_all(*pick)
        if op == "scope":
            return F.scope(tenant=rng.choice(["acme", "beta", None]), user=rng.choice(["u1", "u2"]))
        if op == "exists":
            return Cond(key, "exists", True)  # built directly: keys like "x.y" are refused by F.field
        if op in ("gt", "gte", "lt", "lte"):
            return Cond(key, op, rng.choice(self.ranges))  # type: ignore[arg-type]
        if op in ("in", "nin"):
            return Cond(key, op, tuple(rng.choice(self.scalars) for _ in range(rng.randint(1, 3))))  # type: ignore[arg-type]
        return Cond(key, op, rng.choice(self.scalars))  # type: ignore[arg-type]

    def filter(self, rng: random.Random, depth: int = 0) -> Filter:
        r = rng.random()
        if depth >= 3 or r < 0.45:
            return self.leaf(rng)
        if r < 0.65:
            return F.And(tuple(self.filter(rng, depth + 1) for _ in range(rng.randint(2, 3))))
        if r < 0.85:
            return F.Or(tuple(self.filter(rng, depth + 1) for _ in range(rng.randint(2, 3))))
        return ~self.filter(rng, depth + 1)
