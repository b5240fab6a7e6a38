"""What is still to embed across attempts (retries, fallbacks) and what came back so far. No I/O."""

from __future__ import annotations

from typing import Any

import numpy as np

from aixpy.embeddings.base import EmbeddingUsage, Matrix
from aixpy.embeddings.policies._wrapper import Result
from aixpy.errors import PartialBatchError, ProviderError, ResponseFormatError
from aixpy.policy import Work

__all__ = ["Attempts", "partial_error", "usage_of"]


def usage_of(err: BaseException) -> EmbeddingUsage | None:
    """The usage a :class:`PartialBatchError` carries (what its successful sub-batches cost)."""
    usage = getattr(err, "usage", None)
    return usage if isinstance(usage, EmbeddingUsage) else None


def partial_error(failed: list[int], errors: list[BaseException], vectors: list[Any], usage: EmbeddingUsage,
                  *, provider: str | None = None, model: str | None = None) -> PartialBatchError:
    err = PartialBatchError(failed, errors, vectors, provider=provider, model=model)
    err.usage = usage  # type: ignore[attr-defined]
    return err


class Attempts(Work[Result, Result]):
    """One call's texts, the indexes still ``pending``, the vectors obtained and the usage spent: the
    :class:`~aixpy.policy.engine.Work` of an embedding call, so that a retry or a fallback sends only
    the texts that failed."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.pending = list(range(len(texts)))
        self.vectors: dict[int, np.ndarray[Any, np.dtype[np.float32]]] = {}
        self.usage = EmbeddingUsage(0, 0)
        self.dims: int | None = None

    def batch(self) -> list[str]:
        return [self.texts[i] for i in self.pending]

    def outstanding(self) -> str:
        return f"{len(self.pending)} text(s)"

    def result(self, reply: Result) -> Result:
        return self.done(*reply), self.usage

    def _put(self, index: int, vec: Any) -> bool:
        arr = np.asarray(vec, dtype=np.float32)
        if arr.ndim != 1 or (self.dims is not None and arr.shape[0] != self.dims):
            return False
        self.dims = arr.shape[0]
        self.vectors[index] = arr
        return True

    def done(self, matrix: Matrix, usage: EmbeddingUsage) -> Matrix:
        """Every pending text got its vector: the whole batch, in order."""
        if matrix.ndim != 2 or matrix.shape[0] != len(self.pending):
            raise ResponseFormatError(f"service returned shape {matrix.shape} for {len(self.pending)} texts")
        self.usage = self.usage + usage
        if not self.vectors:  # the common case, first attempt answered in full: no copy
            self.pending = []
            return matrix.astype(np.float32, copy=False)
        for row, index in enumerate(self.pending):
            if not self._put(index, matrix[row]):
                raise ResponseFormatError(f"service returned {matrix.shape[1]}-d vectors, earlier ones were "
                                          f"{self.dims}-d")
        self.pending = []
        return np.stack([self.vectors[i] for i in range(len(self.texts))]).astype(np.float32, copy=False)

    def partial(self, err: PartialBatchError) -> None:
        """Keep what a partly failed attempt returned; only its failed texts stay pending."""
        failed = set(err.failed)
        for j, vec in enumerate(err.vectors):
            if j < len(self.pending) and j not in failed and (vec is None or not self._put(self.pending[j], vec)):
                failed.add(j)
        self.pending = [self.pending[j] for j in sorted(failed) if j < len(self.pending)]
        usage = usage_of(err)
        if usage is not None:
            self.usage = self.usage + usage

    def failure(self, err: ProviderError) -> ProviderError:
        """The error to raise on giving up: ``err`` itself unless some texts did get a vector, else a
        :class:`PartialBatchError` indexed on the caller's texts holding every vector obtained."""
        if len(self.pending) == len(self.texts):
            return err
        pending = set(self.pending)
        vectors = [None if i in pending else self.vectors[i].tolist() for i in range(len(self.texts))]
        errors: list[BaseException] = list(err.errors) if isinstance(err, PartialBatchError) else [err]
        return partial_error(sorted(pending), errors, vectors, self.usage, provider=err.provider, model=err.model)
