"""Split text into overlapping chunks on natural boundaries (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aixpy.errors import InvalidInputError

__all__ = ["Chunk", "chunk_text"]

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
