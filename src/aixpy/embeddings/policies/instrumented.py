"""``InstrumentedEmbeddings``: one :class:`~aixpy.telemetry.EmbeddingEvent` per call of the service it wraps.

A policy like the others (an :class:`~aixpy.embeddings.policies.EmbeddingWrapper`), so it nests in any
order: outermost, an event covers what the caller asked (cache hits included); right around a
provider, only what was really sent. Tokens come from the call's
:class:`~aixpy.embeddings.base.EmbeddingUsage` (a :class:`~aixpy.errors.PartialBatchError` carries what
its successful sub-batches spent), the cost from the same price table as
:class:`~aixpy.embeddings.policies.CostTracker`. It attaches the telemetry bridge to the HTTP clients
of the providers it wraps. With nobody listening, calls go straight through and no event is built.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from aixpy.embeddings.base import EmbeddingService, EmbeddingUsage
from aixpy.embeddings.models import price_per_1m
from aixpy.embeddings.policies._attempts import usage_of
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.embeddings.policies.cost import CostLine
from aixpy.telemetry import EmbeddingEvent, Handler, Timer, attach_http, emit, error_name, listening

__all__ = ["InstrumentedEmbeddings"]


class InstrumentedEmbeddings(EmbeddingWrapper):
    """Emits an :class:`~aixpy.telemetry.EmbeddingEvent` for each non-empty embedding call of ``inner``.

    Attributes:
        on_event: this wrapper's own handler (global subscribers get the events too).
    """

    def __init__(self, inner: EmbeddingService, *, on_event: Handler | None = None, **kw: Any) -> None:
        super().__init__(inner, **kw)
        self.on_event = on_event
        attach_http(inner, on_event)

    def _run(self, texts: list[str]) -> Result:
        if not listening(self.on_event):
            return self.inner.embed_with_usage(texts)
        with _Embed(self, len(texts)) as call:
            return call.answered(self.inner.embed_with_usage(texts))

    async def _arun(self, texts: list[str]) -> Result:
        if not listening(self.on_event):
            return await self.inner.aembed_with_usage(texts)
        with _Embed(self, len(texts)) as call:
            return call.answered(await self.inner.aembed_with_usage(texts))


class _Embed:
    """One instrumented call; emits its event on the way out (a failure by type, then re-raised)."""

    __slots__ = ("_n", "_owner", "_timer", "dims", "usage")

    def __init__(self, owner: InstrumentedEmbeddings, n: int) -> None:
        self._owner, self._n, self._timer = owner, n, Timer()
        self.usage: EmbeddingUsage | None = None
        self.dims: int | None = None

    def answered(self, result: Result) -> Result:
        vectors, self.usage = result
        self.dims = int(vectors.shape[1]) if vectors.ndim == 2 else None
        return result

    def __enter__(self) -> _Embed:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        duration = self._timer.elapsed()
        owner = self._owner
        usage = self.usage if e is None else usage_of(e)
        provider, model = owner.provider, owner.model()
        cost = None
        if usage is not None:
            cost = CostLine(provider, model, tokens=usage.tokens, price_per_1m=price_per_1m(provider, model)).usd
        emit(EmbeddingEvent(
            timestamp=self._timer.timestamp, duration=duration, error=None if e is None else error_name(e),
            provider=provider, model=model, texts=self._n,
            tokens=None if usage is None else usage.tokens, tokens_estimated=usage is not None and usage.estimated,
            requests=0 if usage is None else usage.requests, dimensions=self.dims, cost_usd=cost,
        ), owner.on_event)
