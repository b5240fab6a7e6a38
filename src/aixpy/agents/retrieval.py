"""The built-in ``retrieve`` tool: semantic search over an indexed collection, for agents.

::

    from aixpy.agents import Agent
    from aixpy.agents.retrieval import retrieve_tool

    agent = Agent("helper", "Answer from the documents.", model,
                  tools=[retrieve_tool(embedder, collection, limit=5)])

The model calls ``retrieve(query, limit=5, filter=None)`` and gets a list of passages, best first, each
with its source id (``source#chunk``), its score and its text. ``filter`` is the JSON filter of
:func:`aixpy.vectorstores.filters.parse` (``{"source": "guide.md"}``), combined with the tool's own
filter. The collection's index records are never returned, and a collection built with another
embedding model is an error (the search checks the model signature). A bad filter or limit is an
error result the model can correct.
"""

from __future__ import annotations

import threading
from typing import Any

from aixpy.agents.tools import Tool
from aixpy.embeddings.base import EmbeddingService
from aixpy.rag.answer import Passage, retrieve
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter

__all__ = ["PassageLog", "retrieve_tool"]

DESCRIPTION = ("Search the indexed documents for passages relevant to a query. Returns the best passages first, "
               "each with its source id (source#chunk), similarity score and text.")


class PassageLog:
    """The passages a run's ``retrieve`` calls returned, each numbered once (from 1) for citing: the same
    passage found twice keeps its first number. Safe to share between concurrent tool calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers: dict[str, int] = {}
        self.numbered: dict[int, Passage] = {}

    def add(self, passages: list[Passage]) -> list[int]:
        with self._lock:
            out = []
            for p in passages:
                n = self._numbers.get(p.id)
                if n is None:
                    n = self._numbers[p.id] = len(self._numbers) + 1
                    self.numbered[n] = p
                out.append(n)
            return out


def retrieve_tool(embedder: EmbeddingService, collection: BaseCollection, *, limit: int = 5, max_limit: int = 20,
                  min_score: float | None = None, filter: Filter | None = None, name: str = "retrieve",
                  description: str = DESCRIPTION, log: PassageLog | None = None) -> Tool:
    """A :class:`~aixpy.agents.Tool` searching ``collection`` (indexed with ``embedder``).

    Args:
        limit: passages per call when the model gives no ``limit``; it may ask for up to ``max_limit``.
        min_score: passages scoring below it are left out (``None``: all; see
            :data:`aixpy.rag.answer.DEFAULT_MIN_SCORE` for the local model's threshold).
        filter: always applied (the model's filter narrows it further).
        log: numbers each passage for citing (``[n]``); the passages then carry ``n``.
    """
    from aixpy.vectorstores import filters

    if not 1 <= limit <= max_limit:
        raise ValueError(f"retrieve_tool: limit must be between 1 and max_limit ({max_limit}), got {limit}")
    default_limit = limit

    def search_documents(query: str, limit: int = default_limit,
                         filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Search the indexed documents.

        Args:
            query: what to look for, in plain words.
            limit: how many passages to return.
            filter: optional metadata filter, e.g. {"source": "guide.md"}.
        """
        if not query.strip():
            raise ValueError("the query is empty")
        if not 1 <= limit <= max_limit:
            raise ValueError(f"limit must be between 1 and {max_limit}, got {limit}")
        flt = fixed
        asked = filters.parse(filter) if filter else None
        if asked is not None:
            flt = asked if flt is None else flt & asked
        found = retrieve(embedder, collection, query, limit=limit, filter=flt, min_score=min_score)
        rows = [p.as_dict() for p in found]
        if log is not None:
            for row, n in zip(rows, log.add(found), strict=True):
                row["n"] = n
        return rows

    fixed = filter
    return Tool(search_documents, name=name, description=description)
