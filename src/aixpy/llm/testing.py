"""In-memory chat models for testing your own code without a network or a key.

* :class:`TestModel` answers from a script (strings, :class:`ChatResponse` s, exceptions, or event
  lists for streams) and records every request it received.
* :class:`FunctionModel` answers with your function (sync or async), and streams with your generator.

Both are real :class:`~aixpy.llm.model.ChatModel` s: streams follow the same contract (ending with a
``usage`` and a ``finish`` event), answers go through the same post-processing, and they work under
:class:`~aixpy.llm.policies.RetryModel` and :class:`~aixpy.llm.policies.FallbackModel`. They are
registered as provider ``test``: ``aixpy.llm.new("test")``.

Usage is counted in whitespace-separated words (prompt words in, answer words out), so tests can
assert on it deterministically.
"""

from __future__ import annotations

import inspect
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeAlias

from aixpy.errors import InvalidInputError, UserError
from aixpy.llm.model import CallContext, Capabilities, ChatModel, EventNormalizer
from aixpy.llm.registry import ProviderSettings
from aixpy.llm.types import (
    ChatRequest,
    ChatResponse,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolMessage,
    Usage,
    UserMessage,
    fold_stream,
)
from aixpy.policy.deadline import Clock

__all__ = ["ChatFunction", "FunctionModel", "Scripted", "StreamFunction", "TestModel", "create", "response_events"]

Scripted: TypeAlias = ChatResponse | str | BaseException | Sequence[StreamEvent | str | BaseException]
"""One scripted answer: a text, a whole response, an exception to raise, or a stream (events and
text deltas; an exception in the list is raised at that point, after the events before it)."""

ChatFunction: TypeAlias = Callable[[ChatRequest], "ChatResponse | str | Awaitable[ChatResponse | str]"]
StreamFunction: TypeAlias = Callable[[ChatRequest], "Iterable[str | StreamEvent] | AsyncIterable[str | StreamEvent]"]

_ALL = Capabilities(streaming=True, tools=True, json_schema=True, vision=True)
_WORD = re.compile(r"\S+\s*|\s+")


def _words(text: str) -> int:
    return len(text.split())


def _prompt_words(req: ChatRequest) -> int:
    total = 0
    for m in req.messages:
        if isinstance(m, SystemMessage | ToolMessage):
            total += _words(m.content)
        elif isinstance(m, UserMessage):
            total += sum(_words(p.text) for p in m.parts() if isinstance(p, TextPart))
        elif m.content:
            total += _words(m.content)
    return total


def _text_response(text: str, req: ChatRequest, model: str) -> ChatResponse:
    return ChatResponse(text=text, finish_reason="stop", usage=Usage(_prompt_words(req), _words(text)), model=model,
                        raw_finish_reason="stop")


def response_events(resp: ChatResponse) -> list[StreamEvent]:
    """The stream a provider would send for ``resp``: word-sized text deltas, each tool call in two
    argument fragments, usage, finish. Folding it gives ``resp`` back."""
    model, rid = resp.model or None, resp.id
    events = [StreamEvent.text_delta(w, model=model, response_id=rid) for w in _WORD.findall(resp.text)]
    for i, call in enumerate(resp.tool_calls):
        args = call.arguments_json
        half = len(args) // 2
        events.append(StreamEvent.tool_call_delta(i, id=call.id, name=call.name, arguments=args[:half]))
        events.append(StreamEvent.tool_call_delta(i, arguments=args[half:]))
    if resp.usage is not None:
        events.append(StreamEvent.usage_update(resp.usage))
    events.append(StreamEvent.finish(resp.raw_finish_reason or resp.finish_reason, reason=resp.finish_reason))
    return events


def _scripted_events(items: Sequence[StreamEvent | str | BaseException]) -> list[StreamEvent | BaseException]:
    out: list[StreamEvent | BaseException] = [StreamEvent.text_delta(x) if isinstance(x, str) else x for x in items]
    if not any(isinstance(x, BaseException) or x.kind == "finish" for x in out):
        out.append(StreamEvent.finish("stop"))
    return out


def _emit(items: Iterable[StreamEvent | BaseException], norm: EventNormalizer) -> Generator[StreamEvent, None, None]:
    for item in items:
        if isinstance(item, BaseException):
            raise item
        out = norm.feed(item)
        if out is not None:
            yield out
    yield from norm.tail()


class TestModel(ChatModel):
    """A scripted model: each call takes the next scripted answer (then ``default`` for ever; with
    ``default=None`` an exhausted script raises UserError). :attr:`requests` records every request.

    >>> model = TestModel("Hello!", ["Hel", "lo", "!"])
    >>> model.chat("hi").text
    'Hello!'
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *script: Scripted, model: str = "test", provider: str = "test", default: str | None = "ok",
                 capabilities: Capabilities = _ALL, timeout: float | None = None, clock: Clock | None = None) -> None:
        super().__init__(provider=provider, model=model, capabilities=capabilities, timeout=timeout, clock=clock)
        self._script: deque[Scripted] = deque(script)
        self.default = default
        self.requests: list[ChatRequest] = []

    def push(self, *script: Scripted) -> None:
        """Append answers to the script."""
        self._script.extend(script)

    @property
    def last_request(self) -> ChatRequest:
        if not self.requests:
            raise UserError("TestModel has received no request yet")
        return self.requests[-1]

    def _next(self, req: ChatRequest, ctx: CallContext) -> Scripted:
        ctx.deadline.timeout_for(None, provider=self.provider, model=self.model)  # like a real request would
        ctx.serving(self.provider, self.model)
        self.requests.append(req)
        if self._script:
            return self._script.popleft()
        if self.default is None:
            raise UserError("TestModel's script is exhausted")
        return self.default

    def _answer(self, item: Scripted, req: ChatRequest) -> ChatResponse:
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            return _text_response(item, req, self.model)
        if isinstance(item, ChatResponse):
            return replace(item, model=item.model or self.model)
        events = _scripted_events(item)
        return fold_stream(list(_emit(events, EventNormalizer(self.provider, self.model))), provider=self.provider)

    def _events(self, item: Scripted, req: ChatRequest) -> list[StreamEvent | BaseException]:
        if isinstance(item, BaseException):
            return [item]
        if isinstance(item, str | ChatResponse):
            return list(response_events(self._answer(item, req)))
        return _scripted_events(item)

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return self._answer(self._next(req, ctx), req)

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        return self._chat(req, ctx)

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        items = self._events(self._next(req, ctx), req)
        yield from _emit(items, EventNormalizer(self.provider, self.model))

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        for event in self._stream(req, ctx):
            yield event

    def _list_models(self, ctx: CallContext) -> list[str]:
        return [self.model]

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return [self.model]


class FunctionModel(ChatModel):
    """A model whose answers come from ``fn(request)`` (a text or a :class:`ChatResponse`, sync or
    async) and whose streams come from ``stream_fn(request)`` (an iterable or async iterable of text
    deltas and events; without it, streams are made from ``fn``'s answer). Async functions work with
    ``achat``/``astream`` only."""

    def __init__(self, fn: ChatFunction | None = None, *, stream_fn: StreamFunction | None = None,
                 model: str = "function", provider: str = "test", capabilities: Capabilities = _ALL,
                 timeout: float | None = None, clock: Clock | None = None) -> None:
        if fn is None and stream_fn is None:
            raise InvalidInputError("FunctionModel needs fn, stream_fn or both")
        super().__init__(provider=provider, model=model, capabilities=capabilities, timeout=timeout, clock=clock)
        self.fn = fn
        self.stream_fn = stream_fn
        self.requests: list[ChatRequest] = []

    def _coerce(self, value: Any, req: ChatRequest) -> ChatResponse:
        if isinstance(value, str):
            return _text_response(value, req, self.model)
        if isinstance(value, ChatResponse):
            return replace(value, model=value.model or self.model)
        raise InvalidInputError(f"FunctionModel's function returned a {type(value).__name__}; return a str or a "
                                "ChatResponse")

    def _start(self, req: ChatRequest, ctx: CallContext) -> None:
        ctx.deadline.timeout_for(None, provider=self.provider, model=self.model)
        ctx.serving(self.provider, self.model)
        self.requests.append(req)

    def _call_sync(self, req: ChatRequest) -> ChatResponse:
        assert self.fn is not None
        value = self.fn(req)
        if inspect.isawaitable(value):
            close = getattr(value, "close", None)
            if close is not None:
                close()
            raise UserError("FunctionModel's function is async: use achat()/astream()")
        return self._coerce(value, req)

    async def _call_async(self, req: ChatRequest) -> ChatResponse:
        assert self.fn is not None
        value = self.fn(req)
        if inspect.isawaitable(value):
            value = await value
        return self._coerce(value, req)

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        if self.fn is None:
            events = list(self._stream(req, ctx))
            return fold_stream(events, provider=self.provider)
        self._start(req, ctx)
        return self._call_sync(req)

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        if self.fn is None:
            events = [e async for e in self._astream(req, ctx)]
            return fold_stream(events, provider=self.provider)
        self._start(req, ctx)
        return await self._call_async(req)

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        self._start(req, ctx)
        norm = EventNormalizer(self.provider, self.model)
        if self.stream_fn is None:
            yield from _emit(response_events(self._call_sync(req)), norm)
            return
        items = self.stream_fn(req)
        if not isinstance(items, Iterable):
            raise UserError("FunctionModel's stream function is async: use astream()")
        for item in items:
            yield from _feed(item, norm)
        yield from _tail(norm)

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        self._start(req, ctx)
        norm = EventNormalizer(self.provider, self.model)
        if self.stream_fn is None:
            for event in _emit(response_events(await self._call_async(req)), norm):
                yield event
            return
        items = self.stream_fn(req)
        if isinstance(items, AsyncIterable):
            async for item in items:
                for event in _feed(item, norm):
                    yield event
        else:
            for item in items:
                for event in _feed(item, norm):
                    yield event
        for event in _tail(norm):
            yield event


def _feed(item: str | StreamEvent, norm: EventNormalizer) -> list[StreamEvent]:
    event = StreamEvent.text_delta(item) if isinstance(item, str) else item
    out = norm.feed(event)
    return [out] if out is not None else []


def _tail(norm: EventNormalizer) -> tuple[StreamEvent, StreamEvent]:
    if not norm.finished:  # the user's iterator ended normally: that is a finish
        norm.feed(StreamEvent.finish("stop"))
    return norm.tail()


def create(settings: ProviderSettings) -> TestModel:
    """Factory of the ``test`` provider."""
    return TestModel(model=settings.model or "test", timeout=settings.timeout, clock=settings.clock)
