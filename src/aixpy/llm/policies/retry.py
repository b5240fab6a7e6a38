"""``RetryModel``: the one retry loop of a call, with the guide's ``retry:`` semantics.

The decisions — :class:`~aixpy.policy.retry.RetryPolicy` (``max_attempts``, backoff with full jitter,
``retry_on``, ``Retry-After`` against the deadline and ``max_retry_after``) — and the loop itself
(:func:`~aixpy.policy.retry.retry_plan`) live in :mod:`aixpy.policy`, shared with the embeddings'
``RetryingEmbeddings``; this wrapper builds the plan and hands it to a driver.

Streams are retried only while no event has reached the caller; after that a failure raises
:class:`~aixpy.llm.model.StreamInterruptedError`.

Sleeps go through the model's :class:`~aixpy.policy.deadline.Clock`, so tests run instantly.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, Generator
from typing import Any, TypeVar

from aixpy.llm.model import CallContext, ChatModel, raise_stream_error
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent
from aixpy.policy import RETRY_ON, Clock, RetryPolicy, StepPlan, Whole, acall, astream, call, retry_plan, stream

__all__ = ["RETRY_ON", "RetryModel", "RetryPolicy"]

logger = logging.getLogger("aixpy.llm")

R = TypeVar("R")


class RetryModel(ChatModel):
    """Retries ``inner`` by a :class:`RetryPolicy` (or a ``RetryConfig``). The answer names the provider
    that served it; ``CallContext.attempts`` counts every request made.

    ``timeout`` is the default deadline of a whole call, every attempt and wait included; the inner
    model's own ``timeout`` still bounds each request.
    """

    def __init__(self, inner: ChatModel, policy: RetryPolicy | Any = None, *, clock: Clock | None = None,
                 rng: random.Random | None = None, timeout: float | None = None) -> None:
        super().__init__(provider=inner.provider, model=inner.model, capabilities=inner.capabilities,
                         timeout=timeout, clock=clock or inner.clock)
        self.inner = inner
        if policy is None:
            policy = RetryPolicy()
        self.policy = policy if isinstance(policy, RetryPolicy) else RetryPolicy.from_config(policy)
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"RetryModel({self.inner!r}, max_attempts={self.policy.max_attempts})"

    def _plan(self, ctx: CallContext, work: Whole[R]) -> StepPlan[R]:
        return retry_plan(self.policy, work, deadline=ctx.deadline, rng=self._rng, logger=logger,
                          name=lambda: f"{ctx.provider or self.provider}:{ctx.model or self.model}")

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return await acall(self._plan(ctx, Whole[ChatResponse]()), lambda _: self.inner._achat(req, ctx), self.clock)

    def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        return astream(self._plan(ctx, Whole[None]()), lambda _: self.inner._astream(req, ctx), self.clock,
                       lambda err, delivered: raise_stream_error(err, delivered, ctx))

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.inner._alist_models(ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return call(self._plan(ctx, Whole[ChatResponse]()), lambda _: self.inner._chat(req, ctx), self.clock)

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        return stream(self._plan(ctx, Whole[None]()), lambda _: self.inner._stream(req, ctx), self.clock,
                      lambda err, delivered: raise_stream_error(err, delivered, ctx))

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.inner._list_models(ctx)

    def close(self) -> None:
        self.inner.close()
