"""A TEI-compatible fake for :class:`tests.embeddings._servers.LoopbackServer`: ``/embed``, ``/info``, ``/health``.

Vectors are deterministic per text (:func:`tei_vector`), so a test can check every row and its order.
``TEIFake.dead`` makes every request drop its connection (a server that died); ``fail_embed`` answers
``/embed`` with a scripted error reply instead.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from ._servers import Recorded, Reply

__all__ = ["DIMS", "TEIFake", "tei_vector", "tei_vectors"]

DIMS = 16


def tei_vector(text: str, dims: int = DIMS) -> list[float]:
    digest = hashlib.blake2b(text.encode(), digest_size=dims).digest()
    return [(b - 127.5) / 127.5 for b in digest]


def tei_vectors(texts: list[str], dims: int = DIMS) -> np.ndarray:
    return np.array([tei_vector(t, dims) for t in texts], dtype=np.float32)


class TEIFake:
    """A handler: ``srv.handler = TEIFake(...)``. Counts the texts it embedded."""

    def __init__(self, *, model_id: str = "org/tei-model", max_client_batch_size: int = 32, dims: int = DIMS) -> None:
        self.model_id = model_id
        self.max_client_batch_size = max_client_batch_size
        self.dims = dims
        self.dead = False
        self.fail_embed: Reply | None = None
        self.embedded = 0
        self._lock = threading.Lock()

    def __call__(self, rec: Recorded) -> Reply:
        if self.dead:
            return Reply.drop_connection()
        if rec.path == "/health":
            return Reply(b"", status=200)
        if rec.path == "/info":
            return Reply.json({"model_id": self.model_id, "model_sha": None, "model_dtype": "float32",
                               "model_type": {"embedding": {"pooling": "mean"}}, "max_concurrent_requests": 512,
                               "max_input_length": 512, "max_batch_tokens": 16384, "max_batch_requests": None,
                               "max_client_batch_size": self.max_client_batch_size, "tokenization_workers": 2,
                               "version": "1.5.0"})
        if rec.path != "/embed" or rec.method != "POST":
            return Reply.error(404, {"error": "not found", "error_type": "NotFound"})
        if self.fail_embed is not None:
            return self.fail_embed
        inputs = rec.json["inputs"]
        if len(inputs) > self.max_client_batch_size:
            return Reply.error(413, {"error": f"batch size {len(inputs)} > maximum allowed batch size "
                                              f"{self.max_client_batch_size}", "error_type": "Validation"})
        with self._lock:
            self.embedded += len(inputs)
        rows = tei_vectors(inputs, self.dims)
        if rec.json.get("normalize", True):
            rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        return Reply.json(rows.tolist())
