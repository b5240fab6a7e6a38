"""Strict helpers the embedding codecs share: JSON decoding and vector-matrix checks (pure, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.errors import ResponseFormatError

__all__ = ["Matrix", "decode_json", "error_message", "finite", "to_matrix", "usage_tokens"]

Matrix = npt.NDArray[np.float32]
_F32_MAX = float(np.finfo(np.float32).max)


def decode_json(body: bytes | str, *, provider: str, model: str | None) -> Any:
    """The parsed body, or :class:`ResponseFormatError` (with a short excerpt) when it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise ResponseFormatError(f"response is not valid JSON ({e})", provider=provider, model=model,
                                  body=text[:200]) from None


def error_message(obj: Any) -> str | None:
    """The message of an ``{"error": "..."}`` / ``{"error": {"message": "..."}}`` body, if it is one."""
    if not isinstance(obj, dict) or "error" not in obj:
        return None
    err = obj["error"]
    if isinstance(err, dict):
        err = err.get("message") or err.get("type") or err
    return str(err)[:300]


def to_matrix(rows: Sequence[Any], n: int, *, provider: str, model: str | None, what: str = "embeddings",
              body: bytes | str | None = None) -> Matrix:
    """``rows`` (lists of JSON numbers) as a C-contiguous ``(n, dims)`` float32 matrix.

    Raises :class:`ResponseFormatError` for a wrong count, ragged or empty vectors, non-numbers
    (strings, booleans, nulls, nested lists) and NaN/infinite values. ``body`` (the raw JSON the rows
    came from) enables a fast path: numpy converts the rows at once, and the per-value type check runs
    only when the body holds a ``true``/``false`` literal (the one thing numpy would silently take).
    """

    def bad(why: str) -> ResponseFormatError:
        return ResponseFormatError(f"{what}: {why}", provider=provider, model=model)

    if len(rows) != n:
        raise bad(f"got {len(rows)} vectors for {n} texts")
    wide = _fast(rows, body)
    if wide is None:
        _check_rows(rows, bad)
        wide = np.array(rows, dtype=np.float64)
    bad_rows = np.unique(np.nonzero(~(np.abs(wide) <= _F32_MAX))[0])  # NaN, inf, or beyond float32
    if bad_rows.size:
        raise bad(f"NaN or infinite values (for float32) in vector(s) {bad_rows[:10].tolist()}")
    out: Matrix = wide.astype(np.float32)
    return out


def _fast(rows: Sequence[Any], body: bytes | str | None) -> npt.NDArray[np.float64] | None:
    """All rows as one float64 array when that is certainly right, else ``None`` (take the slow path)."""
    if body is None or not rows:
        return None
    raw = body.encode() if isinstance(body, str) else body
    if b"true" in raw or b"false" in raw:
        return None
    try:
        arr = np.array(rows)
    except (ValueError, TypeError, OverflowError):  # ragged, or values numpy cannot take
        return None
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.dtype.kind not in "fi":  # strings, nulls, nesting, empty
        return None
    return arr.astype(np.float64, copy=False)


def _check_rows(rows: Sequence[Any], bad: Callable[[str], ResponseFormatError]) -> None:
    width = None
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not row:
            kind = "empty" if isinstance(row, list) else type(row).__name__
            raise bad(f"vector {i} is {kind}, not a list of numbers")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise bad(f"vectors have different lengths ({width} and {len(row)} at {i})")
        for x in row:  # bool is an int subclass; strings and nulls must not be coerced either
            if type(x) is not float and type(x) is not int:
                raise bad(f"vector {i} holds a {type(x).__name__} ({str(x)[:20]!r}), not a number")


def finite(arr: Matrix, *, provider: str, model: str | None, what: str = "embeddings") -> Matrix:
    """``arr`` if every value is finite, else :class:`ResponseFormatError` naming the bad rows."""
    if not np.isfinite(arr).all():
        rows = np.unique(np.nonzero(~np.isfinite(arr))[0])
        raise ResponseFormatError(f"{what}: NaN or infinite values in vector(s) {rows[:10].tolist()}",
                                  provider=provider, model=model)
    return arr


def usage_tokens(value: Any) -> int | None:
    """A non-negative integer token count, or ``None`` when absent or malformed (servers vary)."""
    if type(value) is int and value >= 0:
        return value
    return None
