"""A loaded file's segments to numbered chunks, measured in the embedding model's tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aixpy.rag.chunking import Chunk, chunk_tokens
from aixpy.rag.loaders import SourceFile
from aixpy.rag.tokens import TokenCounter

__all__ = ["FileChunk", "chunk_file"]


@dataclass(frozen=True, slots=True)
class FileChunk:
    """Chunk ``index`` of a file: ``start``/``end`` are offsets in its segment, ``metadata`` the segment's."""

    index: int
    text: str
    start: int
    end: int
    tokens: int
    metadata: dict[str, Any] = field(default_factory=dict)


def _fit(text: str, counter: TokenCounter, size: int) -> list[Chunk]:
    """Re-split a chunk whose own tokenization came out longer than ``size`` (a cut inside a word)."""
    [spans] = counter.spans([text])
    return chunk_tokens(text, spans, size=size, overlap=0)


def chunk_file(src: SourceFile, counter: TokenCounter, size: int, overlap: int) -> tuple[list[FileChunk], list[str]]:
    """Chunks of every segment of ``src`` (numbered across the file), and warnings naming the file."""
    segments = [s for s in src.segments if s.text.strip()]
    pieces: list[tuple[Chunk, dict[str, Any]]] = []
    for seg, spans in zip(segments, counter.spans([s.text for s in segments]), strict=True):
        pieces.extend((c, seg.metadata) for c in chunk_tokens(seg.text, spans, size=size, overlap=overlap))
    counts = [len(s) for s in counter.spans([c.text for c, _ in pieces])] if pieces else []
    out: list[FileChunk] = []
    warnings: list[str] = []
    for (c, meta), n in zip(pieces, counts, strict=True):
        parts = [(c, n)]
        if n > size:
            parts = [(Chunk(0, p.text, c.start + p.start, c.start + p.end), 0) for p in _fit(c.text, counter, size)]
            parts = [(p, len(s)) for (p, _), s in zip(parts, counter.spans([p.text for p, _ in parts]), strict=True)]
        for p, k in parts:
            if counter.window is not None and k > counter.window:
                warnings.append(f"{src.path}: chunk {len(out)} has {k} tokens, more than the model's "
                                f"{counter.window}; its tail will be cut when embedded")
            out.append(FileChunk(len(out), p.text, p.start, p.end, k, meta))
    return out, warnings
