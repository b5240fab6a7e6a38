"""Split text into overlapping chunks on natural boundaries (pure functions).

:func:`chunk_tokens` (what the indexer uses) measures in tokens of the embedding model, so no chunk is
ever longer than the model's window; :func:`chunk_text` measures in characters.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from aixpy.errors import InvalidInputError

__all__ = ["Chunk", "check_sizes", "chunk_text", "chunk_tokens"]

# Boundaries, strongest first: paragraph, line, sentence end, clause, word.
_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?])\s+"),
               re.compile(r"(?<=[;:,])\s+"), re.compile(r"\s+"))


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text`` is ``source_text[start:end]`` with surrounding whitespace stripped."""

    index: int
    text: str
    start: int
    end: int


def _cut_point(text: str, start: int, hard_end: int, min_end: int) -> int:
    """Best boundary in ``text[min_end:hard_end]``; ``hard_end`` if there is none."""
    window = text[min_end:hard_end]
    for pat in _BOUNDARIES:
        last = None
        for m in pat.finditer(window):
            last = m
        if last is not None:
            return min_end + last.end()
    return hard_end


def chunk_text(text: str, *, size: int = 1000, overlap: int = 150) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``size`` characters overlapping by about ``overlap``.

    Cuts prefer paragraph, then line, sentence, clause and word boundaries, never leaving a chunk
    shorter than half of ``size`` unless the text ends. Every character of ``text`` is in at least
    one chunk (whitespace-only chunks are dropped).
    """
    if size < 50:
        raise InvalidInputError("chunk size must be at least 50 characters")
    if not 0 <= overlap < size // 2:
        raise InvalidInputError("chunk overlap must be >= 0 and less than half the chunk size")
    n = len(text)
    chunks: list[Chunk] = []
    start = 0
    while start < n:
        hard_end = min(start + size, n)
        end = hard_end if hard_end == n else _cut_point(text, start, hard_end, start + size // 2)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            s = start + lead
            chunks.append(Chunk(len(chunks), stripped, s, s + len(stripped)))
        if end >= n:
            break
        nxt = end - overlap
        if overlap:
            # start the overlap on a word boundary so chunks don't begin mid-word
            m = re.search(r"\s", text[nxt:end])
            if m is not None:
                nxt = nxt + m.end()
        start = max(nxt, start + 1)
    return chunks


def check_sizes(size: int, overlap: int, window: int | None = None) -> None:
    """Refuse a token chunk size/overlap pair before any work (InvalidInputError naming the option)."""
    if size < 8:
        raise InvalidInputError(f"chunk size must be at least 8 tokens, got {size}")
    if window is not None and size > window:
        raise InvalidInputError(f"chunk size {size} exceeds the embedding model's window of {window} tokens")
    if not 0 <= overlap < size:
        raise InvalidInputError(f"overlap must be >= 0 and less than the chunk size ({size} tokens), got {overlap}")


def _token_cut(text: str, starts: Sequence[int], i: int, j: int, size: int) -> int:
    """Token index (exclusive) where the chunk starting at token ``i`` ends: the best boundary in
    its second half, else ``j`` (``i + size``)."""
    lo = starts[i + max(1, size // 2)]
    window = text[lo : starts[j]]
    for pat in _BOUNDARIES:
        last = None
        for m in pat.finditer(window):
            last = m
        if last is not None:
            cut = bisect_left(starts, lo + last.end(), i + 1, j + 1)
            if cut > i:
                return cut
    return j


def chunk_tokens(text: str, spans: Sequence[tuple[int, int]], *, size: int, overlap: int) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``size`` tokens, consecutive ones sharing ``overlap``.

    ``spans`` are the ``(start, end)`` character offsets of ``text``'s tokens (from the embedding
    model's tokenizer). Cuts fall on token boundaries, preferring paragraph, line, sentence, clause
    and word ends in the chunk's second half; an overlap starts on a word. Every token is in a chunk.
    """
    check_sizes(size, overlap)
    starts = [s for s, _ in spans]
    n = len(spans)
    chunks: list[Chunk] = []
    i = 0
    while i < n:
        j = min(i + size, n)
        cut = n if j == n else _token_cut(text, starts, i, j, size)
        s, e = spans[i][0], spans[cut - 1][1]
        chunks.append(Chunk(len(chunks), text[s:e], s, e))
        if cut >= n:
            break
        nxt = max(cut - overlap, i + 1)
        while nxt < cut and nxt > i + 1 and not text[spans[nxt][0] - 1 : spans[nxt][0]].isspace():
            nxt += 1  # start the overlap on a word
        i = nxt
    return chunks
