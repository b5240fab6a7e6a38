"""Input validation shared by every backend (pure functions, no I/O)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.errors import DimensionMismatchError, InvalidInputError
from aixpy.vectorstores.types import METRICS, MODES, Document, Query

MAX_ID_LEN = 512
MAX_METADATA_KEY_LEN = 256
MAX_TAG_LEN = 128
MAX_LIMIT = 10_000
_TAG_RE = re.compile(r"^[A-Za-z0-9_:\-.]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

__all__ = [
    "MAX_LIMIT",
    "validate_collection_name",
    "validate_document",
    "validate_id",
    "validate_query",
    "validate_vector",
]


def validate_id(doc_id: Any) -> str:
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidInputError(f"document id must be a non-empty string, got {doc_id!r}")
    if len(doc_id) > MAX_ID_LEN:
        raise InvalidInputError(f"document id longer than {MAX_ID_LEN} characters")
    if doc_id.strip() != doc_id or doc_id in (".", ".."):
        raise InvalidInputError(f"invalid document id {doc_id!r}")
    if _CONTROL_RE.search(doc_id):
        raise InvalidInputError(f"document id contains control characters: {doc_id!r}")
    return doc_id


def validate_collection_name(name: Any) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,62}", name):
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 1-63 letters, digits, '_' or '-', starting alphanumeric"
        )
    return name


def validate_vector(vec: Any, dimensions: int | None, *, what: str = "embedding") -> npt.NDArray[np.float32]:
    """Return ``vec`` as a 1-D float32 array after checking length and finiteness."""
    if vec is None:
        raise InvalidInputError(f"{what} is required")
    if isinstance(vec, str | bytes):
        raise InvalidInputError(f"{what} must be a sequence of numbers, not {type(vec).__name__}")
    try:
        arr = np.asarray(vec, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{what} must be a sequence of numbers: {e}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(f"{what} must be a non-empty 1-D sequence of numbers")
    if dimensions is not None and arr.shape[0] != dimensions:
        raise DimensionMismatchError(dimensions, int(arr.shape[0]), what=what)
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{what} contains NaN or infinite values")
    return arr


def _validate_metadata_value(key: str, v: Any, depth: int = 0) -> None:
    if depth > 8:
        raise InvalidInputError(f"metadata {key!r} is nested too deeply")
    if v is None or isinstance(v, str | bool):
        return
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            raise InvalidInputError(f"metadata {key!r}: integers must fit in 64 bits (every backend stores int64)")
        return
    if isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidInputError(f"metadata {key!r} contains NaN or infinity")
        return
    if isinstance(v, list | tuple):
        for x in v:
            _validate_metadata_value(key, x, depth + 1)
        return
    if isinstance(v, Mapping):
        for k, x in v.items():
            _validate_metadata_key(k)
            _validate_metadata_value(key, x, depth + 1)
        return
    raise InvalidInputError(
        f"metadata {key!r} must be JSON-like (str, number, bool, None, list, dict), got {type(v).__name__}"
    )


def _validate_metadata_key(k: Any) -> None:
    if not isinstance(k, str) or not k:
        raise InvalidInputError(f"metadata keys must be non-empty strings, got {k!r}")
    if len(k) > MAX_METADATA_KEY_LEN:
        raise InvalidInputError(f"metadata key longer than {MAX_METADATA_KEY_LEN} characters")
    if k.startswith("$") or "." in k or _CONTROL_RE.search(k):
        raise InvalidInputError(f"metadata key {k!r} may not start with '$' or contain '.' or control characters")


def _validate_time(name: str, t: Any) -> None:
    if t is None:
        return
    if not isinstance(t, datetime) or t.tzinfo is None:
        raise InvalidInputError(f"{name} must be a timezone-aware datetime")


def validate_document(doc: Any, dimensions: int | None) -> npt.NDArray[np.float32]:
    """Check every field of ``doc``; return its embedding as float32."""
    if not isinstance(doc, Document):
        raise InvalidInputError(f"expected a Document, got {type(doc).__name__}")
    validate_id(doc.id)
    if not isinstance(doc.content, str):
        raise InvalidInputError(f"document {doc.id!r}: content must be a string")
    if not isinstance(doc.metadata, Mapping):
        raise InvalidInputError(f"document {doc.id!r}: metadata must be a mapping")
    for k, v in doc.metadata.items():
        _validate_metadata_key(k)
        _validate_metadata_value(k, v)
    if not isinstance(doc.tags, list | tuple):
        raise InvalidInputError(f"document {doc.id!r}: tags must be a list of strings")
    for t in doc.tags:
        if not isinstance(t, str) or not t or len(t) > MAX_TAG_LEN or not _TAG_RE.match(t):
            raise InvalidInputError(
                f"document {doc.id!r}: invalid tag {t!r} (1-{MAX_TAG_LEN} chars of letters, digits, _ : - .)"
            )
    for axis in ("tenant", "user", "session"):
        v = getattr(doc.scope, axis)
        if v is not None and (not isinstance(v, str) or not v):
            raise InvalidInputError(f"document {doc.id!r}: scope {axis} must be a non-empty string or None")
    for name in ("created_at", "updated_at", "expires_at"):
        _validate_time(f"document {doc.id!r}: {name}", getattr(doc, name))
    return validate_vector(doc.embedding, dimensions, what=f"document {doc.id!r} embedding")


def validate_query(q: Any, dimensions: int | None) -> npt.NDArray[np.float32]:
    if not isinstance(q, Query):
        raise InvalidInputError(f"expected a Query, got {type(q).__name__}")
    if isinstance(q.limit, bool) or not isinstance(q.limit, int) or not 1 <= q.limit <= MAX_LIMIT:
        raise InvalidInputError(f"query limit must be an integer in 1..{MAX_LIMIT}, got {q.limit!r}")
    if isinstance(q.offset, bool) or not isinstance(q.offset, int) or q.offset < 0:
        raise InvalidInputError(f"query offset must be a non-negative integer, got {q.offset!r}")
    if q.min_score is not None and (
        isinstance(q.min_score, bool) or not isinstance(q.min_score, int | float) or not math.isfinite(q.min_score)
    ):
        raise InvalidInputError(f"min_score must be a finite number, got {q.min_score!r}")
    if q.metric is not None and q.metric not in METRICS:
        raise InvalidInputError(f"unknown metric {q.metric!r}; use one of {', '.join(METRICS)}")
    if q.mode not in MODES:
        raise InvalidInputError(f"unknown query mode {q.mode!r}; use one of {', '.join(MODES)}")
    if q.mode != "vector":
        if not isinstance(q.text, str):
            raise InvalidInputError(f"a {q.mode} query needs text (the query words), got {q.text!r}")
        if q.min_score is not None:
            raise InvalidInputError(f"min_score is a vector-similarity threshold; a {q.mode} query cannot use it")
        if isinstance(q.rrf_k, bool) or not isinstance(q.rrf_k, int) or q.rrf_k < 1:
            raise InvalidInputError(f"rrf_k must be a positive integer, got {q.rrf_k!r}")
    if q.mode == "keyword":
        return np.empty(0, dtype=np.float32)
    return validate_vector(q.embedding, dimensions, what="query embedding")


def check_ids(ids: Sequence[str]) -> list[str]:
    if isinstance(ids, str):
        raise InvalidInputError("ids must be a list of strings, not a single string")
    return [validate_id(i) for i in ids]
