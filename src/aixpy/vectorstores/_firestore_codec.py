"""Wire format of the Firestore backend: documents and queries as raw Firestore protobufs (no I/O).

The high-level ``google.cloud.firestore`` client converts every vector element through a
proto-plus wrapper (about 10 ms per 384-d document each way); building and reading the raw
messages here is 4-10x faster. The messages are the public ``google.firestore.v1`` API, sent by
:mod:`aixpy.vectorstores.firestore` through the official GAPIC client.

Layout (``root`` = ``firestore.collection`` from the config, default ``embeddings``)::

    <root>/<collection>                      catalog: dimensions, metric and options
    <root>/<collection>/documents/<key>      one aixpy document

Fields of a document: ``id`` (the original id), ``content``, ``content_sha256``, ``embedding``
(a Firestore ``Vector``; the float32 values as doubles), ``metadata`` (a map; or
``metadata_json``, a JSON string, when the metadata holds something a Firestore map cannot: keys
like ``__x__`` or a list inside a list), ``tags``, ``tenant``/``user``/``session``,
``embedding_model``, ``created_at``/``updated_at``/``expires_at`` (timestamps), ``live_until``
(``expires_at``, or 9999-12-31 when the document never expires: range-queryable, and usable
as a Firestore TTL policy field), and the filter helpers of :mod:`._firestore_filters`.

Document keys: the id itself when Firestore accepts it as a document id, else ``~`` + the sha256
of the id (ids containing ``/``, ``__x__``-like ids, ids over 1,500 bytes, and ids starting with
``~`` so no id can collide with a hashed one).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.vectorstores import _firestore_filters as ff
from aixpy.vectorstores._dedup import content_sha256
from aixpy.vectorstores.types import Document, Metric, Scope

__all__ = [
    "F_EMBEDDING",
    "MAX_NEAREST",
    "NEVER",
    "Row",
    "base_query",
    "catalog_fields",
    "count_query",
    "decode",
    "decode_row",
    "doc_key",
    "document_fields",
    "encode",
    "engine_score",
    "exact_scores",
    "field_filter",
    "nearest_query",
    "pb",
    "scan_query",
    "where",
]

F_ID, F_CONTENT, F_SHA, F_EMBEDDING = "id", "content", "content_sha256", "embedding"
F_META, F_META_JSON, F_TAGS, F_MODEL = "metadata", "metadata_json", "tags", "embedding_model"
F_CREATED, F_UPDATED, F_EXPIRES, F_LIVE = "created_at", "updated_at", "expires_at", "live_until"
F_TOKENS, F_NUMBERS, F_DISTANCE = "filter_tokens", "filter_numbers", "aixpy_distance"
NAME = "__name__"
MAX_NEAREST = 1000  # Firestore's largest find_nearest limit
DOCS = "documents"
NEVER = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RESERVED = re.compile(r"__.*__")
_MEASURE = {"cosine": "COSINE", "dot": "DOT_PRODUCT", "euclidean": "EUCLIDEAN"}
_OPS = {"<": "LESS_THAN", "<=": "LESS_THAN_OR_EQUAL", ">": "GREATER_THAN", ">=": "GREATER_THAN_OR_EQUAL"}
F64 = npt.NDArray[np.float64]


@functools.cache
def pb() -> SimpleNamespace:
    """The raw protobuf classes of ``google.firestore.v1`` (imported on first use)."""
    from google.cloud.firestore_v1.types import aggregation_result, common, document, firestore, query, write

    sq = query.StructuredQuery
    return SimpleNamespace(
        Value=document.Value.pb(), ArrayValue=document.ArrayValue.pb(), MapValue=document.MapValue.pb(),
        Document=document.Document.pb(), Write=write.Write.pb(), DocumentMask=common.DocumentMask.pb(),
        StructuredQuery=sq.pb(), Filter=sq.Filter.pb(), FieldFilter=sq.FieldFilter.pb(),
        CompositeFilter=sq.CompositeFilter.pb(), FieldReference=sq.FieldReference.pb(), Order=sq.Order.pb(),
        Projection=sq.Projection.pb(), FindNearest=sq.FindNearest.pb(), CollectionSelector=sq.CollectionSelector.pb(),
        Aggregation=query.StructuredAggregationQuery.Aggregation.pb(),
        StructuredAggregationQuery=query.StructuredAggregationQuery.pb(), Cursor=query.Cursor.pb(),
        AggregationResult=aggregation_result.AggregationResult.pb(),
        FieldOp=sq.FieldFilter.Operator, CompositeOp=sq.CompositeFilter.Operator,
        Measure=sq.FindNearest.DistanceMeasure, Direction=sq.Direction,
        CommitRequest=firestore.CommitRequest, RunQueryRequest=firestore.RunQueryRequest,
        BatchGetDocumentsRequest=firestore.BatchGetDocumentsRequest,
        RunAggregationQueryRequest=firestore.RunAggregationQueryRequest,
        CommitRequestPb=firestore.CommitRequest.pb(), RunQueryRequestPb=firestore.RunQueryRequest.pb(),
        BatchGetDocumentsRequestPb=firestore.BatchGetDocumentsRequest.pb(),
        RunAggregationQueryRequestPb=firestore.RunAggregationQueryRequest.pb(),
    )


# ------------------------------------------------------------------ keys and values


def doc_key(doc_id: str) -> str:
    """The Firestore document id of aixpy id ``doc_id`` (deterministic; see module docstring)."""
    if ("/" in doc_id or doc_id.startswith("~") or _RESERVED.fullmatch(doc_id)
            or len(doc_id.encode("utf-8")) > 1500):
        return "~" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()
    return doc_id


def to_micros(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _ts_value(t: datetime) -> Any:
    secs, us = divmod(to_micros(t), 1_000_000)
    v = pb().Value()
    v.timestamp_value.seconds = secs
    v.timestamp_value.nanos = us * 1000
    return v


def _from_ts(ts: Any) -> datetime:
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def vector_value(vec: Sequence[float]) -> Any:
    p = pb()
    arr = p.ArrayValue(values=[p.Value(double_value=x) for x in vec])
    return p.Value(map_value=p.MapValue(fields={"__type__": p.Value(string_value="__vector__"),
                                               "value": p.Value(array_value=arr)}))


def encode(v: Any) -> Any:
    """A JSON-like Python value (or datetime) as a Firestore ``Value``."""
    p = pb()
    if v is None:
        return p.Value(null_value=0)
    if isinstance(v, bool):
        return p.Value(boolean_value=v)
    if isinstance(v, int):
        return p.Value(integer_value=v)
    if isinstance(v, float):
        return p.Value(double_value=v)
    if isinstance(v, str):
        return p.Value(string_value=v)
    if isinstance(v, datetime):
        return _ts_value(v)
    if isinstance(v, Mapping):
        return p.Value(map_value=p.MapValue(fields={str(k): encode(x) for k, x in v.items()}))
    if isinstance(v, list | tuple):
        return p.Value(array_value=p.ArrayValue(values=[encode(x) for x in v]))
    raise TypeError(f"cannot store a {type(v).__name__} in Firestore")


def decode(v: Any) -> Any:
    """A Firestore ``Value`` as a Python value (vectors as lists of floats)."""
    kind = v.WhichOneof("value_type")
    if kind == "string_value":
        return v.string_value
    if kind == "integer_value":
        return int(v.integer_value)
    if kind == "double_value":
        return float(v.double_value)
    if kind == "boolean_value":
        return bool(v.boolean_value)
    if kind == "timestamp_value":
        return _from_ts(v.timestamp_value)
    if kind == "array_value":
        return [decode(x) for x in v.array_value.values]
    if kind == "map_value":
        fields = v.map_value.fields
        if "__type__" in fields and fields["__type__"].string_value == "__vector__":
            return [x.double_value for x in fields["value"].array_value.values]
        return {k: decode(x) for k, x in fields.items()}
    if kind == "bytes_value":
        return bytes(v.bytes_value)
    if kind == "reference_value":
        return v.reference_value
    return None


def _map_safe(v: Any, in_list: bool = False) -> bool:
    """Can a Firestore map hold ``v`` as is? (no ``__x__`` keys, no list directly inside a list)"""
    if isinstance(v, Mapping):
        return all(not _RESERVED.fullmatch(k) and _map_safe(x) for k, x in v.items())
    if isinstance(v, list | tuple):
        return not in_list and all(_map_safe(x, True) for x in v)
    return True


# ------------------------------------------------------------------ documents


def document_fields(doc: Document, vector: Sequence[float]) -> dict[str, Any]:
    """The Firestore fields (``Value`` messages) storing ``doc`` and its filter helpers."""
    fields: dict[str, Any] = {
        F_ID: encode(doc.id), F_CONTENT: encode(doc.content), F_SHA: encode(content_sha256(doc.content)),
        F_EMBEDDING: vector_value(vector), F_TAGS: encode(list(doc.tags)),
        F_CREATED: encode(doc.created_at), F_UPDATED: encode(doc.updated_at), F_EXPIRES: encode(doc.expires_at),
        F_LIVE: _ts_value(doc.expires_at or NEVER),
        F_TOKENS: encode(ff.document_tokens(doc)), F_NUMBERS: encode(ff.numeric_fields(doc.metadata)),
    }
    if _map_safe(doc.metadata):
        fields[F_META] = encode(doc.metadata)
    else:
        fields[F_META_JSON] = encode(json.dumps(doc.metadata, ensure_ascii=False, allow_nan=False))
    for name, val in (*zip(ff.SCOPE_AXES, (doc.scope.tenant, doc.scope.user, doc.scope.session), strict=True),
                      (F_MODEL, doc.embedding_model)):
        if val is not None:
            fields[name] = encode(val)
    return fields


@dataclass(slots=True)
class Row:
    """One stored document as read back: the document (no embedding), its vector, its key."""

    key: str
    doc: Document
    vector: F64 | None
    distance: float | None = None

    def live(self, now: datetime) -> bool:
        return self.doc.expires_at is None or self.doc.expires_at > now


def decode_row(document: Any) -> Row:
    """A raw ``Document`` message (full, or projected to some fields) as a :class:`Row`."""
    f = document.fields

    def get(name: str) -> Any:
        return decode(f[name]) if name in f else None

    meta = json.loads(f[F_META_JSON].string_value) if F_META_JSON in f else get(F_META) or {}
    vec = None
    if F_EMBEDDING in f:
        vals = f[F_EMBEDDING].map_value.fields["value"].array_value.values
        vec = np.fromiter((x.double_value for x in vals), dtype=np.float64, count=len(vals))
    doc = Document(
        id=str(get(F_ID) or ""), content=str(get(F_CONTENT) or ""), embedding=None,
        embedding_model=get(F_MODEL), metadata=meta, tags=list(get(F_TAGS) or []),
        scope=Scope(get("tenant"), get("user"), get("session")),
        created_at=get(F_CREATED), updated_at=get(F_UPDATED), expires_at=get(F_EXPIRES),
    )
    dist = float(f[F_DISTANCE].double_value) if F_DISTANCE in f else None
    return Row(document.name.rsplit("/", 1)[-1], doc, vec, dist)


# ------------------------------------------------------------------ catalog


def catalog_fields(name: str, dimensions: int | None, metric: Metric, options: Mapping[str, Any]) -> dict[str, Any]:
    return {"format": encode(1), "name": encode(name), "dimensions": encode(dimensions), "metric": encode(metric),
            "options": encode(dict(options))}


# ------------------------------------------------------------------ queries


def field_filter(path: str, op: str, value: Any) -> Any:
    p = pb()
    return p.Filter(field_filter=p.FieldFilter(field=p.FieldReference(field_path=path),
                                               op=p.FieldOp[op].value, value=value))


def where(atoms: Iterable[ff.Atom], live_after: datetime | None = None) -> Any | None:
    """The ``where`` filter of a plan's clauses (and ``live_until > live_after``), or ``None``."""
    p = pb()
    parts = []
    for a in atoms:
        if isinstance(a, ff.TokensAny):
            if len(a.tokens) == 1:
                parts.append(field_filter(F_TOKENS, "ARRAY_CONTAINS", encode(a.tokens[0])))
            else:
                parts.append(field_filter(F_TOKENS, "ARRAY_CONTAINS_ANY", encode(list(a.tokens))))
        elif isinstance(a, ff.FieldEq):
            parts.append(field_filter(a.field, "EQUAL", encode(a.value)))
        else:
            parts.append(field_filter(f"{F_NUMBERS}.{a.key}", _OPS[a.op], encode(a.value)))
    if live_after is not None:
        parts.append(field_filter(F_LIVE, "GREATER_THAN", _ts_value(live_after)))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return p.Filter(composite_filter=p.CompositeFilter(op=p.CompositeOp.AND.value, filters=parts))


def base_query(flt: Any | None, fields: Sequence[str] | None) -> Any:
    p = pb()
    q = p.StructuredQuery()
    q.from_.add(collection_id=DOCS)
    if flt is not None:
        q.where.CopyFrom(flt)
    if fields is not None:
        q.select.CopyFrom(p.Projection(fields=[p.FieldReference(field_path=x) for x in fields or (NAME,)]))
    return q


def nearest_query(flt: Any | None, vector: Sequence[float], metric: Metric, limit: int,
                  fields: Sequence[str] | None = None) -> Any:
    """``find_nearest`` over the documents matching ``flt``; distances in ``aixpy_distance``."""
    p = pb()
    q = base_query(flt, fields)
    fn = q.find_nearest
    fn.vector_field.field_path = F_EMBEDDING
    fn.query_vector.CopyFrom(vector_value(vector))
    fn.distance_measure = p.Measure[_MEASURE[metric]].value
    fn.limit.value = limit
    fn.distance_result_field = F_DISTANCE
    return q


def scan_query(flt: Any | None, page: int, after: str | None, fields: Sequence[str] | None = None) -> Any:
    """One page of the documents matching ``flt`` (equality/array clauses only), in key order."""
    p = pb()
    q = base_query(flt, fields)
    q.order_by.append(p.Order(field=p.FieldReference(field_path=NAME), direction=p.Direction.ASCENDING.value))
    q.limit.value = page
    if after is not None:
        q.start_at.CopyFrom(p.Cursor(values=[p.Value(reference_value=after)], before=False))
    return q


def count_query(q: Any) -> Any:
    p = pb()
    return p.StructuredAggregationQuery(structured_query=q, aggregations=[p.Aggregation(alias="n", count={})])


def engine_score(metric: Metric, distance: float) -> float:
    """Firestore's ``distance_result_field`` in aixpy's score convention (see ``types``)."""
    if metric == "cosine":
        return 1.0 - distance  # COSINE gives 1 - cosine similarity
    if metric == "dot":
        return distance  # DOT_PRODUCT gives the dot product itself (larger = nearer)
    return 1.0 / (1.0 + distance)  # EUCLIDEAN gives the L2 distance


def exact_scores(metric: Metric, x: F64, q64: F64) -> tuple[F64, F64]:
    """Float64 (score, distance) of rows ``x`` for query ``q64`` (conventions of ``types``)."""
    if metric == "euclidean":
        diff = x - q64
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return 1.0 / (1.0 + d), d
    dots = np.einsum("ij,j->i", x, q64)
    if metric == "dot":
        return dots, -dots
    xn = np.sqrt(np.einsum("ij,ij->i", x, x)) * float(np.sqrt(q64 @ q64))
    s = np.divide(dots, xn, out=np.zeros_like(dots), where=xn > 0)
    return s, 1.0 - s
