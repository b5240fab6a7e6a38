"""``FallbackModel``: the guide's ``providers:`` list with ``fallback_strategy: cascade``.

Models are tried in order; the first answer wins. Which errors move on to the next model
(:func:`falls_back`, replaceable with ``fallback_on=``):

* every :class:`~aixpy.errors.ProviderError` — rate limits (also an exhausted quota), timeouts,
  connection failures, 5xx, authentication failures (that provider's key is wrong or missing
  permissions: another provider has its own), unparseable answers;
* a 404/413 :class:`~aixpy.errors.InvalidRequestError` (that provider does not serve the model, or
  not at that size), and an :class:`~aixpy.errors.InvalidInputError` raised while building the request
  for one provider (it cannot express it, e.g. tools on TGI text generation);

but **not** other :class:`~aixpy.errors.InvalidRequestError` s (400/422: the request itself is
wrong and would fail everywhere, costing money each time), nor
:class:`~aixpy.llm.model.StreamInterruptedError`, nor non-aixpy exceptions (bugs), which propagate.

Streams fall back only while no event has reached the caller — so nothing delivered (a text delta,
a tool-call delta) can ever be delivered twice or contradicted; after that a failure raises
:class:`~aixpy.llm.model.StreamInterruptedError` naming the provider. The call's deadline is
checked before each model; when it has passed the chain stops. When every model failed,
:class:`~aixpy.errors.AllProvidersFailedError` lists each error in order. Tool calls are never
executed by the model layer, so a fallback cannot run one twice.

The cascade itself is :func:`~aixpy.policy.fallback.fallback_plan`, shared with ``FallbackEmbeddings``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import TypeVar

from aixpy.errors import InvalidInputError
from aixpy.llm.model import CallContext, ChatModel, StreamInterruptedError, raise_stream_error
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent
from aixpy.policy import Clock, StepPlan, Whole, acall, astream, call, fallback_plan, provider_failed, stream

__all__ = ["FallbackModel", "falls_back"]

logger = logging.getLogger("aixpy.llm")

R = TypeVar("R")


def falls_back(err: BaseException) -> bool:
    """The default fallback rule (see the module docstring)."""
    if isinstance(err, StreamInterruptedError):
        return False
    return provider_failed(err) or isinstance(err, InvalidInputError)


class FallbackModel(ChatModel):
    """Tries ``models`` in order (cascade). ``provider`` is ``"fallback"``; answers name the provider
    that served them."""

    def __init__(self, models: Sequence[ChatModel], *, fallback_on: Callable[[BaseException], bool] = falls_back,
                 clock: Clock | None = None, timeout: float | None = None) -> None:
        if not models:
            raise InvalidInputError("FallbackModel needs at least one model")
        primary = models[0]
        super().__init__(provider="fallback", model=" > ".join(f"{m.provider}:{m.model}" for m in models),
                         capabilities=primary.capabilities, timeout=timeout, clock=clock or primary.clock)
        self.models = list(models)
        self.fallback_on = fallback_on

    def __repr__(self) -> str:
        return f"FallbackModel({self.models!r})"

    def _plan(self, ctx: CallContext, work: Whole[R]) -> StepPlan[R]:
        return fallback_plan(len(self.models), work, deadline=ctx.deadline, fallback_on=self.fallback_on,
                             name=lambda i: (self.models[i].provider, self.models[i].model), logger=logger)

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return await acall(self._plan(ctx, Whole[ChatResponse]()), lambda i: self.models[i]._achat(req, ctx),
                           self.clock)

    def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        return astream(self._plan(ctx, Whole[None]()), lambda i: self.models[i]._astream(req, ctx), self.clock,
                       lambda err, delivered: raise_stream_error(err, delivered, ctx))

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.models[0]._alist_models(ctx)

    async def aclose(self) -> None:
        for model in self.models:
            await model.aclose()

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return call(self._plan(ctx, Whole[ChatResponse]()), lambda i: self.models[i]._chat(req, ctx), self.clock)

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        return stream(self._plan(ctx, Whole[None]()), lambda i: self.models[i]._stream(req, ctx), self.clock,
                      lambda err, delivered: raise_stream_error(err, delivered, ctx))

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.models[0]._list_models(ctx)

    def close(self) -> None:
        for model in self.models:
            model.close()
