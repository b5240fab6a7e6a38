"""A deterministic, dependency-free embedder for tests: hashed bag of words (public, offline).

Texts sharing words get similar vectors, so ranking tests behave sensibly, but it knows no
synonyms. Use it in your own unit tests instead of mocking an embedding service.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from aixpy.config.stores import EmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService, Matrix

__all__ = ["HashEmbeddings", "create"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbeddings(EmbeddingService):
    """Feature-hashed word counts, L2-normalised. ``calls`` counts texts embedded (for tests)."""

    provider = "hash"

    def __init__(self, dimensions: int = 256, *, model: str = "hash-bow", batch_size: int = 64) -> None:
        super().__init__(model=model, dimensions=dimensions)
        self.batch_size = batch_size
        self.calls = 0

    def _embed_texts(self, texts: list[str]) -> Matrix:
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self._dimensions] += 1.0 if (h >> 63) == 0 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        self.calls += len(texts)
        return out


def create(config: EmbeddingsConfig) -> HashEmbeddings:
    return HashEmbeddings(config.hash.dimensions if config.hash is not None else 256)
