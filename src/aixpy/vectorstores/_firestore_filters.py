"""Filter compiler of the Firestore backend: aixpy filters -> Firestore ``where`` clauses (no I/O).

Firestore's own operators do not share the reference semantics of
:func:`aixpy.vectorstores.filters.matches` (``==`` on an array compares the whole array, ``!=``
and ``not-in`` skip documents without the field, one ``array-contains`` per query...). So every
document also stores two helper fields that make the common operators exact:

- ``filter_tokens``: an array of strings, one per fact a filter can ask about::

      v<US>key<US>value   a scalar value, or one element of a list value (eq / in)
      l<US>key<US>value   one element of a list value (contains of a non-string)
      e<US>key            the key is present and not None (exists)
      t<US>tag            a tag
      s<US>axis<US>value  a scope axis (tenant / user / session)

  with ``<US>`` = ``\\x1f`` (metadata keys cannot hold control characters) and values typed
  (``s`` + string, ``b1``/``b0``, ``n`` + canonical number: ``1`` and ``1.0`` give ``n1``,
  ``True`` gives ``b1``, so type strictness holds). Tokens over 1,000 bytes are replaced by
  ``h<US>`` + their sha256 (Firestore indexes only the first 1,500 bytes of a string).
- ``filter_numbers``: a map ``k<hex of key>`` -> number for each top-level numeric (non-bool)
  metadata value, for range conditions (Firestore orders ints and doubles together, and a list,
  string or bool never satisfies a numeric range: exactly the reference semantics).

:func:`compile_filter` returns a :class:`Plan`: a conjunction of native clauses selecting a
*superset* of the matching documents, and ``exact`` telling whether it selects exactly them.
What Firestore cannot express exactly (``ne``, ``nin``, ``not``, substring ``contains``, more than
one token clause in a conjunction, more than 30 alternatives, range bounds beyond 2**53) is
left to the caller, which re-checks candidates with ``matches`` (over-fetching as needed): a
filter is never dropped or weakened.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from aixpy.errors import InvalidInputError
from aixpy.vectorstores.filters import And, Cond, Filter, Not, Or, ScopeIs, TagsMatch
from aixpy.vectorstores.types import Document

__all__ = [
    "MAX_ALTERNATIVES",
    "MAX_RANGE_FIELDS",
    "FieldEq",
    "NumRange",
    "Plan",
    "TokensAny",
    "compile_filter",
    "document_tokens",
    "number_key",
    "numeric_fields",
]

US = "\x1f"
MAX_ALTERNATIVES = 30  # Firestore: at most 30 values in array-contains-any / 30 disjunctions
MAX_RANGE_FIELDS = 9  # Firestore allows 10 inequality fields; one is kept for the TTL clause
MAX_TOKEN_BYTES = 1000
EXACT_FLOAT_LIMIT = 2**53
SCOPE_AXES = ("tenant", "user", "session")


# ------------------------------------------------------------------ tokens (shared by writes and filters)


def _enc(v: Any) -> str | None:
    """Typed, canonical text of a scalar (``None`` for values no filter can equal)."""
    if isinstance(v, bool):
        return "b1" if v else "b0"
    if isinstance(v, str):
        return "s" + v
    if isinstance(v, int):
        return f"n{v}"
    if isinstance(v, float) and math.isfinite(v):
        return f"n{int(v)}" if v.is_integer() else "n" + repr(v)
    return None


def _token(*parts: str) -> str:
    t = US.join(parts)
    if len(t.encode("utf-8")) > MAX_TOKEN_BYTES:
        return "h" + US + hashlib.sha256(t.encode("utf-8")).hexdigest()
    return t


def value_token(key: str, v: Any, kind: str = "v") -> str | None:
    e = _enc(v)
    return None if e is None else _token(kind, key, e)


def document_tokens(doc: Document) -> list[str]:
    """Every token of ``doc`` (see module docstring), without duplicates."""
    out: dict[str, None] = {}
    for key, v in doc.metadata.items():
        if v is None:
            continue
        out[_token("e", key)] = None
        items = v if isinstance(v, list | tuple) else (v,)
        for x in items:
            t = value_token(key, x)
            if t is not None:
                out[t] = None
                if items is v:
                    out[_token("l", key, _enc(x) or "")] = None
    for tag in doc.tags:
        out[_token("t", tag)] = None
    for axis in SCOPE_AXES:
        val = getattr(doc.scope, axis)
        if val is not None:
            out[_token("s", axis, val)] = None
    return list(out)


def number_key(key: str) -> str:
    """Name of ``key`` inside the ``filter_numbers`` map (a plain identifier for any key)."""
    return "k" + key.encode("utf-8").hex()


def numeric_fields(metadata: Mapping[str, Any]) -> dict[str, int | float]:
    return {number_key(k): v for k, v in metadata.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


# ------------------------------------------------------------------ plan


@dataclass(frozen=True, slots=True)
class TokensAny:
    """``filter_tokens`` holds at least one of ``tokens`` (array-contains / array-contains-any)."""

    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldEq:
    """Top-level string field ``field`` equals ``value`` (scope axes)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class NumRange:
    """``filter_numbers.<key>`` compared with a number."""

    key: str
    op: Literal["<", "<=", ">", ">="]
    value: int | float


Atom: TypeAlias = TokensAny | FieldEq | NumRange


@dataclass(frozen=True, slots=True)
class Plan:
    """A conjunction of native clauses (empty: every document) selecting a superset of the
    matching documents; exactly them when ``exact``."""

    atoms: tuple[Atom, ...]
    exact: bool


_Lowered: TypeAlias = tuple[tuple[Atom, ...], bool]
_ANY: _Lowered = ((), False)  # "every document", a superset that needs re-checking


def compile_filter(f: Filter | None) -> Plan:
    """Compile ``f`` (see module docstring); ``None`` gives the exact plan that selects everything."""
    if f is None:
        return Plan((), True)
    atoms, exact = _lower(f)
    return _within_limits(atoms, exact)


def _within_limits(atoms: Iterable[Atom], exact: bool) -> Plan:
    """Keep what one Firestore query may hold: one token clause, <= MAX_RANGE_FIELDS range fields."""
    tokens = [a for a in atoms if isinstance(a, TokensAny)]
    eqs = list(dict.fromkeys(a for a in atoms if isinstance(a, FieldEq)))
    ranges = list(dict.fromkeys(a for a in atoms if isinstance(a, NumRange)))
    kept: list[Atom] = list(eqs)
    if tokens:
        best = min(tokens, key=lambda a: len(a.tokens))
        kept.append(best)
        exact = exact and all(t == best for t in tokens)
    fields = list(dict.fromkeys(r.key for r in ranges))
    if len(fields) > MAX_RANGE_FIELDS:
        exact = False
        ranges = [r for r in ranges if r.key in fields[:MAX_RANGE_FIELDS]]
    kept.extend(ranges)
    return Plan(tuple(kept), exact)


def _lower(f: Filter) -> _Lowered:
    if isinstance(f, Cond):
        return _cond(f)
    if isinstance(f, And):
        atoms: list[Atom] = []
        exact = True
        for x in f.filters:
            a, e = _lower(x)
            atoms.extend(a)
            exact = exact and e
        return tuple(atoms), exact
    if isinstance(f, Or):
        return _or([_lower(x) for x in f.filters])
    if isinstance(f, Not):
        if isinstance(f.filter, Not):
            return _lower(f.filter.filter)
        return _ANY
    if isinstance(f, TagsMatch):
        toks = tuple(dict.fromkeys(_token("t", t) for t in f.tags))
        if f.mode == "any":
            return ((TokensAny(toks),), True) if len(toks) <= MAX_ALTERNATIVES else _ANY
        return tuple(TokensAny((t,)) for t in toks), True
    if isinstance(f, ScopeIs):
        return tuple(FieldEq(axis, v) for axis, v in zip(SCOPE_AXES, (f.tenant, f.user, f.session), strict=True)
                     if v is not None), True
    raise InvalidInputError(f"unknown filter node {type(f).__name__}")


def _or(parts: list[_Lowered]) -> _Lowered:
    """One token clause for the union when every branch has a token-like clause, else everything."""
    union: dict[str, None] = {}
    exact = True
    for atoms, e in parts:
        if not atoms:
            return ((), e)  # a branch that matches every document (exactly, or as a superset)
        if len(atoms) > 1:
            e = False  # any one clause of a conjunction is a superset of it
        pick = _token_like(atoms)
        if pick is None:
            return _ANY
        union.update(dict.fromkeys(pick))
        exact = exact and e
    if len(union) > MAX_ALTERNATIVES:
        return _ANY
    return (TokensAny(tuple(union)),), exact


def _token_like(atoms: tuple[Atom, ...]) -> tuple[str, ...] | None:
    for a in atoms:
        if isinstance(a, TokensAny):
            return a.tokens
    for a in atoms:
        if isinstance(a, FieldEq):
            return (_token("s", a.field, a.value),)
    return None


def _cond(c: Cond) -> _Lowered:
    key, op, v = c.key, c.op, c.value
    if op == "exists":
        return (TokensAny((_token("e", key),)),), True
    if op == "eq":
        t = value_token(key, v)
        return ((TokensAny((t,)),), True) if t is not None else _ANY
    if op == "in":
        toks = tuple(dict.fromkeys(value_token(key, x) for x in v))
        if None in toks or len(toks) > MAX_ALTERNATIVES:
            return _ANY
        return (TokensAny(tuple(t for t in toks if t is not None)),), True
    if op == "contains":
        if isinstance(v, str):
            return _ANY  # substring of a string value: no Firestore operator
        t = value_token(key, v, "l")
        return ((TokensAny((t,)),), True) if t is not None else _ANY
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(v, bool) or not isinstance(v, int | float) or not abs(v) < EXACT_FLOAT_LIMIT:
            return _ANY
        sym: Literal["<", "<=", ">", ">="] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]  # type: ignore[assignment]
        return (NumRange(number_key(key), sym, v),), True
    if op in ("ne", "nin"):
        return _ANY  # Firestore's != / not-in skip documents without the field; re-checked instead
    raise InvalidInputError(f"unknown filter operator {op!r}")
