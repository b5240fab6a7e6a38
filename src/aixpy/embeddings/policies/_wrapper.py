"""The base of every embedding policy: an :class:`EmbeddingService` wrapping another one.

A wrapper reports the inner service's ``provider``, ``model()`` and ``dimensions()`` and overrides
``embed_with_usage`` / ``aembed_with_usage`` — the methods every other public method (``embed``,
``embed_batch``, ``embed_array`` and their async twins) goes through — so wrappers nest in any order
and the :class:`~aixpy.embeddings.base.EmbeddingUsage` of what was really sent flows up the stack.
Input is checked by the outermost wrapper; every result is checked to be ``(n, dimensions)``.

The per-call deadline
    :func:`deadline` bounds every embedding call made inside a ``with`` block (a contextvar: it
    follows ``await`` and ``asyncio.to_thread``). Rate-limit waits and retry backoffs never sleep
    past it; they raise :class:`~aixpy.policy.deadline.DeadlineExceededError` at once instead. A
    wrapper built with ``timeout=`` opens such a deadline for each of its calls (the tighter one wins).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np

from aixpy.embeddings.base import EmbeddingService, EmbeddingUsage, Matrix
from aixpy.errors import ResponseFormatError
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock, Deadline

__all__ = ["EmbeddingWrapper", "current_deadline", "deadline", "find_wrapper", "normalize_flag"]

_DEADLINE: ContextVar[Deadline | None] = ContextVar("aixpy_embeddings_deadline", default=None)
W = TypeVar("W", bound=EmbeddingService)
Result = tuple[Matrix, EmbeddingUsage]


@contextlib.contextmanager
def deadline(seconds: float | None, *, clock: Clock = SYSTEM_CLOCK) -> Iterator[Deadline]:
    """Bound every embedding call inside the block to ``seconds`` from now (nested blocks: the tighter wins).

    >>> with deadline(2.0):                       # doctest: +SKIP
    ...     svc.embed_batch(texts)                # rate-limit waits and retries end by then
    """
    current = _DEADLINE.get()
    new = Deadline.after(seconds, clock) if current is None else current.tighter(seconds)
    token = _DEADLINE.set(new)
    try:
        yield new
    finally:
        _DEADLINE.reset(token)


def current_deadline(clock: Clock = SYSTEM_CLOCK) -> Deadline:
    """The deadline of the running call (``Deadline(None)``: none)."""
    return _DEADLINE.get() or Deadline(None, clock)


def normalize_flag(service: EmbeddingService) -> bool | None:
    """A provider's ``normalize`` setting (its attribute, or its config's), ``None`` when it has none."""
    if isinstance(service, EmbeddingWrapper):
        return service.normalize
    for owner in (service, getattr(service, "config", None)):
        value = getattr(owner, "normalize", None)
        if isinstance(value, bool):
            return value
    return None


class EmbeddingWrapper(EmbeddingService):
    """An :class:`EmbeddingService` that delegates to ``inner``; used as is, it only adds ``timeout``.

    Subclasses override ``_run`` / ``_arun``: validated, non-empty texts in; vectors and usage out.

    Attributes:
        inner: the wrapped service.
        clock: where waits sleep and time is read (the inner wrapper's clock by default).
        timeout: seconds each call may take, waits included (``None``: only the caller's :func:`deadline`).
    """

    def __init__(self, inner: EmbeddingService, *, clock: Clock | None = None, timeout: float | None = None) -> None:
        super().__init__(model=inner.model(), dimensions=None)
        self.inner = inner
        self.provider = inner.provider
        self.batch_size = inner.batch_size
        self.clock: Clock = clock or getattr(inner, "clock", None) or SYSTEM_CLOCK
        self.timeout = timeout

    def dimensions(self) -> int:
        return self.inner.dimensions()

    async def adimensions(self) -> int:
        return await self.inner.adimensions()

    def known_dimensions(self) -> int | None:
        return self.inner.known_dimensions()

    @property
    def normalize(self) -> bool | None:
        """Whether the provider was asked to L2-normalise (TEI/HF ``normalize:``), when it says (cache key)."""
        return normalize_flag(self.inner)

    # ------------------------------------------------------------------ public batch methods

    def embed_with_usage(self, texts: Sequence[str]) -> Result:
        items = self._check(texts)
        if not items:
            return self._empty(), EmbeddingUsage(0, 0)
        with self._scope():
            out, usage = self._run(items)
        self.last_usage = usage
        return self._shape(out, len(items)), usage

    async def aembed_with_usage(self, texts: Sequence[str]) -> Result:
        items = self._check(texts)
        if not items:
            return self._empty(), EmbeddingUsage(0, 0)
        with self._scope():
            out, usage = await self._arun(items)
        self.last_usage = usage
        return self._shape(out, len(items)), usage

    def close(self) -> None:
        self.inner.close()
        super().close()

    async def aclose(self) -> None:
        await self.inner.aclose()
        self._closed = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    # ------------------------------------------------------------------ for subclasses

    def _run(self, texts: list[str]) -> Result:
        return self.inner.embed_with_usage(texts)

    async def _arun(self, texts: list[str]) -> Result:
        return await self.inner.aembed_with_usage(texts)

    def _deadline(self) -> Deadline:
        return current_deadline(self.clock)

    def _scope(self) -> contextlib.AbstractContextManager[Any]:
        if self.timeout is None:
            return contextlib.nullcontext()
        return deadline(self.timeout, clock=self.clock)

    def _empty(self) -> Matrix:
        return np.empty((0, self.known_dimensions() or 0), dtype=np.float32)

    def _shape(self, out: Matrix, n: int) -> Matrix:
        dims = self.known_dimensions()
        if out.ndim != 2 or out.shape[0] != n or (dims is not None and out.shape[1] != dims):
            raise ResponseFormatError(f"embedding stack returned shape {out.shape}, expected {(n, dims)}",
                                      provider=self.provider, model=self._model)
        return out if out.dtype == np.float32 else out.astype(np.float32)


def find_wrapper(service: EmbeddingService, kind: type[W]) -> W | None:
    """The first ``kind`` in a stack of wrappers (fallback chains included), outermost first, or ``None``.

    >>> find_wrapper(svc, CachedEmbeddings).stats()      # doctest: +SKIP
    """
    todo: list[EmbeddingService] = [service]
    while todo:
        svc = todo.pop(0)
        if isinstance(svc, kind):
            return svc
        todo.extend(getattr(svc, "services", None) or ([svc.inner] if isinstance(svc, EmbeddingWrapper) else []))
    return None
