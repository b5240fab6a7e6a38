"""Token counting for chunking, with the embedding model's own tokenizer when it has one.

An embedder exposing ``token_spans(texts)`` and ``input_window()`` (the local all-MiniLM-L6-v2 does:
word-pieces, 254 per input besides [CLS]/[SEP]) is measured exactly. Any other embedder is measured
with :class:`ApproxTokens`, a conservative estimate (words and punctuation, long words counted per 4
characters) and ``window`` ``None`` (unknown: the chunk size is then only a target).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["ApproxTokens", "ModelTokens", "TokenCounter", "token_counter_for"]

Spans = list[tuple[int, int]]
_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
DEFAULT_SIZE = 256
"""Chunk size (tokens) when the model's window is unknown."""


@runtime_checkable
class TokenCounter(Protocol):
    """``spans(texts)``: each text's token ``(start, end)`` character offsets; ``window``: the most
    tokens one input may hold (``None``: unknown); ``name``: what measured them (for reports)."""

    name: str
    window: int | None

    def spans(self, texts: Sequence[str]) -> list[Spans]: ...


class ApproxTokens:
    """Words and punctuation marks; a word longer than 4 characters counts one token per 4."""

    name = "approximate"

    def __init__(self, window: int | None = None) -> None:
        self.window = window

    def spans(self, texts: Sequence[str]) -> list[Spans]:
        out: list[Spans] = []
        for text in texts:
            spans: Spans = []
            for m in _PIECE.finditer(text):
                s, e = m.span()
                spans.extend((i, min(i + 4, e)) for i in range(s, e, 4))
            out.append(spans)
        return out


class ModelTokens:
    """The embedder's own tokenizer (``token_spans`` / ``input_window``)."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self.name = f"{embedder.model()} tokenizer"
        self.window: int | None = int(embedder.input_window())

    def spans(self, texts: Sequence[str]) -> list[Spans]:
        spans: list[Spans] = self._embedder.token_spans(texts)
        return spans


def token_counter_for(embedder: Any) -> TokenCounter:
    """The exact counter when ``embedder`` (or the service a policy wrapper wraps) has a tokenizer,
    else :class:`ApproxTokens`."""
    while not callable(getattr(embedder, "token_spans", None)) and getattr(embedder, "inner", None) is not None:
        embedder = embedder.inner
    if callable(getattr(embedder, "token_spans", None)) and callable(getattr(embedder, "input_window", None)):
        return ModelTokens(embedder)
    return ApproxTokens()


def default_chunk_size(counter: TokenCounter) -> int:
    """The model's window (at most 512 tokens), or :data:`DEFAULT_SIZE` when unknown."""
    return min(counter.window, 512) if counter.window else DEFAULT_SIZE
