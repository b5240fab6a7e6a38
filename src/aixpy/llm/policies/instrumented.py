"""``InstrumentedModel``: one :class:`~aixpy.telemetry.LLMEvent` per call of the model it wraps.

It emits to its own ``on_event`` handler and to every :func:`aixpy.telemetry.subscribe` r. Where it
sits decides what an event is: outside a :class:`~aixpy.llm.policies.RetryModel` one event covers the
whole call (``attempts`` counts every request, ``fallbacks`` says how far down the chain the answer
came from); inside it, one event per attempt. It also attaches the telemetry bridge to the HTTP
clients of the providers it wraps, so their requests arrive as :class:`~aixpy.telemetry.HttpEvent` s.

Usage and cost come from the answer (a stream's ``usage`` event), priced by the same
:func:`~aixpy.llm.model.finalize` every answer goes through. With nobody listening, calls go straight
to the wrapped model: nothing is measured and no event is built.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from types import TracebackType

from aixpy.llm.model import CallContext, ChatModel, finalize
from aixpy.llm.policies._content import content_of
from aixpy.llm.policies.fallback import FallbackModel
from aixpy.llm.types import ChatRequest, ChatResponse, StreamAccumulator, StreamEvent, Usage
from aixpy.telemetry import Handler, LLMEvent, Timer, attach_http, capturing_content, emit, error_name, listening

__all__ = ["InstrumentedModel"]


class InstrumentedModel(ChatModel):
    """Emits an :class:`~aixpy.telemetry.LLMEvent` per ``chat``/``stream``/``list_models`` of ``inner``.

    Attributes:
        inner: the wrapped model (a provider, or a retry/fallback stack).
        on_event: this wrapper's own handler (global subscribers get the events too).
    """

    def __init__(self, inner: ChatModel, *, on_event: Handler | None = None) -> None:
        super().__init__(provider=inner.provider, model=inner.model, capabilities=inner.capabilities,
                         timeout=inner.timeout, clock=inner.clock)
        self.inner = inner
        self.on_event = on_event
        attach_http(inner, on_event)

    def __repr__(self) -> str:
        return f"InstrumentedModel({self.inner!r})"

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        if not listening(self.on_event):
            return await self.inner._achat(req, ctx)
        with _Call(self, ctx, "chat", req) as call:
            return call.answered(await self.inner._achat(req, ctx))

    def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        events = self.inner._astream(req, ctx)
        return self._atraced(events, ctx, req) if listening(self.on_event) else events

    async def _atraced(self, events: AsyncGenerator[StreamEvent, None], ctx: CallContext,
                       req: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        with _Call(self, ctx, "stream", req) as call:
            async with aclosing(events):
                async for event in events:
                    call.saw(event)
                    yield event

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        if not listening(self.on_event):
            return await self.inner._alist_models(ctx)
        with _Call(self, ctx, "list_models"):
            return await self.inner._alist_models(ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        if not listening(self.on_event):
            return self.inner._chat(req, ctx)
        with _Call(self, ctx, "chat", req) as call:
            return call.answered(self.inner._chat(req, ctx))

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        events = self.inner._stream(req, ctx)
        return self._traced(events, ctx, req) if listening(self.on_event) else events

    def _traced(self, events: Generator[StreamEvent, None, None], ctx: CallContext,
                req: ChatRequest) -> Generator[StreamEvent, None, None]:
        with _Call(self, ctx, "stream", req) as call, closing(events):
            for event in events:
                call.saw(event)
                yield event

    def _list_models(self, ctx: CallContext) -> list[str]:
        if not listening(self.on_event):
            return self.inner._list_models(ctx)
        with _Call(self, ctx, "list_models"):
            return self.inner._list_models(ctx)

    def close(self) -> None:
        self.inner.close()


class _Call:
    """What one instrumented call has seen; a context manager that emits the event on the way out
    (an exception is recorded by type and re-raised; a stream closed early is ``completed=False``)."""

    __slots__ = ("_acc", "_attempts0", "_ctx", "_op", "_owner", "_req", "_timer", "answer", "events", "finish",
                 "model", "ttft", "usage")

    def __init__(self, owner: InstrumentedModel, ctx: CallContext, operation: str,
                 req: ChatRequest | None = None) -> None:
        self._owner, self._ctx, self._op = owner, ctx, operation
        self._req = req if req is not None and capturing_content() else None  # content only when asked for
        self._acc = StreamAccumulator() if self._req is not None and operation == "stream" else None
        self.answer: ChatResponse | None = None
        self._attempts0 = ctx.attempts
        self._timer = Timer()
        self.events = 0
        self.ttft: float | None = None
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.model = ""

    def answered(self, resp: ChatResponse) -> ChatResponse:
        self.usage, self.finish, self.model = resp.usage, resp.finish_reason, resp.model
        self.answer = resp
        return resp

    def saw(self, event: StreamEvent) -> None:
        self.events += 1
        if self._acc is not None:
            self._acc.add(event)
        kind = event.kind
        if kind == "usage":
            self.usage = event.usage
        elif kind == "finish":
            self.finish = event.finish_reason
        elif self.ttft is None:
            self.ttft = self._timer.elapsed()
        if event.model and not self.model:
            self.model = event.model

    def __enter__(self) -> _Call:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        duration = self._timer.elapsed()
        ctx, owner, usage = self._ctx, self._owner, self.usage
        cost = None
        if usage is not None:  # priced exactly as the answer will be, on a throwaway (the answer is not touched)
            cost = finalize(ChatResponse(usage=usage, model=self.model), ctx, self._timer.started).cost_usd
        closed_early = isinstance(e, GeneratorExit)
        content = None
        if self._req is not None:
            answer = self.answer if self._acc is None else self._acc.result()
            content = content_of(self._req, answer if e is None else None)
        emit(LLMEvent(
            timestamp=self._timer.timestamp, duration=duration,
            error=None if e is None or closed_early else error_name(e),
            provider=ctx.provider or owner.inner.provider, model=self.model or ctx.model or owner.model,
            operation=self._op, finish_reason=self.finish, time_to_first_token=self.ttft,
            input_tokens=None if usage is None else usage.input_tokens,
            output_tokens=None if usage is None else usage.output_tokens,
            cached_input_tokens=None if usage is None else usage.cached_input_tokens,
            cache_creation_tokens=None if usage is None else usage.cache_creation_tokens,
            reasoning_tokens=None if usage is None else usage.reasoning_tokens,
            cost_usd=cost, attempts=ctx.attempts - self._attempts0, fallbacks=_chain_position(owner.inner, ctx),
            events=self.events, completed=not closed_early, cached=ctx.cached, content=content,
        ), owner.on_event)


def _chain_position(model: ChatModel, ctx: CallContext) -> int:
    """How far down the first fallback chain of ``model``'s stack the serving model is (0: the primary)."""
    m: object = model
    for _ in range(16):
        if isinstance(m, FallbackModel):
            for i, sub in enumerate(m.models):
                if sub.provider == ctx.provider and sub.model == ctx.model:
                    return i
            return 0
        m = getattr(m, "inner", None)
        if m is None:
            break
    return 0
