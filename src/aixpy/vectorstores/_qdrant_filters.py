"""Qdrant payload field names and the filter compiler, shared by every Qdrant backend.

Nothing here imports a Qdrant package: filters compile to a small engine-neutral tree
(:data:`Node`) that :func:`to_edge` translates to ``qdrant_edge`` classes (embedded engine) and
:func:`to_client` to ``qdrant_client.models`` (server and qdrant-client local mode). The payload
layout itself is documented and encoded in :mod:`aixpy.vectorstores._qdrant_common`.

Filter semantics follow :func:`aixpy.vectorstores.filters.matches` exactly. Where Qdrant cannot
express a condition exactly (a number of magnitude >= 2**53, which Qdrant compares as a float
64, or a key holding ``"`` or ``\\`` that its JSON paths cannot address), the compiler returns a
*superset* filter and ``exact=False``: the caller must re-check candidates with ``matches``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from aixpy.errors import InvalidInputError
from aixpy.vectorstores.filters import And, Cond, Filter, Not, Or, ScopeIs, TagsMatch, matches
from aixpy.vectorstores.types import Document

__all__ = [
    "All",
    "AnyOf",
    "CompiledFilter",
    "Const",
    "HasId",
    "IsEmpty",
    "MatchAny",
    "MatchValue",
    "Negate",
    "Node",
    "Range",
    "Substring",
    "bool_token",
    "compile_filter",
    "from_micros",
    "live_node",
    "to_client",
    "to_edge",
    "to_micros",
]

# ------------------------------------------------------------------ payload fields

F_ID = "id"
F_CONTENT = "content"
F_SHA = "content_sha256"
F_META = "meta"
F_TAGS = "tags"
F_TENANT = "tenant"
F_USER = "user"
F_SESSION = "session"
F_MODEL = "embedding_model"
F_CREATED = "created_at"
F_UPDATED = "updated_at"
F_EXPIRES = "expires_at"
F_NORM = "norm"
F_META_KEYS = "meta_keys"
F_LIST_KEYS = "list_keys"
F_BOOLS = "meta_bools"
_SEP = "\x1f"  # metadata keys cannot hold control characters, so this separator is unambiguous

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXACT_FLOAT_LIMIT = 2**53  # integers beyond this do not survive Qdrant's float comparisons


def to_micros(t: datetime) -> int:
    """Exact integer microseconds since the epoch of an aware datetime."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def bool_token(key: str, v: bool) -> str:
    """The ``meta_bools`` entry of boolean value ``v`` of metadata ``key``."""
    return f"{key}{_SEP}{1 if v else 0}"


# ------------------------------------------------------------------ engine-neutral filter tree


@dataclass(frozen=True, slots=True)
class Const:
    value: bool


@dataclass(frozen=True, slots=True)
class MatchValue:
    """``key`` equals the string ``value`` (for an array: one element does)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class MatchAny:
    """``key`` equals one of the strings (for an array: one element does)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """A number (for an array: one element) within the bounds. Booleans are not numbers."""

    key: str
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@dataclass(frozen=True, slots=True)
class Substring:
    """A string (for an array: one element) containing ``text``, case-sensitively."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class IsEmpty:
    """``key`` is missing, null or an empty array."""

    key: str


@dataclass(frozen=True, slots=True)
class HasId:
    """The point id is one of ``ids`` (point ids, not document ids)."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    item: Node


Node: TypeAlias = Const | MatchValue | MatchAny | Range | Substring | IsEmpty | HasId | All | AnyOf | Negate
TRUE = Const(True)
FALSE = Const(False)


def all_of(items: Iterable[Node]) -> Node:
    out: list[Node] = []
    for n in items:
        if n == FALSE:
            return FALSE
        if n == TRUE:
            continue
        out.extend(n.items if isinstance(n, All) else (n,))
    if not out:
        return TRUE
    return out[0] if len(out) == 1 else All(tuple(out))


def any_of(items: Iterable[Node]) -> Node:
    out: list[Node] = []
    for n in items:
        if n == TRUE:
            return TRUE
        if n == FALSE:
            continue
        out.extend(n.items if isinstance(n, AnyOf) else (n,))
    if not out:
        return FALSE
    return out[0] if len(out) == 1 else AnyOf(tuple(out))


def negate(n: Node) -> Node:
    if isinstance(n, Const):
        return Const(not n.value)
    if isinstance(n, Negate):
        return n.item
    return Negate(n)


def live_node(now: datetime) -> Node:
    """Documents not expired at ``now`` (``expires_at`` absent, or strictly later)."""
    return AnyOf((IsEmpty(F_EXPIRES), Range(F_EXPIRES, gt=float(to_micros(now)))))


# ------------------------------------------------------------------ compiler


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """``node`` selects a superset of the matching documents; exactly them when ``exact``."""

    node: Node
    exact: bool


def compile_filter(f: Filter | None) -> CompiledFilter:
    """Compile an aixpy filter to the engine-neutral tree (see module docstring)."""
    if f is None:
        return CompiledFilter(TRUE, True)
    lower, upper = _bounds(f)
    return CompiledFilter(upper, lower == upper)


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _storable(key: str) -> bool:
    """Could a stored document have this metadata key? (mirrors validation of metadata keys)"""
    return bool(key) and len(key) <= 256 and "." not in key and not key.startswith("$") \
        and not _CONTROL.search(key)


def meta_path(key: str) -> str | None:
    """The Qdrant JSON path of metadata ``key``, or ``None`` if Qdrant cannot address it."""
    if _SIMPLE_KEY.fullmatch(key):
        return f"{F_META}.{key}"
    if '"' in key or "\\" in key:
        return None
    return f'{F_META}."{key}"'


def _bounds(f: Filter) -> tuple[Node, Node]:
    """(lower, upper): lower selects a subset, upper a superset of the matching documents."""
    if isinstance(f, Cond):
        node = _cond(f)
        return (FALSE, TRUE) if node is None else (node, node)
    if isinstance(f, And):
        parts = [_bounds(x) for x in f.filters]
        return all_of(p[0] for p in parts), all_of(p[1] for p in parts)
    if isinstance(f, Or):
        parts = [_bounds(x) for x in f.filters]
        return any_of(p[0] for p in parts), any_of(p[1] for p in parts)
    if isinstance(f, Not):
        lower, upper = _bounds(f.filter)
        return negate(upper), negate(lower)
    if isinstance(f, TagsMatch):
        if f.mode == "any":
            one = (MatchValue(F_TAGS, t) for t in f.tags)
            n: Node = MatchAny(F_TAGS, tuple(f.tags)) if len(f.tags) > 1 else any_of(one)
        else:
            n = all_of(MatchValue(F_TAGS, t) for t in f.tags)
        return n, n
    if isinstance(f, ScopeIs):
        n = all_of(MatchValue(name, v) for name, v in ((F_TENANT, f.tenant), (F_USER, f.user),
                                                         (F_SESSION, f.session)) if v is not None)
        return n, n
    raise InvalidInputError(f"unknown filter node {type(f).__name__}")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _exact_number(v: Any) -> bool:
    return _is_number(v) and math.isfinite(v) and abs(v) < EXACT_FLOAT_LIMIT


def _eq(key: str, path: str, v: Any) -> Node | None:
    """Field equals scalar ``v`` (any element for an array); ``None`` if not expressible."""
    if isinstance(v, bool):
        return MatchValue(F_BOOLS, bool_token(key, v))
    if isinstance(v, str):
        return MatchValue(path, v)
    if _exact_number(v):
        return Range(path, gte=float(v), lte=float(v))
    return None


def _in(key: str, path: str, values: Iterable[Any]) -> Node | None:
    strings = tuple(dict.fromkeys(v for v in values if isinstance(v, str)))
    parts: list[Node] = []
    if strings:
        parts.append(MatchAny(path, strings) if len(strings) > 1 else MatchValue(path, strings[0]))
    for v in values:
        if isinstance(v, str):
            continue
        n = _eq(key, path, v)
        if n is None:
            return None
        parts.append(n)
    return any_of(parts)


def _cond(c: Cond) -> Node | None:
    """The exact node for ``c``, or ``None`` when Qdrant cannot express it exactly."""
    if not _storable(c.key):  # no stored document can have this key: same answer for all
        return Const(matches(c, Document(id="-")))
    key, op, v = c.key, c.op, c.value
    if op == "exists":
        return MatchValue(F_META_KEYS, key)
    path = meta_path(key)
    if path is None:
        return None
    is_list = MatchValue(F_LIST_KEYS, key)
    if op in ("eq", "ne"):
        n = _eq(key, path, v)
        return n if n is None or op == "eq" else negate(n)
    if op in ("in", "nin"):
        n = _in(key, path, v)
        return n if n is None or op == "in" else negate(n)
    if op == "contains":
        if isinstance(v, str):
            return any_of((all_of((is_list, MatchValue(path, v))),
                           all_of((negate(is_list), Substring(path, v)))))
        n = _eq(key, path, v)
        return None if n is None else all_of((is_list, n))
    if op in ("gt", "gte", "lt", "lte"):
        if not _exact_number(v):
            return None
        x = float(v)
        bound = Range(path, gt=x if op == "gt" else None, gte=x if op == "gte" else None,
                      lt=x if op == "lt" else None, lte=x if op == "lte" else None)
        return all_of((negate(is_list), bound))
    raise InvalidInputError(f"unknown filter operator {op!r}")


# ------------------------------------------------------------------ translation to qdrant_edge


def to_edge(qe: Any, n: Node) -> Any:
    """Translate a tree to ``qdrant_edge`` classes (``qe`` is the imported module); returns a ``qe.Filter``."""
    c = _edge_condition(qe, n)
    return c if isinstance(c, qe.Filter) else qe.Filter(must=[c])


def _edge_condition(qe: Any, n: Node) -> Any:
    if isinstance(n, MatchValue):
        return qe.FieldCondition(key=n.key, match=qe.MatchValue(n.value))
    if isinstance(n, MatchAny):
        return qe.FieldCondition(key=n.key, match=qe.MatchAny(list(n.values)))
    if isinstance(n, Range):
        return qe.FieldCondition(key=n.key, range=qe.RangeFloat(gt=n.gt, gte=n.gte, lt=n.lt, lte=n.lte))
    if isinstance(n, Substring):
        return qe.FieldCondition(key=n.key, match=qe.MatchSubstring(n.text))
    if isinstance(n, IsEmpty):
        return qe.IsEmptyCondition(n.key)
    if isinstance(n, HasId):
        return qe.HasIdCondition(set(n.ids))
    if isinstance(n, All):
        return qe.Filter(must=[_edge_condition(qe, x) for x in n.items])
    if isinstance(n, AnyOf):
        return qe.Filter(should=[_edge_condition(qe, x) for x in n.items])
    if isinstance(n, Negate):
        return qe.Filter(must_not=[_edge_condition(qe, n.item)])
    return qe.Filter() if n.value else qe.Filter(must_not=[qe.Filter()])


# ------------------------------------------------------------------ translation to qdrant_client


def to_client(m: Any, n: Node) -> Any:
    """Translate a tree to ``qdrant_client.models`` classes (``m`` is that module); returns an
    ``m.Filter``. On the wire (REST) this is Qdrant's filter JSON: ``{"must": [{"key": ...,
    "match": {"value": ...}}]}``, ``{"key": ..., "range": {"gt": ...}}``, ``{"is_empty": {"key": ...}}``,
    ``{"has_id": [...]}`` and ``{"key": ..., "match": {"substring": ...}}`` (used by ``contains`` on
    strings; the server must know this condition: the Qdrant release that goes with qdrant-client 1.20)."""
    c = _client_condition(m, n)
    return c if isinstance(c, m.Filter) else m.Filter(must=[c])


def _client_condition(m: Any, n: Node) -> Any:
    if isinstance(n, MatchValue):
        return m.FieldCondition(key=n.key, match=m.MatchValue(value=n.value))
    if isinstance(n, MatchAny):
        return m.FieldCondition(key=n.key, match=m.MatchAny(any=list(n.values)))
    if isinstance(n, Range):
        return m.FieldCondition(key=n.key, range=m.Range(gt=n.gt, gte=n.gte, lt=n.lt, lte=n.lte))
    if isinstance(n, Substring):
        return m.FieldCondition(key=n.key, match=m.MatchSubstring(substring=n.text))
    if isinstance(n, IsEmpty):
        return m.IsEmptyCondition(is_empty=m.PayloadField(key=n.key))
    if isinstance(n, HasId):
        return m.HasIdCondition(has_id=list(n.ids))
    if isinstance(n, All):
        return m.Filter(must=[_client_condition(m, x) for x in n.items])
    if isinstance(n, AnyOf):
        return m.Filter(should=[_client_condition(m, x) for x in n.items])
    if isinstance(n, Negate):
        return m.Filter(must_not=[_client_condition(m, n.item)])
    return m.Filter() if n.value else m.Filter(must_not=[m.Filter()])
