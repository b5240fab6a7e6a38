"""The in-process BM25 index of the memory backend (see :mod:`aixpy.vectorstores.keyword`).

Built from the collection's documents at the first keyword query after a write, then reused: word
-> (rows, term frequencies) postings as numpy arrays, and each row's length in words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from aixpy.vectorstores import keyword as kw
from aixpy.vectorstores.types import Document

__all__ = ["BM25Index"]

F64 = npt.NDArray[np.float64]
Rows = npt.NDArray[np.intp]


class BM25Index:
    def __init__(self, docs: Sequence[Document]) -> None:
        rows: dict[str, list[int]] = {}
        tfs: dict[str, list[int]] = {}
        lengths = np.empty(len(docs), dtype=np.float64)
        for r, d in enumerate(docs):
            words = kw.tokenize(d.content)
            lengths[r] = len(words)
            for w, n in Counter(words).items():
                rows.setdefault(w, []).append(r)
                tfs.setdefault(w, []).append(n)
        self.n = len(docs)
        self.lengths = lengths
        self.avg_len = float(lengths.mean()) if self.n else 0.0
        self.postings = {w: (np.asarray(rows[w], dtype=np.intp), np.asarray(tfs[w], dtype=np.float64)) for w in rows}

    def scores(self, terms: Sequence[str]) -> F64:
        """BM25 score of every row for ``terms`` (0 where none of them occurs)."""
        out = np.zeros(self.n)
        rel = self.lengths / self.avg_len if self.avg_len > 0 else np.ones(self.n)
        norm: F64 = kw.K1 * (1.0 - kw.B + kw.B * rel)
        for w in dict.fromkeys(terms):
            post = self.postings.get(w)
            if post is None:
                continue
            rows, tf = post
            out[rows] += kw.idf(self.n, int(rows.size)) * tf * (kw.K1 + 1.0) / (tf + norm[rows])
        return out

    def top(self, terms: Sequence[str], sub: Rows | None, ids: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The best ``k`` matching rows (of ``sub`` if given) as (row, score), by score then id."""
        s = self.scores(terms)
        hit = np.flatnonzero(s > 0) if sub is None else sub[s[sub] > 0]
        sc = s[hit].tolist()
        order = sorted(range(len(sc)), key=lambda i: (-sc[i], ids[int(hit[i])]))[:k]
        return [(int(hit[i]), sc[i]) for i in order]
