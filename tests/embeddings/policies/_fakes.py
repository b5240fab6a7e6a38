"""Small real services for fault injection: hash vectors (deterministic, offline) plus scripted failures.

Nothing is mocked: a ``Scripted`` service goes through the real ``EmbeddingService`` batching (sub-batches,
``PartialBatchError``, usage), and only its per-request primitive can be told to fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from aixpy.embeddings.base import Embedded, Matrix
from aixpy.embeddings.hashing import HashEmbeddings

Failure = BaseException | None


class Scripted(HashEmbeddings):
    """Hash embeddings that record every request and fail on cue.

    ``script``: one entry per request (sub-batch) in order — an exception to raise, or ``None`` to answer;
    once used up, every request answers. ``fail_text``: text -> list of exceptions, raised (one per request)
    whenever a sub-batch contains that text. ``tokens``: tokens per text to report as the provider's count
    (``None``: the provider reports none). ``on_request``: called with the texts before answering.
    """

    def __init__(self, *, dims: int = 32, model: str = "scripted", provider: str = "scripted",
                 batch_size: int = 64, script: Sequence[Failure] = (), fail_text: dict[str, list[BaseException]]
                 | None = None, tokens: int | None = None, on_request: Callable[[list[str]], None] | None = None,
                 unknown_dims: bool = False, concurrency: int = 1) -> None:
        super().__init__(dims, model=model, batch_size=batch_size)
        self.provider = provider
        self.script = list(script)
        self.fail_text = {k: list(v) for k, v in (fail_text or {}).items()}
        self.tokens_per_text = tokens
        self.on_request = on_request
        self.requests: list[list[str]] = []
        self.max_concurrency = concurrency
        self._lock = threading.Lock()
        self._true_dims = dims
        if unknown_dims:  # learned from the first answer, like a server whose model is not configured
            self._dimensions = None

    @property
    def texts_sent(self) -> list[str]:
        return [t for r in self.requests for t in r]

    def _embed_part(self, texts: list[str]) -> Embedded:
        with self._lock:
            self.requests.append(list(texts))
            failure = self.script.pop(0) if self.script else None
            if failure is None:
                for t in texts:
                    if self.fail_text.get(t):
                        failure = self.fail_text[t].pop(0)
                        break
        if self.on_request is not None:
            self.on_request(list(texts))
        if failure is not None:
            raise failure
        vectors = self._vectors(texts)
        return Embedded(vectors, None if self.tokens_per_text is None else self.tokens_per_text * len(texts))

    def _vectors(self, texts: list[str]) -> Matrix:
        return reference(texts, self._true_dims)


def reference(texts: Sequence[str], dims: int = 32) -> Matrix:
    """What an unwrapped hash service of ``dims`` returns for ``texts``."""
    out: Matrix = HashEmbeddings(dims)._embed_texts(list(texts))
    return out.astype(np.float32)
