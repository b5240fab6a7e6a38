"""The filter language shared by every vector-store backend.

Build filters with the helpers and combine them with ``&``, ``|`` and ``~``::

    from aixpy.vectorstores import filters as F
    f = (F.field("year").gte(2020) & F.field("lang").in_(["en", "fr"])) | F.tags_any("featured")
    f = f & F.scope(tenant="acme")

or parse the JSON/YAML form (``parse``)::

    {"year": {"$gte": 2020}, "lang": {"$in": ["en", "fr"]}, "$tags_any": ["featured"],
     "$scope": {"tenant": "acme"}}

Semantics (every backend must give the same answer; :func:`matches` is the reference):

- ``eq``/``in``: strings match strings, booleans match booleans, numbers match numbers
  numerically (``1 == 1.0``; ``True`` is never a number). A list-valued field matches if any
  element matches.
- ``ne``/``nin`` are exactly ``not eq``/``not in``: documents without the field match them.
- ``gt``/``gte``/``lt``/``lte``: numbers only; a missing or non-numeric field never matches.
- ``contains``: substring of a string field, or element of a list field.
- ``exists``: the field is present (its value may be anything but ``None``).
- ``tags_any``/``tags_all``: the document's tags.
- ``scope``: strict. ``scope(tenant="acme")`` never matches a document with no tenant.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aixpy.errors import InvalidInputError

if TYPE_CHECKING:
    from aixpy.vectorstores.types import Document

__all__ = [
    "And",
    "Cond",
    "Filter",
    "Not",
    "Op",
    "Or",
    "ScopeIs",
    "TagsMatch",
    "field",
    "matches",
    "parse",
    "scope",
    "tags_all",
    "tags_any",
    "tenant",
]

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "exists"]
_OPS: frozenset[str] = frozenset(("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "exists"))
Scalar = str | int | float | bool


class Filter:
    """Base of every filter node. Combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: Filter) -> Filter:
        return And((self, other))

    def __or__(self, other: Filter) -> Filter:
        return Or((self, other))

    def __invert__(self) -> Filter:
        return Not(self)


@dataclass(frozen=True, slots=True)
class Cond(Filter):
    key: str
    op: Op
    value: Any = None


@dataclass(frozen=True, slots=True)
class And(Filter):
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or(Filter):
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not(Filter):
    filter: Filter


@dataclass(frozen=True, slots=True)
class TagsMatch(Filter):
    tags: tuple[str, ...]
    mode: Literal["any", "all"]


@dataclass(frozen=True, slots=True)
class ScopeIs(Filter):
    tenant: str | None = None
    user: str | None = None
    session: str | None = None


# ------------------------------------------------------------------ builders


def _check_scalar(key: str, v: Any) -> Scalar:
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidInputError(f"filter on {key!r}: value must be finite, got {v!r}")
        return v
    raise InvalidInputError(f"filter on {key!r}: value must be a string, number or boolean, got {type(v).__name__}")


def _check_number(key: str, v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidInputError(f"filter on {key!r}: range comparisons need a finite number, got {v!r}")
    return v


class FieldRef:
    """A metadata field to compare; made by :func:`field`."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        if (not isinstance(key, str) or not key or key.startswith("$") or "." in key or len(key) > 256
                or any(ord(ch) < 32 or ord(ch) == 127 for ch in key)):
            raise InvalidInputError(
                f"invalid metadata key in filter: {key!r} "
                "(keys never start with '$' or contain '.' or control characters)"
            )
        self.key = key

    def eq(self, v: Scalar) -> Cond:
        return Cond(self.key, "eq", _check_scalar(self.key, v))

    def ne(self, v: Scalar) -> Cond:
        return Cond(self.key, "ne", _check_scalar(self.key, v))

    def gt(self, v: float) -> Cond:
        return Cond(self.key, "gt", _check_number(self.key, v))

    def gte(self, v: float) -> Cond:
        return Cond(self.key, "gte", _check_number(self.key, v))

    def lt(self, v: float) -> Cond:
        return Cond(self.key, "lt", _check_number(self.key, v))

    def lte(self, v: float) -> Cond:
        return Cond(self.key, "lte", _check_number(self.key, v))

    def in_(self, values: Iterable[Scalar]) -> Cond:
        vals = tuple(_check_scalar(self.key, v) for v in _as_list(self.key, values))
        return Cond(self.key, "in", vals)

    def nin(self, values: Iterable[Scalar]) -> Cond:
        vals = tuple(_check_scalar(self.key, v) for v in _as_list(self.key, values))
        return Cond(self.key, "nin", vals)

    def contains(self, v: Scalar) -> Cond:
        return Cond(self.key, "contains", _check_scalar(self.key, v))

    def exists(self) -> Cond:
        return Cond(self.key, "exists", True)


def _as_list(key: str, values: Any) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidInputError(f"filter on {key!r}: $in/$nin need a list of values")
    out = list(values)
    if not out:
        raise InvalidInputError(f"filter on {key!r}: $in/$nin need at least one value")
    return out


def field(key: str) -> FieldRef:
    """Start a metadata condition: ``field("year").gte(2020)``."""
    return FieldRef(key)


def _tags(tags: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = [tags]
    out = tuple(tags)
    if not out or not all(isinstance(t, str) and t for t in out):
        raise InvalidInputError("tag filters need one or more non-empty strings")
    return out


def tags_any(*tags: str) -> TagsMatch:
    """Documents having at least one of ``tags``."""
    return TagsMatch(_tags(tags), "any")


def tags_all(*tags: str) -> TagsMatch:
    """Documents having every one of ``tags``."""
    return TagsMatch(_tags(tags), "all")


def scope(*, tenant: str | None = None, user: str | None = None, session: str | None = None) -> ScopeIs:
    """Strict scope filter: every given axis must equal the document's (``None`` = any)."""
    for name, v in (("tenant", tenant), ("user", user), ("session", session)):
        if v is not None and (not isinstance(v, str) or not v):
            raise InvalidInputError(f"scope {name} must be a non-empty string")
    if tenant is None and user is None and session is None:
        raise InvalidInputError("scope filter needs at least one of tenant, user, session")
    return ScopeIs(tenant, user, session)


def tenant(name: str) -> ScopeIs:
    """Shorthand for ``scope(tenant=name)``."""
    return scope(tenant=name)


# ------------------------------------------------------------------ parsing


def parse(spec: Mapping[str, Any] | Filter | None) -> Filter | None:
    """Parse the JSON/YAML filter form (see module docstring). A :class:`Filter` passes through."""
    if spec is None or isinstance(spec, Filter):
        return spec
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"a filter must be a mapping, got {type(spec).__name__}")
    parts: list[Filter] = []
    for key, val in spec.items():
        parts.append(_parse_entry(key, val))
    if not parts:
        raise InvalidInputError("empty filter")
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_list(key: str, val: Any) -> tuple[Filter, ...]:
    if not isinstance(val, list) or not val:
        raise InvalidInputError(f"{key} needs a non-empty list of filters")
    out = []
    for v in val:
        f = parse(v)
        assert f is not None
        out.append(f)
    return tuple(out)


def _parse_entry(key: str, val: Any) -> Filter:
    if key == "$and":
        return And(_parse_list(key, val))
    if key == "$or":
        return Or(_parse_list(key, val))
    if key == "$not":
        f = parse(val)
        if f is None:
            raise InvalidInputError("$not needs a filter")
        return Not(f)
    if key in ("$tags_any", "$tags_all"):
        t = _tags(val if isinstance(val, list) else [val])
        return TagsMatch(t, "any" if key == "$tags_any" else "all")
    if key == "$scope":
        if not isinstance(val, Mapping) or set(val) - {"tenant", "user", "session"}:
            raise InvalidInputError("$scope needs a mapping with tenant/user/session")
        return scope(**val)
    if key.startswith("$"):
        raise InvalidInputError(f"unknown filter operator {key!r}")
    ref = FieldRef(key)
    if not isinstance(val, Mapping):
        return ref.eq(val)
    conds: list[Filter] = []
    for op, arg in val.items():
        name = op[1:] if isinstance(op, str) and op.startswith("$") else None
        if name not in _OPS:
            raise InvalidInputError(f"unknown operator {op!r} on field {key!r}")
        if name == "exists":
            conds.append(ref.exists() if arg else Not(ref.exists()))
        else:
            method = {"in": "in_"}.get(name, name)
            conds.append(getattr(ref, method)(arg))
    if not conds:
        raise InvalidInputError(f"no operator given for field {key!r}")
    return conds[0] if len(conds) == 1 else And(tuple(conds))


# ------------------------------------------------------------------ reference evaluator


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _scalar_eq(a: Any, b: Any) -> bool:
    if isinstance(b, bool) or isinstance(a, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(b):
        return _is_number(a) and a == b
    return isinstance(a, str) and isinstance(b, str) and a == b


def _value_eq(field_value: Any, v: Any) -> bool:
    if isinstance(field_value, list):
        return any(_scalar_eq(x, v) for x in field_value)
    return _scalar_eq(field_value, v)


_MISSING = object()


def _cond(c: Cond, meta: Mapping[str, Any]) -> bool:
    fv = meta.get(c.key, _MISSING)
    if fv is None:
        fv = _MISSING
    op = c.op
    if op == "exists":
        return fv is not _MISSING
    if op == "eq":
        return fv is not _MISSING and _value_eq(fv, c.value)
    if op == "ne":
        return not (fv is not _MISSING and _value_eq(fv, c.value))
    if op == "in":
        return fv is not _MISSING and any(_value_eq(fv, v) for v in c.value)
    if op == "nin":
        return not (fv is not _MISSING and any(_value_eq(fv, v) for v in c.value))
    if op == "contains":
        if isinstance(fv, str):
            return isinstance(c.value, str) and c.value in fv
        if isinstance(fv, list):
            return any(_scalar_eq(x, c.value) for x in fv)
        return False
    if not _is_number(fv):
        return False
    if op == "gt":
        return bool(fv > c.value)
    if op == "gte":
        return bool(fv >= c.value)
    if op == "lt":
        return bool(fv < c.value)
    if op == "lte":
        return bool(fv <= c.value)
    raise InvalidInputError(f"unknown filter operator {op!r}")


def matches(f: Filter | None, doc: Document) -> bool:
    """Reference semantics: does ``doc`` pass filter ``f``? (``None`` passes everything.)"""
    if f is None:
        return True
    if isinstance(f, Cond):
        return _cond(f, doc.metadata)
    if isinstance(f, And):
        return all(matches(x, doc) for x in f.filters)
    if isinstance(f, Or):
        return any(matches(x, doc) for x in f.filters)
    if isinstance(f, Not):
        return not matches(f.filter, doc)
    if isinstance(f, TagsMatch):
        have = set(doc.tags)
        return any(t in have for t in f.tags) if f.mode == "any" else all(t in have for t in f.tags)
    if isinstance(f, ScopeIs):
        s = doc.scope
        return all(
            want is None or (got is not None and got == want)
            for want, got in ((f.tenant, s.tenant), (f.user, s.user), (f.session, s.session))
        )
    raise InvalidInputError(f"unknown filter node {type(f).__name__}")
