"""What every Qdrant backend shares: point ids, the payload layout, stored options, exact scores,
and the collection logic (upsert rules, TTL, dedup, max_documents, exact re-ranked queries).

A backend subclasses :class:`QdrantCollectionBase` and implements a dozen small engine primitives
(``_retrieve``, ``_write``, ``_search``, ...). The embedded engine (``qdrant-edge``) and the
``qdrant-client`` backend (a server, or qdrant-client's local mode) both do, so both give the
same answers.

Point ids are uuid5 of the document id (:func:`point_id`); the document id itself is stored in
the payload. Payload of one point (top level; user metadata lives under ``meta`` so it can never
collide)::

    id, content, content_sha256, meta, tags, tenant, user, session, embedding_model,
    created_at, updated_at, expires_at   (times: integer microseconds since the Unix epoch, UTC)
    norm                                 (L2 norm of the original vector; cosine stores unit vectors)
    meta_keys                            (metadata keys whose value is not None: ``exists``)
    list_keys                            (metadata keys whose value is a list: ``contains``/ranges)
    meta_bools                           ("<key>\\x1f1" / "<key>\\x1f0" for boolean values: the engine's
                                          match on a Python bool is a match on the integer 1/0)
"""

from __future__ import annotations

import time
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.errors import InvalidInputError
from aixpy.vectorstores import _qdrant_filters as qf
from aixpy.vectorstores import keyword as kw
from aixpy.vectorstores._dedup import CHUNK, BatchDedup, content_sha256, new_hashes, unit_rows
from aixpy.vectorstores.base import CollectionOptions, PreparedDoc, SharedStateCollection, Vector
from aixpy.vectorstores.filters import Filter, matches, parse
from aixpy.vectorstores.types import (
    DeleteResult,
    Document,
    Match,
    Metric,
    Query,
    QueryResult,
    Scope,
    UpsertResult,
    utcnow,
)

__all__ = [
    "POINT_ID_NAMESPACE",
    "Dedup",
    "QdrantCollectionBase",
    "doc_from_payload",
    "exact_scores",
    "options_from_json",
    "options_to_json",
    "payload_from_doc",
    "point_id",
]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
_EPS32 = 2.0**-24
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1
SPARSE = "bm25"
"""Name of the sparse vector holding a point's BM25 term weights (Qdrant's IDF modifier on)."""
Sparse = tuple[list[int], list[float]]
PointData = tuple[str, list[float], Sparse | None, dict[str, Any]]
"""(point id, dense vector, BM25 sparse vector or ``None``, payload) of one point to write."""
KEYWORD_FIELDS = (qf.F_TENANT, qf.F_USER, qf.F_SESSION, qf.F_TAGS, qf.F_META_KEYS, qf.F_LIST_KEYS, qf.F_BOOLS)
"""Reserved payload fields every filter of that kind reads: worth a keyword index on a server."""

# ------------------------------------------------------------------ point ids

#: Fixed namespace of the uuid5 point ids. Never change it: stored collections depend on it.
POINT_ID_NAMESPACE = uuid.UUID("6b1c3e0a-8f0d-5c57-9a3e-2f1d7c4b9e21")


def point_id(doc_id: str) -> str:
    """The Qdrant point id (a UUID string) of document ``doc_id``; deterministic across runs."""
    return str(uuid.uuid5(POINT_ID_NAMESPACE, doc_id))


# ------------------------------------------------------------------ payload


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
        bools.extend(dict.fromkeys(qf.bool_token(k, x) for x in items if isinstance(x, bool)))
    p: dict[str, Any] = {
        qf.F_ID: doc.id,
        qf.F_CONTENT: doc.content,
        qf.F_SHA: content_sha256(doc.content),
        qf.F_META: meta,
        qf.F_TAGS: list(doc.tags),
        qf.F_NORM: norm,
    }
    helpers = ((qf.F_META_KEYS, [k for k, v in meta.items() if v is not None]),
               (qf.F_LIST_KEYS, [k for k, v in meta.items() if isinstance(v, list)]), (qf.F_BOOLS, bools))
    p.update((name, keys) for name, keys in helpers if keys)  # absent = empty: each key costs ~20 us to send
    for name, val in ((qf.F_TENANT, doc.scope.tenant), (qf.F_USER, doc.scope.user),
                      (qf.F_SESSION, doc.scope.session), (qf.F_MODEL, doc.embedding_model)):
        if val is not None:
            p[name] = val
    for name, t in ((qf.F_CREATED, doc.created_at), (qf.F_UPDATED, doc.updated_at), (qf.F_EXPIRES, doc.expires_at)):
        if t is not None:
            p[name] = qf.to_micros(t)
    return p


def doc_from_payload(payload: Mapping[str, Any], embedding: list[float] | None = None) -> Document:
    def when(name: str) -> datetime | None:
        v = payload.get(name)
        return None if v is None else qf.from_micros(v)

    return Document(
        id=str(payload[qf.F_ID]),
        content=str(payload.get(qf.F_CONTENT, "")),
        embedding=embedding,
        embedding_model=payload.get(qf.F_MODEL),
        metadata=dict(payload.get(qf.F_META) or {}),
        tags=list(payload.get(qf.F_TAGS) or []),
        scope=Scope(payload.get(qf.F_TENANT), payload.get(qf.F_USER), payload.get(qf.F_SESSION)),
        created_at=when(qf.F_CREATED),
        updated_at=when(qf.F_UPDATED),
        expires_at=when(qf.F_EXPIRES),
    )


# ------------------------------------------------------------------ scores and stored options


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


def vector_of(record: Any) -> Any:
    """The (unnamed) vector of an engine record: a list, or ``{"": list}``."""
    vec = record.vector
    return vec.get("") if isinstance(vec, dict) else vec


# ------------------------------------------------------------------ the shared collection logic


class QdrantCollectionBase(SharedStateCollection):
    """Collection logic shared by the Qdrant backends, written against engine primitives.

    Records returned by the primitives have ``id``, ``payload``, ``vector`` and (search) ``score``,
    like the classes of both ``qdrant_edge`` and ``qdrant_client``. Cosine collections store unit
    vectors (the original norm goes in the payload); scores are recomputed in float64.
    """

    # engine primitives -----------------------------------------------------------

    @abstractmethod
    def _storage(self, dims: int | None = None) -> bool:
        """Raise if closed. With ``dims``: create the storage if needed. Return whether it exists."""

    @abstractmethod
    def _retrieve(self, pids: list[str], fields: list[str] | None, vectors: bool) -> list[Any]:
        """Records of the existing points among ``pids`` (``fields=None``: the whole payload)."""

    @abstractmethod
    def _write(self, points: list[PointData]) -> None:
        """Upsert points (the sparse vector only where the collection has one); durable when it returns."""

    @abstractmethod
    def _sparse_search(self, vector: Sparse, limit: int, node: qf.Node) -> list[Any]:
        """Top-``limit`` records (payload and vector) by the BM25 sparse vector, best first."""

    @property
    def supports_keyword(self) -> bool:
        """Collections created with the BM25 sparse vector (every new one) can run keyword queries."""
        return bool(self._h.keyword)

    @abstractmethod
    def _search(self, vector: list[float], limit: int, node: qf.Node, threshold: float | None) -> list[Any]:
        """Top-``limit`` records (payload and vector) in the engine's order; ``threshold`` is Qdrant's
        ``score_threshold`` (a minimal similarity, or for ``euclidean`` a maximal distance)."""

    @abstractmethod
    def _nearest(self, vectors: list[list[float]], limit: int, node: qf.Node) -> list[list[Any]]:
        """Exact top-``limit`` records (vector, no payload) of each vector."""

    @abstractmethod
    def _count_where(self, node: qf.Node) -> int: ...

    @abstractmethod
    def _scroll(self, node: qf.Node, fields: list[str] | None, vectors: bool = False) -> Iterator[Any]:
        """Every record matching ``node`` (``fields=[]``: no payload)."""

    @abstractmethod
    def _remove(self, pids: list[str]) -> None: ...

    @abstractmethod
    def _remove_where(self, node: qf.Node) -> None: ...

    def _live_node(self, node: qf.Node) -> qf.Node:
        """``node`` restricted to unexpired points."""
        return qf.all_of((qf.live_node(utcnow()), node))

    # helpers -------------------------------------------------------------------

    @property
    def metric(self) -> Metric:
        return self.options.metric

    def _live_records(self, ids: list[str], fields: list[str] | None, vectors: bool = False,
                      pids: list[str] | None = None) -> dict[str, Any]:
        """Records of the live (unexpired) documents among ``ids``, by document id."""
        pids = list(dict.fromkeys(pids if pids is not None else [point_id(i) for i in ids]))
        records = self._retrieve(pids, None if fields is None else [qf.F_ID, qf.F_EXPIRES, *fields], vectors)
        now = qf.to_micros(utcnow())
        out: dict[str, Any] = {}
        for r in records:
            p = r.payload or {}
            if qf.F_ID in p and (p.get(qf.F_EXPIRES) is None or p[qf.F_EXPIRES] > now):
                out[p[qf.F_ID]] = r
        return out

    def _raw(self, records: list[Any]) -> F64:
        """The original vectors of ``records`` as float64 rows (cosine rows are stored as unit vectors)."""
        x = np.asarray([vector_of(r) for r in records], dtype=np.float32).astype(np.float64)
        if self.metric == "cosine":
            norms = np.asarray([float((r.payload or {}).get(qf.F_NORM, 1.0)) for r in records], dtype=np.float64)
            x *= norms[:, None]
        return x

    def _docs(self, records: list[Any], with_vector: bool) -> list[Document]:
        raw = self._raw(records).astype(np.float32).tolist() if with_vector and records else None
        return [doc_from_payload(r.payload or {}, raw[i] if raw is not None else None)
                for i, r in enumerate(records)]

    # primitives of BaseCollection ---------------------------------------------

    def _upsert_prepared(self, docs: list[PreparedDoc]) -> UpsertResult:
        self._storage(int(docs[0].vector.shape[0]))
        opts, result = self.options, UpsertResult()
        pids = [point_id(p.doc.id) for p in docs]
        existing = self._live_records([p.doc.id for p in docs], [qf.F_CREATED], pids=pids)
        live = self._count(None) if opts.max_documents is not None else 0
        unit64, norms = unit_rows([p.vector for p in docs])
        unit = unit64.astype(np.float32)
        stored = (unit if self.metric == "cosine" else np.stack([p.vector for p in docs])).tolist()
        new = [i for i, p in enumerate(docs) if p.doc.id not in existing]
        dedup = Dedup(self, docs, new, unit) if opts.dedup and new else None
        points = []
        for i, p in enumerate(docs):
            d, old = p.doc, existing.get(p.doc.id)
            if old is not None and (old.payload or {}).get(qf.F_CREATED) is not None:
                d.created_at = qf.from_micros(old.payload[qf.F_CREATED])
            try:
                payload = payload_from_doc(d, float(np.float32(norms[i])))
            except InvalidInputError as e:
                result.add_failure(d.id, e)
                continue
            if old is not None:
                result.add_updated(d.id)
            elif dedup is not None and dedup.is_duplicate(i, d.content):
                result.add_deduplicated(d.id)
                continue
            elif opts.max_documents is not None and live + result.inserted >= opts.max_documents:
                result.add_over_limit(d.id, opts.max_documents)
                continue
            else:
                result.add_inserted(d.id)
            if dedup is not None:
                dedup.written(i, pids[i], d.content, updated=old is not None)
            sparse = kw.sparse_document(d.content) if self.supports_keyword else None
            points.append((pids[i], stored[i], sparse, payload))
        if points:
            self._write(points)
        return result

    def _query(self, vec: Vector, query: Query) -> QueryResult:
        t0 = time.perf_counter()
        metric = self.metric
        if query.metric is not None and query.metric != metric:
            raise InvalidInputError(f"collection {self.name!r} uses metric {metric!r}; a query cannot ask for "
                                    f"{query.metric!r} (Qdrant indexes one metric per collection)")
        q64 = vec.astype(np.float64)
        qn = float(np.sqrt(q64 @ q64))
        if metric == "cosine" and qn == 0.0:
            raise InvalidInputError("a zero query vector has no cosine similarity")
        flt_spec = parse(query.filter)
        compiled = qf.compile_filter(flt_spec)
        empty = QueryResult([], query.offset, query.limit)
        min_score = query.min_score
        if not self._storage() or compiled.node == qf.FALSE or (metric == "euclidean" and (min_score or 0) > 1):
            return empty
        # The engine ranks candidates in float32; they are re-scored in float64 and sorted by
        # (score desc, id asc). Candidates are fetched until none unseen can reach the cut.
        send = (q64 / qn).astype(np.float32).tolist() if metric == "cosine" else vec.tolist()
        node = self._live_node(compiled.node)
        eps = (2 * int(vec.shape[0]) + 8) * _EPS32
        max_d = None if metric != "euclidean" or min_score is None or min_score <= 0 else 1.0 / min_score - 1.0
        threshold = self._threshold(metric, min_score, max_d, eps, qn)
        need = query.offset + query.limit
        n = need + 1
        while True:
            points = self._search(send, n, node, threshold)
            if not points:
                return empty
            x = self._raw(points)
            scores, dists = exact_scores(metric, x, q64, qn)
            docs = self._docs(points, False)
            keep = [i for i in range(len(points)) if (min_score is None or scores[i] >= min_score)
                    and (compiled.exact or matches(flt_spec, docs[i]))]
            keep.sort(key=lambda i: (-scores[i], docs[i].id))
            if len(points) < n:
                break  # every candidate seen
            # Stop once no unseen candidate can reach the cut, allowing for the engine's float32 error.
            last = float(points[-1].score)  # the engine's score: cosine/dot similarity, or L2 distance
            big = float(np.sqrt(np.einsum("ij,ij->i", x, x)).max())
            if metric == "euclidean":
                tol = float(np.sqrt(eps)) * (qn + big)
                if max_d is not None and last > max_d + tol:
                    break
                if len(keep) >= need and last > float(dists[keep[need - 1]]) + tol:
                    break
            else:
                tol = eps * (1.0 if metric == "cosine" else qn * big)
                if min_score is not None and last < min_score - tol:
                    break
                if len(keep) >= need and last < float(scores[keep[need - 1]]) - tol:
                    break
            n *= 2
        page = keep[query.offset:need]
        out: list[Document] = self._docs([points[i] for i in page], True) if query.include_embeddings else \
            [docs[i] for i in page]
        matches_ = [Match(out[j], float(scores[i]), float(dists[i]), query.offset + j + 1)
                    for j, i in enumerate(page)]
        return QueryResult(matches_, query.offset, query.limit, (time.perf_counter() - t0) * 1000.0)

    def _keyword(self, terms: list[str], filter: Filter | None, limit: int, with_embeddings: bool) -> list[Match]:
        spec = parse(filter)
        compiled = qf.compile_filter(spec)
        if not self._storage() or compiled.node == qf.FALSE:
            return []
        node, vector, n = self._live_node(compiled.node), kw.sparse_query(terms), limit + 1
        while True:  # inexact filters are re-checked here: fetch more until enough pass
            points = [p for p in self._sparse_search(vector, n, node) if float(p.score) > 0]
            docs = self._docs(points, False)
            keep = [i for i in range(len(points)) if compiled.exact or matches(spec, docs[i])]
            if len(points) < n or len(keep) > limit:
                break
            n *= 2
        keep.sort(key=lambda i: (-float(points[i].score), docs[i].id))
        keep = keep[:limit]
        out = self._docs([points[i] for i in keep], True) if with_embeddings else [docs[i] for i in keep]
        return [Match(out[j], float(points[i].score), -float(points[i].score), j + 1) for j, i in enumerate(keep)]

    def _threshold(self, metric: Metric, min_score: float | None, max_d: float | None, eps: float,
                   qn: float) -> float | None:
        """Qdrant's ``score_threshold`` for ``min_score``, loosened by the engine's float32 error
        (candidates are re-checked exactly). ``None`` where no safe bound is known."""
        if min_score is None:
            return None
        if metric == "cosine":
            return min_score - 4 * eps
        if metric == "euclidean":  # a row within max_d of the query has a norm <= qn + max_d
            return None if max_d is None else max_d + 2 * float(np.sqrt(eps)) * (2 * qn + max_d)
        return None  # dot: the error bound needs the largest stored norm, unknown before the search

    def _get(self, ids: list[str]) -> list[Document]:
        if not self._storage():
            return []
        found = self._live_records(ids, None, vectors=True)
        docs = dict(zip(found, self._docs(list(found.values()), True), strict=True))
        return [docs[i] for i in ids if i in docs]

    def _delete(self, ids: list[str]) -> DeleteResult:
        ready = self._storage()
        live = self._live_records(ids, []) if ready else {}
        missing = [i for i in ids if i not in live]
        if ready:
            self._remove([point_id(i) for i in ids])  # expired copies too: they are invisible already
        return DeleteResult(deleted=len(ids) - len(missing), not_found=len(missing), not_found_ids=missing)

    def _count(self, filter: Filter | None) -> int:
        ready = self._storage()
        spec = parse(filter)
        compiled = qf.compile_filter(spec)
        if not ready or compiled.node == qf.FALSE:
            return 0
        node = self._live_node(compiled.node)
        if compiled.exact:
            return self._count_where(node)
        return sum(1 for r in self._scroll(node, None) if matches(spec, doc_from_payload(r.payload or {})))

    def _clear(self) -> None:
        if self._storage():
            self._remove_where(qf.TRUE)

    def purge_expired(self) -> int:
        """Physically delete expired documents (already invisible); return how many there were."""
        with self._lock:
            if not self._storage():
                return 0
            expired = qf.Range(qf.F_EXPIRES, lte=float(qf.to_micros(utcnow())))
            n = self._count_where(expired)
            if n:
                self._remove_where(expired)
            return n


# ------------------------------------------------------------------ dedup


class Dedup(BatchDedup):
    """:class:`~aixpy.vectorstores._dedup.BatchDedup` against the stored points: one scroll for the
    content hashes of the new documents; stored near vectors looked up for a chunk of new documents at
    once (batched exact queries). Keys are point ids."""

    TOP = 4

    def __init__(self, coll: QdrantCollectionBase, docs: list[PreparedDoc], new: list[int], unit: F32) -> None:
        super().__init__(coll.options.dedup_threshold, unit, new)
        self.coll = coll
        self.hits: dict[int, list[str]] = {}  # batch index -> stored point ids with cosine >= threshold
        self._matrix: tuple[list[str], F32] | None = None
        shas = new_hashes(docs, new)
        if shas:
            node = qf.all_of((qf.live_node(utcnow()), qf.MatchAny(qf.F_SHA, tuple(shas))))
            for r in coll._scroll(node, [qf.F_SHA]):
                self.stored_sha.setdefault(r.payload[qf.F_SHA], set()).add(str(r.id))

    def _nearest(self, vecs: list[F32], limit: int) -> list[list[tuple[str, float]]]:
        """Exact top-``limit`` stored live rows (cosine collections store unit vectors: dot = cosine)."""
        node = qf.live_node(utcnow())
        if self.replaced:
            node = qf.all_of((node, qf.negate(qf.HasId(tuple(sorted(self.replaced))))))
        found = self.coll._nearest([v.tolist() for v in vecs], limit, node) if vecs else []
        return [[(str(h.id), float(np.asarray(vector_of(h), dtype=np.float32) @ v)) for h in pts]
                for v, pts in zip(vecs, found, strict=True)]

    def _lookup(self, i: int) -> None:
        """Stored near-duplicates of the chunk of new documents that holds batch index ``i``."""
        k = self.pos[i] - self.pos[i] % CHUNK
        chunk = [j for j in self.new[k:k + CHUNK] if np.any(self.unit[j])]
        if self.coll.metric == "cosine":
            for j, hits in zip(chunk, self._nearest([self.unit[j] for j in chunk], self.TOP), strict=True):
                self.hits[j] = [p for p, c in hits if c >= self.threshold]
                if len(hits) == self.TOP and hits[-1][1] >= self.threshold:
                    self.hits[j].append("*")  # maybe more beyond TOP: ask again if these get replaced
            return
        if self._matrix is None:  # dot/euclidean collections cannot rank by cosine: one scan per call
            recs = list(self.coll._scroll(qf.live_node(utcnow()), [], vectors=True))
            x = np.asarray([vector_of(r) for r in recs], dtype=np.float64).reshape(len(recs), self.unit.shape[1])
            n = np.sqrt(np.einsum("ij,ij->i", x, x))
            self._matrix = ([str(r.id) for r, ok in zip(recs, n > 0, strict=True) if ok],
                            (x[n > 0] / n[n > 0, None]).astype(np.float32))
        ids, matrix = self._matrix
        sims = matrix @ self.unit[chunk].T
        for c, j in enumerate(chunk):
            self.hits[j] = [ids[r] for r in np.flatnonzero(sims[:, c] >= self.threshold)]

    def near_stored(self, i: int) -> bool:
        if i not in self.hits:
            self._lookup(i)
        fresh = [p for p in self.hits[i] if p not in self.replaced]
        if fresh == ["*"]:  # every hit seen was replaced by this call: ask again without them
            return any(c >= self.threshold for _, c in self._nearest([self.unit[i]], 1)[0])
        return bool(fresh)
