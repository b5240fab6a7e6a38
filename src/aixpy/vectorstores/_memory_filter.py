"""Vectorised filter evaluation for the memory backend.

:class:`FilterIndex` turns a filter into a boolean row mask. Per-field columns (a numeric array, a
presence array and an inverted index of scalar values) are built once per field on first use and
stay valid until the collection changes; the owner then drops the whole index. Results are
identical to :func:`aixpy.vectorstores.filters.matches`, which is used as the fallback where a
vectorised answer could differ (integers beyond 2**53, unknown node types).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.vectorstores.filters import And, Cond, Filter, Not, Or, ScopeIs, TagsMatch, matches
from aixpy.vectorstores.types import Document

__all__ = ["FilterIndex", "Mask"]

Mask = npt.NDArray[np.bool_]
_EXACT_INT = 2**53


def _key(v: Any) -> tuple[str, Any] | None:
    """Index key of a scalar under the filter equality rules (``1 == 1.0``, ``True != 1``)."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, int | float):
        return ("n", v)
    if isinstance(v, str):
        return ("s", v)
    return None


@dataclass(slots=True)
class _Column:
    present: Mask
    num: npt.NDArray[np.float64]
    exact: bool = True
    eq: dict[tuple[str, Any], list[int]] = field(default_factory=dict)
    in_list: dict[tuple[str, Any], list[int]] = field(default_factory=dict)
    strings: list[tuple[int, str]] = field(default_factory=list)


class FilterIndex:
    """Boolean masks over ``docs`` (row order) for filter trees. Not thread-safe on its own."""

    def __init__(self, docs: Sequence[Document]) -> None:
        self._docs = docs
        self._n = len(docs)
        self._columns: dict[str, _Column] = {}
        self._tags: dict[str, list[int]] | None = None
        self._scope: dict[str, dict[str, list[int]]] | None = None

    # ------------------------------------------------------------------ public

    def mask(self, f: Filter) -> Mask:
        if isinstance(f, Cond):
            return self._cond(f)
        if isinstance(f, And):
            out = np.ones(self._n, dtype=bool)
            for sub in f.filters:
                out &= self.mask(sub)
            return out
        if isinstance(f, Or):
            out = np.zeros(self._n, dtype=bool)
            for sub in f.filters:
                out |= self.mask(sub)
            return out
        if isinstance(f, Not):
            return ~self.mask(f.filter)
        if isinstance(f, TagsMatch):
            return self._tags_mask(f)
        if isinstance(f, ScopeIs):
            return self._scope_mask(f)
        return self._fallback(f)

    # ------------------------------------------------------------------ helpers

    def _rows(self, rows: list[int] | None) -> Mask:
        out = np.zeros(self._n, dtype=bool)
        if rows:
            out[np.asarray(rows, dtype=np.intp)] = True
        return out

    def _fallback(self, f: Filter) -> Mask:
        return np.fromiter((matches(f, d) for d in self._docs), dtype=bool, count=self._n)

    def _column(self, key: str) -> _Column:
        col = self._columns.get(key)
        if col is not None:
            return col
        col = _Column(present=np.zeros(self._n, dtype=bool), num=np.full(self._n, np.nan))
        for row, doc in enumerate(self._docs):
            v = doc.metadata.get(key)
            if v is None:
                continue
            col.present[row] = True
            if isinstance(v, list):
                for x in v:
                    k = _key(x)
                    if k is not None:
                        col.eq.setdefault(k, []).append(row)
                        col.in_list.setdefault(k, []).append(row)
                continue
            k = _key(v)
            if k is None:
                continue
            col.eq.setdefault(k, []).append(row)
            if k[0] == "n":
                col.num[row] = float(v)
                if isinstance(v, int) and abs(v) > _EXACT_INT:
                    col.exact = False
            elif k[0] == "s":
                col.strings.append((row, v))
        for d in (col.eq, col.in_list):  # a list may repeat a value: one row entry is enough
            for k, rows in d.items():
                d[k] = sorted(set(rows)) if len(rows) > 1 else rows
        self._columns[key] = col
        return col

    def _eq(self, col: _Column, value: Any) -> Mask:
        k = _key(value)
        return self._rows(col.eq.get(k) if k is not None else None)

    def _cond(self, c: Cond) -> Mask:
        col = self._column(c.key)
        op = c.op
        if op == "exists":
            return col.present.copy()
        if op in ("eq", "ne"):
            m = self._eq(col, c.value)
            return m if op == "eq" else ~m
        if op in ("in", "nin"):
            m = np.zeros(self._n, dtype=bool)
            for v in c.value:
                m |= self._eq(col, v)
            return m if op == "in" else ~m
        if op == "contains":
            k = _key(c.value)
            m = self._rows(col.in_list.get(k) if k is not None else None)
            if isinstance(c.value, str):
                sub = c.value
                hits = [row for row, s in col.strings if sub in s]
                if hits:
                    m[np.asarray(hits, dtype=np.intp)] = True
            return m
        v = c.value
        if not col.exact or isinstance(v, bool) or not isinstance(v, int | float) or (
            isinstance(v, int) and abs(v) > _EXACT_INT
        ):
            return self._fallback(c)
        num = col.num
        with np.errstate(invalid="ignore"):
            if op == "gt":
                return num > v
            if op == "gte":
                return num >= v
            if op == "lt":
                return num < v
            if op == "lte":
                return num <= v
        return self._fallback(c)

    def _tags_mask(self, f: TagsMatch) -> Mask:
        if self._tags is None:
            self._tags = {}
            for row, doc in enumerate(self._docs):
                for t in doc.tags:
                    self._tags.setdefault(t, []).append(row)
        if f.mode == "any":
            out = np.zeros(self._n, dtype=bool)
            for t in f.tags:
                out |= self._rows(self._tags.get(t))
            return out
        out = np.ones(self._n, dtype=bool)
        for t in f.tags:
            out &= self._rows(self._tags.get(t))
        return out

    def _scope_mask(self, f: ScopeIs) -> Mask:
        if self._scope is None:
            self._scope = {"tenant": {}, "user": {}, "session": {}}
            for row, doc in enumerate(self._docs):
                for axis, value in (("tenant", doc.scope.tenant), ("user", doc.scope.user),
                                    ("session", doc.scope.session)):
                    if value is not None:
                        self._scope[axis].setdefault(value, []).append(row)
        out = np.ones(self._n, dtype=bool)
        for axis, want in (("tenant", f.tenant), ("user", f.user), ("session", f.session)):
            if want is not None:
                out &= self._rows(self._scope[axis].get(want))
        return out
