"""The ``EmbeddingService`` interface (the guide's Embed / EmbedBatch / Dimensions / Model / Close).

Providers subclass :class:`EmbeddingService` and implement one primitive, ``_embed_texts`` (sync)
and/or ``_aembed_texts`` (async). Input checking, batch splitting and the sync/async twins are
shared here, so every provider treats empty text, non-strings and batches the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from aixpy.errors import InvalidInputError

__all__ = ["EmbeddingService", "Matrix", "check_texts"]

Matrix = npt.NDArray[np.float32]


def check_texts(texts: Any) -> list[str]:
    """Validate a batch: a list of non-empty strings. Raises :class:`InvalidInputError`."""
    if isinstance(texts, str | bytes):
        raise InvalidInputError("embed_batch takes a list of strings; use embed() for one text")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidInputError(f"embed_batch takes a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidInputError(f"text {i} is {type(t).__name__}, not str")
        if not t.strip():
            raise InvalidInputError(f"text {i} is empty or whitespace; it has no meaning to embed")
    return items


class EmbeddingService:
    """Turns text into vectors. Use as a (async) context manager or call ``close()``.

    Attributes:
        provider: registry name ("local", "openai", ...).
        batch_size: most texts sent to the model in one call; larger batches are split.
    """

    provider: str = ""
    batch_size: int = 64

    def __init__(self, *, model: str, dimensions: int) -> None:
        self._model = model
        self._dimensions = dimensions
        self._closed = False

    # ------------------------------------------------------------------ the guide's interface

    def model(self) -> str:
        """Model name, stored with every embedding so vectors of different models never mix."""
        return self._model

    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, text: str) -> list[float]:
        """Embed one text."""
        return self.embed_batch([text])[0]

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed many texts, in order. Batches larger than ``batch_size`` are split."""
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_array(self, texts: Sequence[str]) -> Matrix:
        """Like :meth:`embed_batch` but returns a ``(n, dimensions)`` float32 array (no copies)."""
        items = self._check(texts)
        if not items:
            return np.empty((0, self._dimensions), dtype=np.float32)
        parts = [self._embed_texts(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        return self._stack(parts, len(items))

    async def aembed(self, text: str) -> list[float]:
        return (await self.aembed_batch([text]))[0]

    async def aembed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        return (await self.aembed_array(texts)).tolist()  # type: ignore[no-any-return]

    async def aembed_array(self, texts: Sequence[str]) -> Matrix:
        items = self._check(texts)
        if not items:
            return np.empty((0, self._dimensions), dtype=np.float32)
        parts = [
            await self._aembed_texts(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)
        ]
        return self._stack(parts, len(items))

    def close(self) -> None:
        self._closed = True

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self._model!r}, dims={self._dimensions})"

    # ------------------------------------------------------------------ provider primitives

    def _embed_texts(self, texts: list[str]) -> Matrix:
        """Embed at most ``batch_size`` validated texts; return ``(len(texts), dims)`` float32."""
        raise NotImplementedError

    async def _aembed_texts(self, texts: list[str]) -> Matrix:
        """Async primitive; by default runs the sync one in a worker thread."""
        return await asyncio.to_thread(self._embed_texts, texts)

    # ------------------------------------------------------------------ shared helpers

    def _check(self, texts: Sequence[str]) -> list[str]:
        if self._closed:
            raise InvalidInputError(f"{type(self).__name__} is closed")
        return check_texts(texts)

    def _stack(self, parts: list[Matrix], n: int) -> Matrix:
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if out.shape != (n, self._dimensions):
            from aixpy.errors import ResponseFormatError

            raise ResponseFormatError(
                f"provider returned shape {out.shape}, expected {(n, self._dimensions)}",
                provider=self.provider,
                model=self._model,
            )
        return out
