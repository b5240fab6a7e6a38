"""The keyword and hybrid search plans of the ``pgvector`` backend.

BM25 runs in SQL over the table's ``tsvector`` column (:func:`~aixpy.vectorstores._pg_sql.bm25_sql`);
hybrid search is :func:`~aixpy.vectorstores.keyword.text_plan` with each leg run as a plan, so a
whole text query is one transaction on the sync and the async path alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aixpy.vectorstores import _pg_sql as q
from aixpy.vectorstores import _pg_write as w
from aixpy.vectorstores import keyword as kw
from aixpy.vectorstores.filters import Filter, parse
from aixpy.vectorstores.types import Match, Query, QueryResult, utcnow

if TYPE_CHECKING:
    from aixpy.vectorstores.base import Vector
    from aixpy.vectorstores.pgvector import _Handle

__all__ = ["keyword_plan", "text_plan"]


def keyword_plan(h: _Handle, terms: list[str], filter: Filter | None, limit: int,
                 with_embeddings: bool) -> q.Plan[list[Match]]:
    """The BM25 top ``limit`` of collection ``h`` for ``terms`` (one statistics read, one query)."""
    h.check()
    where, params = q.compile_filter(parse(filter))
    if where == q.FALSE or h.options.dimensions is None:
        return []
    words = list(dict.fromkeys(terms))
    now = utcnow()
    n, avg, dfs = yield q.fetch_one(q.df_sql(h.table), {"words": [q.tsquery_any([t]) for t in words], "now": now})
    cols = ", ".join(q.DOC_COLUMNS) + (", embedding" if with_embeddings else "")
    params.update(terms=words, idf=[kw.idf(int(n), int(df)) for df in dfs], avg=max(float(avg), 1e-9),
                  tsq=q.tsquery_any(words), now=now, limit=limit)
    rows = yield q.fetch_all(q.bm25_sql(h.table, cols, where), params)
    return [Match(w.decode_doc(r, w.decode_vector(r[11]) if with_embeddings else None), float(r[-1]),
                  -float(r[-1]), rank) for rank, r in enumerate(rows, start=1)]


def text_plan(h: _Handle, vec: Vector | None, query: Query, t0: float,
              vector_plan: Callable[[Vector, Query, float], q.Plan[QueryResult]]) -> q.Plan[QueryResult]:
    """:func:`~aixpy.vectorstores.keyword.text_plan` with each leg run as a plan (one transaction);
    a vector leg runs ``vector_plan``."""
    legs = kw.text_plan(query, vec is not None)
    try:
        leg = next(legs)
        while True:
            lq = leg.query
            if leg.terms is not None:
                found = yield from keyword_plan(h, leg.terms, lq.filter, lq.limit, lq.include_embeddings)
            else:
                assert vec is not None  # a vector leg only comes with a vector
                found = (yield from vector_plan(vec, lq, t0)).matches
            leg = legs.send(found)
    except StopIteration as stop:
        result: QueryResult = stop.value
    result.took_ms = (time.perf_counter() - t0) * 1000.0
    return result
