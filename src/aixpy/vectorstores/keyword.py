"""Keyword (BM25) search and its fusion with vector search: what every backend shares.

**Tokenisation** (documents and queries alike, on every backend): the text is NFKC-normalised and
case-folded (Unicode lowercase), then split into Unicode words: maximal runs of letters, digits and
``_`` (Python's ``\\w``). No stemming, no stop words; words longer than :data:`MAX_TOKEN_CHARS`
characters are ignored. ``"Error E-4471 in Café_Config"`` gives ``error, e, 4471, in, café_config``.

**BM25** (``k1`` = :data:`K1`, ``b`` = :data:`B`): a document's score for a query is
``sum over the distinct query words w of idf(w) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))``
with ``idf(w) = ln(1 + (N - df + 0.5) / (df + 0.5))``, where ``tf`` is how often ``w`` occurs in the
document, ``len`` its number of words, ``N`` the number of documents and ``df`` how many contain ``w``.
Only documents containing at least one query word match.

**Hybrid** search runs the vector search and the keyword search (each for its best
:func:`candidate_depth` documents, same filter) and fuses the two rankings with reciprocal rank fusion:
``score(d) = sum over the rankings r that hold d of 1 / (k + rank_r(d))`` (ranks from 1, ``k`` =
``Query.rrf_k``, default :data:`RRF_K` = 60, the value of Cormack et al. 2009). Ties break by id.
Fusion happens here, once, so every backend fuses identically.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

from aixpy.vectorstores.types import MODES, Match, Query, QueryResult, SearchMode

__all__ = [
    "K1",
    "MAX_TOKEN_CHARS",
    "MODES",
    "RRF_K",
    "B",
    "Leg",
    "SearchMode",
    "bm25_tf",
    "candidate_depth",
    "finish",
    "idf",
    "rrf_fuse",
    "sparse_document",
    "sparse_query",
    "term_id",
    "text_plan",
    "tokenize",
    "vector_leg",
]

RRF_K = 60
K1 = 1.2
B = 0.75
MAX_TOKEN_CHARS = 255
#: Document length that Qdrant's sparse vectors are normalised against (written once per document,
#: so the collection's real average cannot be used there).
SPARSE_AVG_LEN = 256.0
_MIN_DEPTH = 100
_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """The words of ``text`` as BM25 sees them (see the module docstring)."""
    return [w for w in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()) if len(w) <= MAX_TOKEN_CHARS]


def idf(n_docs: int, df: int) -> float:
    """BM25's (always positive) inverse document frequency."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def bm25_tf(tf: float, length: float, avg_len: float) -> float:
    """The term-frequency factor of BM25 for one word of one document."""
    norm = 1.0 - B + B * (length / avg_len if avg_len > 0 else 1.0)
    return tf * (K1 + 1.0) / (tf + K1 * norm)


def term_id(word: str) -> int:
    """A stable 32-bit id of ``word`` (CRC-32 of its UTF-8): the dimension of a sparse vector."""
    return zlib.crc32(word.encode("utf-8"))


def sparse_document(text: str) -> tuple[list[int], list[float]]:
    """The BM25 sparse vector of a document: ``term_id -> bm25_tf`` against :data:`SPARSE_AVG_LEN`
    (the engine multiplies by idf at query time)."""
    words = tokenize(text)
    counts: Counter[int] = Counter(term_id(w) for w in words)
    ids = sorted(counts)
    return ids, [bm25_tf(counts[i], len(words), SPARSE_AVG_LEN) for i in ids]


def sparse_query(terms: Sequence[str]) -> tuple[list[int], list[float]]:
    """The sparse vector of a query: weight 1 for each distinct word."""
    ids = sorted({term_id(t) for t in terms})
    return ids, [1.0] * len(ids)


def candidate_depth(query: Query) -> int:
    """How many candidates each ranking of a hybrid query contributes: ``max(100, 2 * (offset + limit))``
    (at most 10,000)."""
    return min(10_000, max(_MIN_DEPTH, 2 * (query.offset + query.limit)))


def rrf_fuse(rankings: Sequence[Sequence[Match]], k: int = RRF_K) -> list[Match]:
    """Reciprocal rank fusion of best-first rankings into one (score = fused score, distance = -score)."""
    scores: dict[str, float] = {}
    docs: dict[str, Match] = {}
    for ranking in rankings:
        for rank, m in enumerate(ranking, start=1):
            doc_id = m.document.id
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
            if doc_id not in docs or (docs[doc_id].document.embedding is None and m.document.embedding is not None):
                docs[doc_id] = m
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [replace(docs[i], score=scores[i], distance=-scores[i], rank=r) for r, i in enumerate(order, start=1)]


def finish(query: Query, vector: Sequence[Match] | None, keyword: Sequence[Match], took_ms: float) -> QueryResult:
    """The page ``query`` asks for: of ``keyword`` alone (``vector is None``) or of the fused rankings."""
    ranked = list(keyword) if vector is None else rrf_fuse([vector, keyword], query.rrf_k)
    page = ranked[query.offset: query.offset + query.limit]
    out = [replace(m, rank=query.offset + j + 1) for j, m in enumerate(page)]
    return QueryResult(out, query.offset, query.limit, took_ms)


def vector_leg(query: Query, depth: int) -> Query:
    """The vector half of a hybrid ``query``: its ``depth`` best neighbours, from the first."""
    return replace(query, mode="vector", offset=0, limit=depth, min_score=None, text=None)


@dataclass(frozen=True, slots=True)
class Leg:
    """One ranking a :func:`text_plan` needs: the keyword search (``terms`` set) or the vector search
    (``query`` set, a vector-mode query for the plan's vector). The driver sends back its matches."""

    query: Query
    terms: list[str] | None = None


def text_plan(query: Query, has_vector: bool) -> Generator[Leg, list[Match], QueryResult]:
    """A keyword or hybrid query as a plan: it yields the :class:`Leg` s it needs, in order, receives
    each one's matches and returns the page. ``has_vector`` is false when the collection is still
    without dimensions (no vector leg). Backends drive it with their own I/O (sync or async)."""
    terms = tokenize(query.text or "")
    depth = candidate_depth(query)
    leg = replace(query, offset=0, limit=depth)
    words = (yield Leg(leg, terms)) if terms else []
    if query.mode == "keyword":
        return finish(query, None, words, 0.0)
    vector = (yield Leg(vector_leg(query, depth))) if has_vector else []
    return finish(query, vector, words, 0.0)
