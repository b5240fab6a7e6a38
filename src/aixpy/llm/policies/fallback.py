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
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Generator, Sequence

from aixpy.errors import AllProvidersFailedError, InvalidInputError, InvalidRequestError, ProviderError
from aixpy.llm.deadline import Clock, DeadlineExceededError
from aixpy.llm.model import CallContext, ChatModel, StreamInterruptedError, raise_stream_error
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent

__all__ = ["FallbackModel", "falls_back"]

logger = logging.getLogger("aixpy.llm")


def falls_back(err: BaseException) -> bool:
    """The default fallback rule (see the module docstring)."""
    if isinstance(err, StreamInterruptedError):
        return False
    if isinstance(err, InvalidRequestError):
        return err.status_code in (404, 413)
    return isinstance(err, ProviderError | InvalidInputError)


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

    def _expired(self, index: int, ctx: CallContext, errors: list[BaseException]) -> bool:
        if index == 0 or not ctx.deadline.expired:
            return False
        m = self.models[index]
        errors.append(DeadlineExceededError(f"the call's deadline passed before {m.provider}:{m.model} was tried",
                                            provider=m.provider, model=m.model))
        return True

    def _failed(self, err: Exception, index: int, errors: list[BaseException]) -> None:
        if not self.fallback_on(err):
            raise err
        errors.append(err)
        if index + 1 < len(self.models):
            nxt = self.models[index + 1]
            logger.info("%s:%s failed (%s); falling back to %s:%s", self.models[index].provider,
                        self.models[index].model, type(err).__name__, nxt.provider, nxt.model)

    @staticmethod
    def _all_failed(errors: list[BaseException]) -> AllProvidersFailedError:
        return AllProvidersFailedError(errors)

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        errors: list[BaseException] = []
        for i, model in enumerate(self.models):
            if self._expired(i, ctx, errors):
                break
            try:
                return await model._achat(req, ctx)
            except Exception as e:
                self._failed(e, i, errors)
        raise self._all_failed(errors) from errors[-1]

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        errors: list[BaseException] = []
        for i, model in enumerate(self.models):
            if self._expired(i, ctx, errors):
                break
            delivered = 0
            events = model._astream(req, ctx)
            try:
                async for event in events:
                    delivered += 1
                    yield event
                return
            except Exception as e:
                if delivered:
                    if not isinstance(e, ProviderError):
                        raise
                    raise_stream_error(e, delivered, ctx)
                self._failed(e, i, errors)
            finally:
                await events.aclose()
        raise self._all_failed(errors) from errors[-1]

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.models[0]._alist_models(ctx)

    async def aclose(self) -> None:
        for model in self.models:
            await model.aclose()

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        errors: list[BaseException] = []
        for i, model in enumerate(self.models):
            if self._expired(i, ctx, errors):
                break
            try:
                return model._chat(req, ctx)
            except Exception as e:
                self._failed(e, i, errors)
        raise self._all_failed(errors) from errors[-1]

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        errors: list[BaseException] = []
        for i, model in enumerate(self.models):
            if self._expired(i, ctx, errors):
                break
            delivered = 0
            events = model._stream(req, ctx)
            try:
                for event in events:
                    delivered += 1
                    yield event
                return
            except Exception as e:
                if delivered:
                    if not isinstance(e, ProviderError):
                        raise
                    raise_stream_error(e, delivered, ctx)
                self._failed(e, i, errors)
            finally:
                events.close()
        raise self._all_failed(errors) from errors[-1]

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.models[0]._list_models(ctx)

    def close(self) -> None:
        for model in self.models:
            model.close()
