"""The ``EmbeddingService`` interface (the guide's Embed / EmbedBatch / Dimensions / Model / Close).

Public methods, each with an async twin (``aembed``...) that behaves the same:

* ``embed(text)``, ``embed_batch(texts)``, ``embed_array(texts)`` (a ``(n, dims)`` float32 array);
* ``embed_with_usage(texts) -> (Matrix, EmbeddingUsage)``: the same vectors plus what the call cost
  (texts, tokens, requests; ``estimated=True`` when the provider did not report its token count and
  ~4 characters per token was assumed). This is the method the cost, cache and rate-limit wrappers call.
  ``last_usage`` keeps the usage of the most recent call on the instance (with several threads or tasks
  sharing one service, read the per-call value instead).

Batching, shared by every provider: a batch is split into sub-batches (by default ``batch_size`` texts
each; a provider may split by a token budget too, see :meth:`EmbeddingService._split` and
:func:`split_by_budget`), up to ``max_concurrency`` sub-batches are in flight at once (asyncio tasks
behind a semaphore on the async path, a thread pool on the sync path; the splitting and reassembly are
the same code), and vectors always come back in input order. When some sub-batches fail and others
succeed, :class:`~aixpy.errors.PartialBatchError` is raised with the failed indexes, each sub-batch's
error and the vectors that did arrive (its ``usage`` attribute holds what was spent). When every
sub-batch fails with the same error, that error itself is raised. An authentication error or a
configuration mistake stops the call: sub-batches not yet sent are not sent (they count as failed).

Providers subclass :class:`EmbeddingService` and implement one primitive per sub-batch:
``_embed_texts`` (sync, vectors only) and/or ``_aembed_texts`` (async), or, to report token usage,
``_embed_part`` / ``_aembed_part`` returning :class:`Embedded`. A provider whose dimensions are not known
in advance passes ``dimensions=None``: they are learned from the first answer (and :meth:`dimensions`
embeds a short probe text when asked before any call). :meth:`EmbeddingService.known_dimensions` answers
without any request (``None`` while unknown); inside a provider ``self._dimensions`` is the width, 0 while
unknown.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from aixpy.errors import (
    AuthenticationError,
    InvalidInputError,
    PartialBatchError,
    ProviderError,
    ResponseFormatError,
)

__all__ = [
    "Embedded",
    "EmbeddingService",
    "EmbeddingUsage",
    "Matrix",
    "check_texts",
    "estimate_tokens",
    "split_by_budget",
]

Matrix = npt.NDArray[np.float32]

PROBE_TEXT = "dimension probe"
"""What :meth:`EmbeddingService.dimensions` embeds when the dimensions are not known yet."""


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


def estimate_tokens(texts: Iterable[str]) -> int:
    """A rough token count: ~4 characters per token (OpenAI's rule of thumb), at least 1 per text."""
    return sum(max(1, math.ceil(len(t) / 4)) for t in texts)


def split_by_budget(texts: Sequence[str], max_items: int, max_tokens: int | None = None,
                    cost: Callable[[str], int] | None = None) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` ranges of at most ``max_items`` texts and, when ``max_tokens`` is set,
    at most ``max_tokens`` by ``cost(text)`` (a text costing more than the budget goes alone)."""
    if max_items < 1:
        raise InvalidInputError("batch size must be >= 1")
    if max_tokens is None or cost is None:
        return [(i, min(i + max_items, len(texts))) for i in range(0, len(texts), max_items)]
    out: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, text in enumerate(texts):
        c = cost(text)
        if i > start and (i - start >= max_items or used + c > max_tokens):
            out.append((start, i))
            start, used = i, 0
        used += c
    if start < len(texts):
        out.append((start, len(texts)))
    return out


@dataclass(frozen=True, slots=True)
class EmbeddingUsage:
    """What one call cost. ``tokens`` are the provider's count, or an estimate when ``estimated``."""

    texts: int
    tokens: int
    estimated: bool = False
    requests: int = 0

    def __add__(self, other: EmbeddingUsage) -> EmbeddingUsage:
        return EmbeddingUsage(self.texts + other.texts, self.tokens + other.tokens,
                              self.estimated or other.estimated, self.requests + other.requests)


@dataclass(frozen=True, slots=True)
class Embedded:
    """One sub-batch's answer: ``(len(texts), dims)`` float32 vectors and the provider's token count
    (``None`` when it reports none)."""

    vectors: Matrix
    tokens: int | None = None


class EmbeddingService:
    """Turns text into vectors. Use as a (async) context manager or call ``close()``.

    Attributes:
        provider: registry name ("local", "openai", ...).
        batch_size: most texts sent to the model in one request; larger batches are split.
        max_concurrency: most sub-batches in flight at once (1 = one after the other).
        last_usage: the :class:`EmbeddingUsage` of the most recent call on this instance.
    """

    provider: str = ""
    batch_size: int = 64
    max_concurrency: int = 1

    def __init__(self, *, model: str, dimensions: int | None) -> None:
        self._model = model
        self._known_dims: int | None = dimensions or None  # None: not known yet, learned from the first answer
        self._closed = False
        self._dims_lock = threading.Lock()
        self.last_usage: EmbeddingUsage | None = None

    @property
    def _dimensions(self) -> int:
        """The vector length for subclasses: 0 while unknown. Assign ``None`` (or 0) to mark it unknown."""
        return self._known_dims or 0

    @_dimensions.setter
    def _dimensions(self, value: int | None) -> None:
        self._known_dims = value or None

    def known_dimensions(self) -> int | None:
        """The dimensions if known without a request (``None`` until the first answer for some providers)."""
        return self._known_dims

    # ------------------------------------------------------------------ the guide's interface

    def model(self) -> str:
        """Model name, stored with every embedding so vectors of different models never mix."""
        return self._model

    def dimensions(self) -> int:
        """Vector length. Unknown dimensions are learned by embedding :data:`PROBE_TEXT` once."""
        if not self._dimensions:
            self.embed_array([PROBE_TEXT])
        return self._dimensions

    async def adimensions(self) -> int:
        """Async twin of :meth:`dimensions` (the probe, if one is needed, does not block the loop)."""
        if not self._dimensions:
            await self.aembed_array([PROBE_TEXT])
        return self._dimensions

    def embed(self, text: str) -> list[float]:
        """Embed one text."""
        return self.embed_batch([text])[0]

    def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed many texts, in order. Batches larger than ``batch_size`` are split."""
        return self.embed_array(texts).tolist()  # type: ignore[no-any-return]

    def embed_array(self, texts: Sequence[str]) -> Matrix:
        """Like :meth:`embed_batch` but returns a ``(n, dimensions)`` float32 array (no copies)."""
        return self.embed_with_usage(texts)[0]

    def embed_with_usage(self, texts: Sequence[str]) -> tuple[Matrix, EmbeddingUsage]:
        """Like :meth:`embed_array`, plus the call's :class:`EmbeddingUsage` (for cost tracking)."""
        items = self._check(texts)
        if not items:
            return self._empty(), EmbeddingUsage(0, 0)
        job = _Job(self, items, self._plan(items))
        workers = min(self.max_concurrency, len(job.plan))
        if workers <= 1:
            for i in range(len(job.plan)):
                job.run_sync(i)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"aixpy-embed-{self.provider}") as pool:
                for future in [pool.submit(job.run_sync, i) for i in range(len(job.plan))]:
                    future.result()
        return job.result()

    async def aembed(self, text: str) -> list[float]:
        return (await self.aembed_batch([text]))[0]

    async def aembed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        return (await self.aembed_array(texts)).tolist()  # type: ignore[no-any-return]

    async def aembed_array(self, texts: Sequence[str]) -> Matrix:
        return (await self.aembed_with_usage(texts))[0]

    async def aembed_with_usage(self, texts: Sequence[str]) -> tuple[Matrix, EmbeddingUsage]:
        """Async twin of :meth:`embed_with_usage`."""
        items = self._check(texts)
        if not items:
            return self._empty(), EmbeddingUsage(0, 0)
        job = _Job(self, items, self._plan(items))
        if len(job.plan) == 1:
            await job.run_async(0)
        else:
            sem = asyncio.Semaphore(max(1, self.max_concurrency))

            async def bounded(i: int) -> None:
                async with sem:
                    await job.run_async(i)

            await asyncio.gather(*(bounded(i) for i in range(len(job.plan))))
        return job.result()

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
        """Embed one sub-batch of validated texts; return ``(len(texts), dims)`` float32."""
        raise NotImplementedError

    async def _aembed_texts(self, texts: list[str]) -> Matrix:
        """Async primitive; by default runs the sync one in a worker thread."""
        return await asyncio.to_thread(self._embed_texts, texts)

    def _embed_part(self, texts: list[str]) -> Embedded:
        """One sub-batch with its token usage. Override to report the provider's count."""
        return Embedded(self._embed_texts(texts))

    async def _aembed_part(self, texts: list[str]) -> Embedded:
        """Async twin of :meth:`_embed_part` (default: ``_aembed_texts`` if overridden, else a thread)."""
        if type(self)._aembed_texts is not EmbeddingService._aembed_texts:
            return Embedded(await self._aembed_texts(texts))
        return await asyncio.to_thread(self._embed_part, texts)

    def _split(self, texts: list[str]) -> list[tuple[int, int]]:
        """The splitting hook: contiguous ``(start, stop)`` sub-batches covering ``texts`` in order.
        Default: ``batch_size`` texts each; see :func:`split_by_budget` for a token budget."""
        return split_by_budget(texts, self.batch_size)

    # ------------------------------------------------------------------ shared helpers

    def _check(self, texts: Sequence[str]) -> list[str]:
        if self._closed:
            raise InvalidInputError(f"{type(self).__name__} is closed")
        return check_texts(texts)

    def _empty(self) -> Matrix:
        return np.empty((0, self._dimensions), dtype=np.float32)

    def _plan(self, items: list[str]) -> list[tuple[int, int]]:
        plan = self._split(items)
        pos = 0
        for start, stop in plan:
            if start != pos or stop <= start:
                raise RuntimeError(f"{type(self).__name__}._split returned non-contiguous ranges {plan}")
            pos = stop
        if pos != len(items):
            raise RuntimeError(f"{type(self).__name__}._split does not cover all {len(items)} texts: {plan}")
        return plan

    def _accept(self, vectors: Any, n: int) -> Matrix:
        """Check one sub-batch's shape (learning the dimensions from the first answer if unknown)."""
        ok = isinstance(vectors, np.ndarray) and vectors.ndim == 2 and vectors.shape[0] == n
        dims = self._dimensions
        if ok and not dims:
            with self._dims_lock:
                if not self._dimensions and vectors.shape[1] > 0:
                    self._dimensions = int(vectors.shape[1])
                dims = self._dimensions
        if not ok or not dims or vectors.shape[1] != dims:
            shape = getattr(vectors, "shape", type(vectors).__name__)
            raise ResponseFormatError(f"provider returned shape {shape}, expected {(n, dims)}",
                                      provider=self.provider, model=self._model)
        out: Matrix = vectors.astype(np.float32, copy=False)
        return out


def _fatal(exc: BaseException) -> bool:
    """Errors that doom every other sub-batch too: stop sending."""
    return isinstance(exc, AuthenticationError) or not isinstance(exc, ProviderError)


class _Job:
    """One batch call: its sub-batch plan, the results as they arrive, and the reassembly.

    The sync (thread pool) and async (tasks) paths both drive it through ``run_sync``/``run_async``.
    """

    def __init__(self, svc: EmbeddingService, items: list[str], plan: list[tuple[int, int]]) -> None:
        self.svc, self.items, self.plan = svc, items, plan
        self.done: dict[int, Embedded] = {}
        self.errors: dict[int, BaseException] = {}
        self.sent = 0
        self.stop: BaseException | None = None
        self._lock = threading.Lock()

    def _begin(self, i: int) -> list[str] | None:
        with self._lock:
            if self.stop is not None:
                self.errors[i] = self.stop
                return None
            self.sent += 1
        start, stop = self.plan[i]
        return self.items[start:stop]

    def _finish(self, i: int, part: Embedded | None, exc: Exception | None) -> None:
        if part is not None:
            try:
                part = Embedded(self.svc._accept(part.vectors, self.plan[i][1] - self.plan[i][0]), part.tokens)
            except ResponseFormatError as e:
                part, exc = None, e
        with self._lock:
            if part is not None:
                self.done[i] = part
                return
            assert exc is not None
            self.errors[i] = exc
            if self.stop is None and _fatal(exc):
                self.stop = exc

    def run_sync(self, i: int) -> None:
        texts = self._begin(i)
        if texts is None:
            return
        try:
            part = self.svc._embed_part(texts)
        except Exception as e:
            self._finish(i, None, e)
        else:
            self._finish(i, part, None)

    async def run_async(self, i: int) -> None:
        texts = self._begin(i)
        if texts is None:
            return
        try:
            part = await self.svc._aembed_part(texts)
        except Exception as e:
            self._finish(i, None, e)
        else:
            self._finish(i, part, None)

    def _usage(self) -> EmbeddingUsage:
        tokens, estimated, texts = 0, False, 0
        for i, part in self.done.items():
            start, stop = self.plan[i]
            texts += stop - start
            if part.tokens is None:
                estimated = True
                tokens += estimate_tokens(self.items[start:stop])
            else:
                tokens += part.tokens
        return EmbeddingUsage(texts, tokens, estimated, self.sent)

    def result(self) -> tuple[Matrix, EmbeddingUsage]:
        usage = self._usage()
        self.svc.last_usage = usage
        if not self.errors:
            parts = [self.done[i].vectors for i in range(len(self.plan))]
            return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)), usage
        order = sorted(self.errors)
        errors = [self.errors[i] for i in order]
        for e in errors:  # a bug or a configuration mistake is raised as is, never folded into a partial
            if not isinstance(e, ProviderError):
                raise e
        first = errors[0]
        if not self.done and all(type(e) is type(first) and str(e) == str(first) for e in errors):
            raise first
        vectors: list[list[float] | None] = [None] * len(self.items)
        for i, part in self.done.items():
            start, _ = self.plan[i]
            for row, vec in enumerate(part.vectors.tolist()):
                vectors[start + row] = vec
        failed = [j for i in order for j in range(*self.plan[i])]
        provider = self.svc.provider
        err = PartialBatchError(failed, errors, vectors, provider=provider, model=self.svc.model())
        err.usage = usage  # type: ignore[attr-defined]
        raise err from first
