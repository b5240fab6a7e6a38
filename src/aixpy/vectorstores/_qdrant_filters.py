"""Qdrant payload layout, point ids and the filter compiler, shared by every Qdrant backend.

Nothing here imports a Qdrant package: documents become plain JSON payloads, and filters compile
to a small engine-neutral tree (:data:`Node`) that a backend translates to its own classes
(``qdrant_edge`` for the embedded engine, ``qdrant_client.models`` for a server later).

Payload of one point (top level; user metadata lives under ``meta`` so it can never collide)::

    id, content, content_sha256, meta, tags, tenant, user, session, embedding_model,
    created_at, updated_at, expires_at   (times: integer microseconds since the Unix epoch, UTC)
    norm                                 (L2 norm of the original vector; cosine stores unit vectors)
    meta_keys                            (metadata keys whose value is not None: ``exists``)
    list_keys                            (metadata keys whose value is a list: ``contains``/ranges)
    meta_bools                           ("<key>\\x1f1" / "<key>\\x1f0" for boolean values: the engine's
                                          match on a Python bool is a match on the integer 1/0)

Filter semantics follow :func:`aixpy.vectorstores.filters.matches` exactly. Where Qdrant cannot
express a condition exactly (a number of magnitude >= 2**53, which Qdrant compares as a float
64, or a key holding ``"`` or ``\\`` that its JSON paths cannot address), the compiler returns a
*superset* filter and ``exact=False``: the caller must re-check candidates with ``matches``.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from aixpy.errors import InvalidInputError
from aixpy.vectorstores.base import CollectionOptions
from aixpy.vectorstores.filters import And, Cond, Filter, Not, Or, ScopeIs, TagsMatch, matches
from aixpy.vectorstores.types import Document, Metric, Scope

__all__ = [
    "POINT_ID_NAMESPACE",
    "All",
    "AnyOf",
    "BatchDedup",
    "CompiledFilter",
    "Const",
    "IsEmpty",
    "MatchAny",
    "MatchValue",
    "Negate",
    "Node",
    "Range",
    "Substring",
    "compile_filter",
    "doc_from_payload",
    "exact_scores",
    "from_micros",
    "live_node",
    "options_from_json",
    "options_to_json",
    "payload_from_doc",
    "point_id",
    "to_edge",
    "to_micros",
]

# ------------------------------------------------------------------ point ids

#: Fixed namespace of the uuid5 point ids. Never change it: stored collections depend on it.
POINT_ID_NAMESPACE = uuid.UUID("6b1c3e0a-8f0d-5c57-9a3e-2f1d7c4b9e21")


def point_id(doc_id: str) -> str:
    """The Qdrant point id (a UUID string) of document ``doc_id``; deterministic across runs."""
    return str(uuid.uuid5(POINT_ID_NAMESPACE, doc_id))


# ------------------------------------------------------------------ payload

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
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1
EXACT_FLOAT_LIMIT = 2**53  # integers beyond this do not survive Qdrant's float comparisons


def to_micros(t: datetime) -> int:
    """Exact integer microseconds since the epoch of an aware datetime."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _bool_token(key: str, v: bool) -> str:
    return f"{key}{_SEP}{1 if v else 0}"


def check_payload_ints(value: Any, key: str = "") -> None:
    """Qdrant stores integers as int64/uint64; larger ones would silently turn into floats."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not _I64_MIN <= value <= _U64_MAX:
            raise InvalidInputError(
                f"metadata {key!r}: integer {value} is outside the 64-bit range the Qdrant backend can store"
            )
    elif isinstance(value, list | tuple):
        for x in value:
            check_payload_ints(x, key)
    elif isinstance(value, Mapping):
        for k, x in value.items():
            check_payload_ints(x, key or str(k))


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def payload_from_doc(doc: Document, norm: float) -> dict[str, Any]:
    """The payload storing ``doc`` (everything except the vector) and its filter helpers."""
    meta = {k: _jsonable(v) for k, v in doc.metadata.items()}
    for k, v in meta.items():
        check_payload_ints(v, k)
    bools: list[str] = []
    for k, v in meta.items():
        items = v if isinstance(v, list) else [v]
        bools.extend(dict.fromkeys(_bool_token(k, x) for x in items if isinstance(x, bool)))
    p: dict[str, Any] = {
        F_ID: doc.id,
        F_CONTENT: doc.content,
        F_SHA: content_sha256(doc.content),
        F_META: meta,
        F_TAGS: list(doc.tags),
        F_NORM: norm,
    }
    helpers = ((F_META_KEYS, [k for k, v in meta.items() if v is not None]),
               (F_LIST_KEYS, [k for k, v in meta.items() if isinstance(v, list)]), (F_BOOLS, bools))
    p.update((name, keys) for name, keys in helpers if keys)  # absent = empty: each key costs ~20 us to send
    for name, val in ((F_TENANT, doc.scope.tenant), (F_USER, doc.scope.user), (F_SESSION, doc.scope.session),
                      (F_MODEL, doc.embedding_model)):
        if val is not None:
            p[name] = val
    for name, t in ((F_CREATED, doc.created_at), (F_UPDATED, doc.updated_at), (F_EXPIRES, doc.expires_at)):
        if t is not None:
            p[name] = to_micros(t)
    return p


def doc_from_payload(payload: Mapping[str, Any], embedding: list[float] | None = None) -> Document:
    def when(name: str) -> datetime | None:
        v = payload.get(name)
        return None if v is None else from_micros(v)

    return Document(
        id=str(payload[F_ID]),
        content=str(payload.get(F_CONTENT, "")),
        embedding=embedding,
        embedding_model=payload.get(F_MODEL),
        metadata=dict(payload.get(F_META) or {}),
        tags=list(payload.get(F_TAGS) or []),
        scope=Scope(payload.get(F_TENANT), payload.get(F_USER), payload.get(F_SESSION)),
        created_at=when(F_CREATED),
        updated_at=when(F_UPDATED),
        expires_at=when(F_EXPIRES),
    )


# ------------------------------------------------------------------ scores and stored options

F64 = npt.NDArray[np.float64]


def exact_scores(metric: Metric, x: F64, q64: F64, qn: float) -> tuple[F64, F64]:
    """Float64 (score, distance) of the rows ``x`` for query ``q64`` (norm ``qn``), in the score
    conventions of :mod:`aixpy.vectorstores.types`. The engine ranks in float32; callers re-score."""
    if metric == "euclidean":
        diff = x - q64
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return 1.0 / (1.0 + d), d
    dots = np.einsum("ij,j->i", x, q64)
    if metric == "dot":
        return dots, -dots
    xn = np.sqrt(np.einsum("ij,ij->i", x, x))
    s = np.divide(dots, xn * qn, out=np.zeros_like(dots), where=xn > 0)
    return s, 1.0 - s


def options_to_json(o: CollectionOptions) -> dict[str, Any]:
    return {"dedup": o.dedup, "dedup_threshold": o.dedup_threshold, "max_documents": o.max_documents,
            "ttl_seconds": None if o.ttl is None else o.ttl.total_seconds()}


def options_from_json(dimensions: int | None, metric: Metric, o: Mapping[str, Any]) -> CollectionOptions:
    ttl = o["ttl_seconds"]
    return CollectionOptions(dimensions=dimensions, metric=metric, dedup=o["dedup"],
                             dedup_threshold=o["dedup_threshold"], max_documents=o["max_documents"],
                             ttl=None if ttl is None else timedelta(seconds=ttl))


class BatchDedup:
    """Engine-neutral bookkeeping of duplicate detection within one upsert call (same rules as the
    memory backend): what this call wrote so far, and which stored points it replaced (their stored
    version is stale). ``unit`` holds the unit vectors of the whole batch, ``new`` the batch indices
    of documents that are not updates. A backend adds the lookups of stored duplicates."""

    CHUNK = 64  # new documents compared per matrix product (one BLAS call instead of 64)

    def __init__(self, threshold: float, unit: npt.NDArray[np.float32], new: list[int]) -> None:
        self.threshold = threshold - 1e-6
        self.unit, self.new = unit, new
        self.pos = {i: k for k, i in enumerate(new)}  # batch index -> rank among the new documents
        self.hashes: set[str] = set()
        self.rows: list[int] = []  # batch indices written by this call (non-zero vectors)
        self.replaced: set[str] = set()
        self._block: tuple[int, int, npt.NDArray[np.float32]] | None = None

    def near_written(self, i: int, content: str) -> bool:
        """Same content (non-empty) as, or cosine >= threshold with, a document this call wrote."""
        if content and content_sha256(content) in self.hashes:
            return True
        if not self.rows or not np.any(self.unit[i]):
            return False
        start = self.pos[i] - self.pos[i] % self.CHUNK
        if self._block is None or self._block[0] != start:
            chunk = self.new[start:start + self.CHUNK]
            self._block = (start, len(self.rows), self.unit[self.rows] @ self.unit[chunk].T)
        _, n0, sims = self._block
        if n0 and float(sims[:, self.pos[i] - start].max()) >= self.threshold:
            return True
        later = self.rows[n0:]
        return bool(later) and float(np.max(self.unit[later] @ self.unit[i])) >= self.threshold

    def written(self, i: int, pid: str, content: str, *, updated: bool) -> None:
        if content:
            self.hashes.add(content_sha256(content))
        if np.any(self.unit[i]):
            self.rows.append(i)
        if updated:
            self.replaced.add(pid)


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
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    item: Node


Node: TypeAlias = Const | MatchValue | MatchAny | Range | Substring | IsEmpty | All | AnyOf | Negate
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
        return MatchValue(F_BOOLS, _bool_token(key, v))
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
    """Translate a tree to ``qdrant_edge`` classes (``qe`` is the imported module); returns a
    ``qe.Filter``. A server backend adds the same few lines for ``qdrant_client.models``, mapping
    :class:`Substring` to ``MatchText`` on a field without a full-text index."""
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
    if isinstance(n, All):
        return qe.Filter(must=[_edge_condition(qe, x) for x in n.items])
    if isinstance(n, AnyOf):
        return qe.Filter(should=[_edge_condition(qe, x) for x in n.items])
    if isinstance(n, Negate):
        return qe.Filter(must_not=[_edge_condition(qe, n.item)])
    return qe.Filter() if n.value else qe.Filter(must_not=[qe.Filter()])
