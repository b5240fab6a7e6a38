"""``ChatModel``: the one interface of every LLM provider, wrapper and test double.

Public calls — ``achat``/``astream``/``alist_models`` and their sync twins ``chat``/``stream``/
``list_models`` — all do the same three things: turn the prompt into a
:class:`~aixpy.llm.types.ChatRequest` (:func:`build_request`), open one per-call
:class:`~aixpy.policy.deadline.Deadline`, and post-process the answer in **one** place
(:func:`finalize`: provider, model, latency, cost). A streamed answer is folded with the same
:class:`~aixpy.llm.types.StreamAccumulator` codecs use for non-streamed bodies and then goes through
the same :func:`finalize`, so both paths give equal :class:`~aixpy.llm.types.ChatResponse` s.

Subclasses implement the *core*: ``_achat`` and ``_astream`` (async, required) and, for native sync
I/O, ``_chat`` and ``_stream``. Without the sync pair, sync calls run the async core on one
long-lived background event loop (never a new loop per call). Built-in providers do sync I/O natively
through the sync half of their :class:`~aixpy.http.HttpClient`; the request building, parsing and
stream normalisation they share does no I/O.

Stream contract (every ``_stream``/``_astream`` and therefore every public stream)
    Text and tool-call deltas are yielded as they arrive; the stream then **always ends with exactly
    one ``usage`` event and one ``finish`` event**, in that order (:class:`EventNormalizer`). The usage
    event carries ``usage=None`` when the provider reported none. A stream that ends without the
    provider's finish signal was cut short: :class:`~aixpy.errors.ProviderConnectionError`.

Mid-stream failures
    Once an event has been delivered to the caller, a failure is never retried nor sent to another
    provider (that would repeat or contradict what the caller already has); it raises
    :class:`StreamInterruptedError`, naming the provider and how many events were delivered.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, NoReturn, Self, TypeAlias, TypedDict, Unpack, cast

from aixpy.errors import InvalidInputError, ProviderConnectionError, ProviderError, UserError
from aixpy.llm import _bridge
from aixpy.llm.pricing import cost_of
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    Message,
    ResponseFormat,
    StreamAccumulator,
    StreamEvent,
    SystemMessage,
    ToolChoice,
    ToolMessage,
    ToolSpec,
    UserMessage,
    tool_from_function,
)
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock, Deadline

__all__ = [
    "AsyncChatStream",
    "CallContext",
    "Capabilities",
    "ChatModel",
    "ChatOptions",
    "ChatStream",
    "EventNormalizer",
    "Prompt",
    "StreamInterruptedError",
    "build_request",
    "finalize",
]

Prompt: TypeAlias = str | Sequence[Message | Mapping[str, Any]] | ChatRequest
"""A plain user text, a list of messages (dataclasses or ``{"role", "content"}`` dicts), or a request."""


class ChatOptions(TypedDict, total=False):
    """Keyword options of ``chat``/``achat``/``stream``/``astream`` (see :class:`ChatRequest`)."""

    system: str
    temperature: float
    max_tokens: int
    top_p: float
    stop: str | list[str]
    tools: Sequence[ToolSpec | Callable[..., Any]]
    tool_choice: ToolChoice
    response_format: ResponseFormat | Literal["text", "json_object"] | dict[str, Any] | type
    seed: int
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model can be asked for (coarse: per provider; some models of a provider may not)."""

    streaming: bool = True
    tools: bool = True
    json_schema: bool = True
    vision: bool = False


@dataclass(slots=True)
class CallContext:
    """State of one public call, shared by every layer below it.

    ``provider``/``model`` name whoever served (or last tried to serve) the call; a concrete model
    sets them with :meth:`serving` before each attempt, so after a fallback they name the provider
    that answered. ``attempts`` counts requests actually made. ``cached`` is set by a response cache
    that answered the call (no request made; the answer costs nothing).
    """

    deadline: Deadline
    provider: str = ""
    model: str = ""
    attempts: int = 0
    cached: bool = False

    def serving(self, provider: str, model: str) -> None:
        self.provider, self.model = provider, model
        self.attempts += 1


class StreamInterruptedError(ProviderError):
    """A stream failed after events were delivered; it was not retried nor re-sent elsewhere.

    ``events_delivered`` says how many events the caller received; the original error is the
    ``__cause__``. Not retryable: repeating the call would repeat what was already delivered.
    """

    def __init__(self, cause: BaseException, *, delivered: int, provider: str | None, model: str | None) -> None:
        self.events_delivered = delivered
        status = getattr(cause, "status_code", None)
        super().__init__(
            f"stream broke mid-way after {delivered} events had been delivered; not retried and not sent to "
            f"another provider, since that would repeat what was delivered: {type(cause).__name__}: {cause}",
            provider=provider, model=model, status_code=status, retryable=False)


# --------------------------------------------------------------------------- request building

_OPTION_NAMES = frozenset(ChatOptions.__annotations__)
_ROLES: dict[str, type[Any]] = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage,
                                "tool": ToolMessage}


def _message(m: Message | Mapping[str, Any], i: int) -> Message:
    if isinstance(m, SystemMessage | UserMessage | AssistantMessage | ToolMessage):
        return m
    if isinstance(m, Mapping):
        role = m.get("role")
        cls = _ROLES.get(role) if isinstance(role, str) else None
        if cls is None:
            raise InvalidInputError(f"messages[{i}] has role {role!r}; use system, user, assistant or tool")
        fields = {k: v for k, v in m.items() if k != "role"}
        try:
            msg: Message = cls(**fields)
        except TypeError as e:
            raise InvalidInputError(f"messages[{i}]: {e}") from None
        return msg
    raise InvalidInputError(f"messages[{i}] is a {type(m).__name__}, not a message")


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None or isinstance(value, ResponseFormat):
        return value
    if value == "text":
        return ResponseFormat()
    if value == "json_object":
        return ResponseFormat.json_object()
    if isinstance(value, dict):
        return ResponseFormat.json_schema(str(value.get("title") or "response"), value)
    if isinstance(value, type) and hasattr(value, "model_json_schema"):
        return ResponseFormat.from_model(value)
    raise InvalidInputError("response_format must be a ResponseFormat, 'text', 'json_object', a JSON schema dict "
                            f"or a pydantic model class, not {value!r}")


def build_request(prompt: Prompt, model: str, **options: Any) -> ChatRequest:
    """The :class:`ChatRequest` for a prompt and keyword options (``system=`` is prepended).

    Tools may be :class:`ToolSpec` s or typed Python functions (:func:`tool_from_function`).
    Raises InvalidInputError for unknown options or malformed messages.
    """
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise InvalidInputError(f"unknown chat option(s) {sorted(unknown)}; known: {sorted(_OPTION_NAMES)}")
    system = options.pop("system", None)
    if "tools" in options:
        options["tools"] = [t if isinstance(t, ToolSpec) else tool_from_function(t) for t in options["tools"] or ()]
    if "response_format" in options:
        options["response_format"] = _response_format(options["response_format"])
    if isinstance(prompt, ChatRequest):
        req = replace(prompt, **options) if options else prompt
        if system is not None:
            req = replace(req, messages=[SystemMessage(system), *req.messages])
        return req
    if isinstance(prompt, str):
        messages: list[Message] = [UserMessage(prompt)]
    elif isinstance(prompt, Sequence):
        messages = [_message(m, i) for i, m in enumerate(cast(Sequence[Message | Mapping[str, Any]], prompt))]
    else:
        raise InvalidInputError(f"prompt must be a string, a list of messages or a ChatRequest, not "
                                f"{type(prompt).__name__}")
    if system is not None:
        messages.insert(0, SystemMessage(system))
    return ChatRequest(model=model, messages=messages, **options)


# --------------------------------------------------------------------------- post-processing


def finalize(resp: ChatResponse, ctx: CallContext, started: float) -> ChatResponse:
    """The one post-processing step of every answer, streamed or not: provider, model, latency, cost.

    The cost is priced on the model the provider reports (``gpt-4o-2024-05-13`` has its own price),
    else on the configured one; ``None`` when the price or the usage is unknown. An answer from a
    response cache (``ctx.cached``) is marked ``cached`` and costs 0.
    """
    if ctx.provider:
        resp.provider = ctx.provider
    if not resp.model:
        resp.model = ctx.model
    resp.latency_ms = (time.perf_counter() - started) * 1000.0
    if ctx.cached:
        resp.cached, resp.cost_usd = True, 0.0
        return resp
    cost = cost_of(resp.model, resp.usage, provider=resp.provider) if resp.model else None
    if (cost is None or not cost.known) and ctx.model and ctx.model != resp.model:
        cost = cost_of(ctx.model, resp.usage, provider=resp.provider)
    resp.cost_usd = cost.usd if cost is not None else None
    return resp


class EventNormalizer:
    """Makes a provider's event stream follow the stream contract (see the module docstring).

    :meth:`feed` returns text and tool-call events at once and keeps usage and finish events;
    :meth:`tail` returns the final ``usage`` then ``finish`` event, or raises ProviderConnectionError
    when no finish event came (the stream was cut).
    """

    __slots__ = ("_finish", "_usage", "model", "provider")

    def __init__(self, provider: str, model: str | None = None) -> None:
        self.provider, self.model = provider, model
        self._usage: StreamEvent | None = None
        self._finish: StreamEvent | None = None

    def feed(self, event: StreamEvent) -> StreamEvent | None:
        kind = event.kind
        if kind == "usage":
            self._usage = event
            return None
        if kind == "finish":
            self._finish = event
            return None
        return event

    @property
    def finished(self) -> bool:
        return self._finish is not None

    def tail(self) -> tuple[StreamEvent, StreamEvent]:
        finish = self._finish
        if finish is None:
            raise ProviderConnectionError("the stream ended before the provider said it was finished (cut short)",
                                          provider=self.provider, model=self.model)
        usage = self._usage or StreamEvent("usage", model=finish.model, response_id=finish.response_id)
        return usage, finish


def _interrupted(err: ProviderError, delivered: int, ctx: CallContext) -> ProviderError:
    if delivered == 0 or isinstance(err, StreamInterruptedError):
        return err
    return StreamInterruptedError(err, delivered=delivered, provider=err.provider or ctx.provider or None,
                                  model=err.model or ctx.model or None)


def raise_stream_error(err: ProviderError, delivered: int, ctx: CallContext) -> NoReturn:
    """Raise ``err`` of a stream; once events were delivered, as a StreamInterruptedError chained to it
    (such a stream can be neither retried nor failed over: the caller already has part of it)."""
    wrapped = _interrupted(err, delivered, ctx)
    if wrapped is err:
        raise err
    raise wrapped from err


# --------------------------------------------------------------------------- streams


class _StreamBase:
    def __init__(self, ctx: CallContext, started: float) -> None:
        self._ctx = ctx
        self._started = started
        self._acc = StreamAccumulator()
        self._delivered = 0
        self._done = False
        self._response: ChatResponse | None = None

    @property
    def events_delivered(self) -> int:
        """How many events the caller has received so far."""
        return self._delivered

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._acc.text

    @property
    def response(self) -> ChatResponse:
        """The folded, post-processed answer; available once the stream was read to its end."""
        if self._response is None:
            raise UserError("the stream has not been read to its end yet; iterate it or call get_response()")
        return self._response

    def _complete(self) -> None:
        self._acc.provider = self._ctx.provider
        self._response = finalize(self._acc.result(), self._ctx, self._started)


class ChatStream(_StreamBase):
    """A streamed answer (sync): iterate it for :class:`StreamEvent` s, then read :attr:`response`.

    Use it as a context manager so the connection is released even when you stop early::

        with model.stream("Tell me a story") as s:
            for event in s:
                print(event.text, end="")
        print(s.response.usage, s.response.cost_usd)
    """

    def __init__(self, events: Generator[StreamEvent, None, None], ctx: CallContext, started: float) -> None:
        super().__init__(ctx, started)
        self._events = events

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        if self._done:
            raise StopIteration
        try:
            event = next(self._events)
        except StopIteration:
            self._done = True
            self._complete()
            raise
        except ProviderError as e:
            self.close()
            raise_stream_error(e, self._delivered, self._ctx)
        except BaseException:
            self.close()
            raise
        self._acc.add(event)
        self._delivered += 1
        return event

    def text_deltas(self) -> Iterator[str]:
        """Only the text deltas."""
        for event in self:
            if event.kind == "text":
                yield event.text

    def get_response(self) -> ChatResponse:
        """Read whatever is left and return :attr:`response`."""
        for _ in self:
            pass
        return self.response

    def close(self) -> None:
        """Stop reading and release the connection (no effect once closed)."""
        self._done = True
        self._events.close()


class AsyncChatStream(_StreamBase):
    """Async twin of :class:`ChatStream`::

        async with model.astream("Tell me a story") as s:
            async for event in s:
                ...
        s.response
    """

    def __init__(self, events: AsyncGenerator[StreamEvent, None], ctx: CallContext, started: float) -> None:
        super().__init__(ctx, started)
        self._events = events

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._done:
            raise StopAsyncIteration
        try:
            event = await self._events.__anext__()
        except StopAsyncIteration:
            self._done = True
            await self._events.aclose()
            self._complete()
            raise
        except ProviderError as e:
            await self.aclose()
            raise_stream_error(e, self._delivered, self._ctx)
        except BaseException:
            await self.aclose()
            raise
        self._acc.add(event)
        self._delivered += 1
        return event

    async def text_deltas(self) -> AsyncGenerator[str, None]:
        """Only the text deltas."""
        async for event in self:
            if event.kind == "text":
                yield event.text

    async def get_response(self) -> ChatResponse:
        """Read whatever is left and return :attr:`response`."""
        async for _ in self:
            pass
        return self.response

    async def aclose(self) -> None:
        """Stop reading and release the connection (no effect once closed)."""
        self._done = True
        await self._events.aclose()


# --------------------------------------------------------------------------- the model


class ChatModel(ABC):
    """A chat model: one provider + one model, or a wrapper (retry, fallback) around others.

    Attributes:
        provider: registry name of the provider (``"openai"``, ``"ollama"``, ``"fallback"``...).
        model: model name sent to the provider.
        capabilities: what it supports (:attr:`supports_tools`...).
        timeout: default per-call deadline in seconds (covers retries and fallbacks); ``None``: none.
        clock: where deadlines read time (tests use :class:`~aixpy.policy.deadline.ManualClock`).
    """

    provider: str
    model: str
    capabilities: Capabilities = Capabilities()
    timeout: float | None = None
    clock: Clock = SYSTEM_CLOCK

    def __init__(self, *, provider: str, model: str, capabilities: Capabilities | None = None,
                 timeout: float | None = None, clock: Clock | None = None) -> None:
        self.provider = provider
        self.model = model
        if capabilities is not None:
            self.capabilities = capabilities
        self.timeout = timeout
        if clock is not None:
            self.clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"

    @property
    def supports_tools(self) -> bool:
        return self.capabilities.tools

    @property
    def supports_json_schema(self) -> bool:
        return self.capabilities.json_schema

    @property
    def supports_vision(self) -> bool:
        return self.capabilities.vision

    # ------------------------------------------------------------------ the core (subclasses)

    @abstractmethod
    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        """One non-streamed call. Call ``ctx.serving(provider, model)`` before each request."""

    @abstractmethod
    def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        """An async generator of events following the stream contract."""

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Sync twin of :meth:`_achat` (default: the async core on the shared bridge loop)."""
        return _bridge.run(self._achat(req, ctx))

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        """Sync twin of :meth:`_astream` (default: the async core on the shared bridge loop)."""
        return _bridge.iterate(self._astream(req, ctx))

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        raise UserError(f"{self.provider} cannot list its models")

    def _list_models(self, ctx: CallContext) -> list[str]:
        return _bridge.run(self._alist_models(ctx))

    # ------------------------------------------------------------------ shared, I/O-free

    def _context(self, timeout: float | None, deadline: Deadline | None) -> CallContext:
        if deadline is None:
            deadline = Deadline.after(self.timeout, self.clock)
        elif self.timeout is not None:
            deadline = deadline.tighter(self.timeout)
        return CallContext(deadline.tighter(timeout))

    def request(self, prompt: Prompt, **options: Unpack[ChatOptions]) -> ChatRequest:
        """The :class:`ChatRequest` a call with these arguments sends (for inspection and tests)."""
        return build_request(prompt, self.model, **options)

    # ------------------------------------------------------------------ async API

    async def achat(self, prompt: Prompt, /, *, timeout: float | None = None, deadline: Deadline | None = None,
                    **options: Unpack[ChatOptions]) -> ChatResponse:
        """Send ``prompt`` and return the whole answer.

        ``timeout`` (seconds) or ``deadline`` bound the whole call, retries and fallbacks included.
        """
        started = time.perf_counter()
        req = build_request(prompt, self.model, **options)
        ctx = self._context(timeout, deadline)
        return finalize(await self._achat(req, ctx), ctx, started)

    def astream(self, prompt: Prompt, /, *, timeout: float | None = None, deadline: Deadline | None = None,
                **options: Unpack[ChatOptions]) -> AsyncChatStream:
        """Stream the answer: ``async with model.astream(...) as s: async for event in s: ...``."""
        started = time.perf_counter()
        req = build_request(prompt, self.model, **options)
        ctx = self._context(timeout, deadline)
        return AsyncChatStream(self._astream(req, ctx), ctx, started)

    async def alist_models(self, *, timeout: float | None = None) -> list[str]:
        """The model names the provider offers."""
        return await self._alist_models(self._context(timeout, None))

    async def aclose(self) -> None:
        """Release connections (idempotent)."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ sync API

    def chat(self, prompt: Prompt, /, *, timeout: float | None = None, deadline: Deadline | None = None,
             **options: Unpack[ChatOptions]) -> ChatResponse:
        """Sync twin of :meth:`achat`."""
        started = time.perf_counter()
        req = build_request(prompt, self.model, **options)
        ctx = self._context(timeout, deadline)
        return finalize(self._chat(req, ctx), ctx, started)

    def stream(self, prompt: Prompt, /, *, timeout: float | None = None, deadline: Deadline | None = None,
               **options: Unpack[ChatOptions]) -> ChatStream:
        """Sync twin of :meth:`astream`: ``with model.stream(...) as s: for event in s: ...``."""
        started = time.perf_counter()
        req = build_request(prompt, self.model, **options)
        ctx = self._context(timeout, deadline)
        return ChatStream(self._stream(req, ctx), ctx, started)

    def list_models(self, *, timeout: float | None = None) -> list[str]:
        """Sync twin of :meth:`alist_models`."""
        return self._list_models(self._context(timeout, None))

    def close(self) -> None:
        """Release connections (idempotent). After async use, prefer :meth:`aclose`."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
