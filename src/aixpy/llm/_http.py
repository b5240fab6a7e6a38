"""``HttpChatModel``: a provider reached over HTTP — one pooled client, one wire API, no retries.

The request building, body parsing and stream parsing are the pure :class:`~aixpy.llm.codecs._common.WireAPI`
of a codec; this class only moves bytes, through the sync or the async half of the same
:class:`~aixpy.http.HttpClient` (created once per instance, never per call). Every request gets the
time left before the call's deadline, capped by the provider's own ``timeout``. This layer never
retries (the one retry loop is :class:`~aixpy.llm.policies.retry.RetryModel`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypedDict

from aixpy.errors import ProviderError, UserError
from aixpy.http import HttpClient, HttpConfig, RequestHook, URLPolicy, aiter_sse, iter_sse, request_headers
from aixpy.http import safe_url as _safe_url
from aixpy.llm.codecs._common import HttpCall, StreamParser, WireAPI
from aixpy.llm.model import CallContext, Capabilities, ChatModel, EventNormalizer
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent
from aixpy.policy.deadline import Clock

__all__ = ["DEFAULT_TIMEOUT", "HttpChatModel", "HttpOptions"]

_DRAIN_ITEMS = 64
"""After the end-of-stream marker, read at most this many more items before closing."""

DEFAULT_TIMEOUT = 600.0
"""Seconds one request may take (LLM answers can be slow) when no ``timeout`` is configured."""


class HttpOptions(TypedDict, total=False):
    """Keyword options every HTTP provider accepts."""

    timeout: float | None
    temperature: float | None
    max_tokens: int | None
    on_request: Sequence[RequestHook]
    clock: Clock | None
    connect_timeout: float
    extra_headers: Mapping[str, Any] | None
    allow_auth_override: bool


class HttpChatModel(ChatModel):
    """A chat model served over HTTP. Providers subclass it to add auth and a base URL.

    Args:
        timeout: seconds one request may take (also the default per-call deadline when this model is
            called directly).
        temperature, max_tokens: defaults for requests that do not set them (on APIs that take
            ``temperature`` or ``top_p`` but not both, ``temperature`` is no default for a request
            that sets ``top_p``: its own choice wins).
        on_request: metrics hooks (:class:`~aixpy.http.RequestEvent` per request).
        extra_headers: the config's ``headers:``, sent with every request and treated as secrets; checked
            by :func:`~aixpy.http.request_headers` (no credential header unless ``allow_auth_override``,
            no header the provider sets).
    """

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        api: WireAPI,
        base_url: str,
        policy: URLPolicy,
        secret_headers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        capabilities: Capabilities | None = None,
        timeout: float | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        on_request: Sequence[RequestHook] = (),
        clock: Clock | None = None,
        connect_timeout: float = 10.0,
        extra_headers: Mapping[str, Any] | None = None,
        allow_auth_override: bool = False,
    ) -> None:
        secret_headers = request_headers(extra_headers, secret_headers, fixed=headers or {},
                                         allow_auth_override=allow_auth_override)
        super().__init__(provider=provider, model=model, capabilities=capabilities, timeout=timeout, clock=clock)
        self.api = api
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.request_timeout = timeout or DEFAULT_TIMEOUT
        config = HttpConfig(base_url, policy=policy, headers=dict(headers or {}),
                            secret_headers=dict(secret_headers or {}),
                            provider=provider, connect_timeout=min(connect_timeout, self.request_timeout),
                            read_timeout=self.request_timeout, write_timeout=self.request_timeout,
                            total_timeout=self.request_timeout)
        self.http = HttpClient(config, on_request=on_request)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        return _safe_url(self.http.config.base_url)

    # ------------------------------------------------------------------ I/O-free helpers

    def _auth_headers(self) -> Mapping[str, str] | None:
        """Per-request headers (e.g. a refreshed OAuth token); static keys live in the HttpConfig."""
        return None

    async def _aauth_headers(self) -> Mapping[str, str] | None:
        return self._auth_headers()

    def _bind(self, req: ChatRequest) -> ChatRequest:
        changes: dict[str, Any] = {}
        if req.model != self.model:
            changes["model"] = self.model
        if req.temperature is None and self.temperature is not None and not (
                self.api.exclusive_sampling and req.top_p is not None):
            changes["temperature"] = self.temperature
        if req.max_tokens is None and self.max_tokens is not None:
            changes["max_tokens"] = self.max_tokens
        return replace(req, **changes) if changes else req

    def _prepare(self, req: ChatRequest, ctx: CallContext, stream: bool) -> tuple[ChatRequest, HttpCall, float | None]:
        req = self._bind(req)
        ctx.serving(self.provider, self.model)
        call = self.api.chat_call(req, stream=stream)
        return req, call, ctx.deadline.timeout_for(self.request_timeout, provider=self.provider, model=self.model)

    def _refined(self, err: ProviderError, *, model: str | None = None) -> ProviderError:
        """``err`` with what the API's error bodies add, naming this provider (and ``model``) when the
        error does not (an undecodable stream item is found by a parser or reader that knows neither)."""
        if err.provider is None:
            err.provider = self.provider
        if err.model is None and model is not None:
            err.model = model
        return self.api.refine_error(err)

    def _decoder(self, req: ChatRequest) -> _Decoder:
        return _Decoder(self.api.stream_parser(req, provider=self.provider), EventNormalizer(self.provider, self.model))

    # ------------------------------------------------------------------ sync I/O

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        req, call, timeout = self._prepare(req, ctx, False)
        try:
            response = self.http.request(call.method, call.path, json=call.json, params=call.params,
                                         headers=self._auth_headers(), model=req.model, timeout=timeout)
        except ProviderError as e:
            raise self._refined(e) from e.__cause__
        return self.api.parse_chat(response.content, req, provider=self.provider)

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        req, call, timeout = self._prepare(req, ctx, True)
        decoder = self._decoder(req)
        try:
            with self.http.stream(call.method, call.path, json=call.json, params=call.params,
                                  headers=self._auth_headers(), model=req.model, timeout=timeout) as response:
                items = iter_sse(response) if self.api.framing == "sse" else response.iter_lines()
                try:
                    for item in items:
                        yield from decoder.feed(item)
                        if decoder.parser.done:
                            # read the (normally empty) rest, so the connection goes back to the pool
                            for _ in itertools.islice(items, _DRAIN_ITEMS):
                                pass
                            break
                finally:
                    _close(items)
        except ProviderError as e:
            raise self._refined(e, model=req.model) from e.__cause__
        yield from decoder.tail()

    def _list_models(self, ctx: CallContext) -> list[str]:
        call = self._models_call()
        timeout = ctx.deadline.timeout_for(self.request_timeout, provider=self.provider, model=self.model)
        try:
            response = self.http.request(call.method, call.path, params=call.params, headers=self._auth_headers(),
                                         timeout=timeout)
        except ProviderError as e:
            raise self._refined(e) from e.__cause__
        return self.api.parse_models(response.content)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ async I/O

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        req, call, timeout = self._prepare(req, ctx, False)
        try:
            response = await self.http.arequest(call.method, call.path, json=call.json, params=call.params,
                                                headers=await self._aauth_headers(), model=req.model, timeout=timeout)
        except ProviderError as e:
            raise self._refined(e) from e.__cause__
        return self.api.parse_chat(response.content, req, provider=self.provider)

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        req, call, timeout = self._prepare(req, ctx, True)
        decoder = self._decoder(req)
        try:
            async with self.http.astream(call.method, call.path, json=call.json, params=call.params,
                                         headers=await self._aauth_headers(), model=req.model,
                                         timeout=timeout) as response:
                items = aiter_sse(response) if self.api.framing == "sse" else response.aiter_lines()
                try:
                    async for item in items:
                        for event in decoder.feed(item):
                            yield event
                        if decoder.parser.done:
                            n = 0
                            async for _ in items:  # drain the rest so the connection is reused
                                n += 1
                                if n >= _DRAIN_ITEMS:
                                    break
                            break
                finally:
                    await _aclose(items)
        except ProviderError as e:
            raise self._refined(e, model=req.model) from e.__cause__
        for event in decoder.tail():
            yield event

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        call = self._models_call()
        timeout = ctx.deadline.timeout_for(self.request_timeout, provider=self.provider, model=self.model)
        try:
            response = await self.http.arequest(call.method, call.path, params=call.params,
                                                headers=await self._aauth_headers(), timeout=timeout)
        except ProviderError as e:
            raise self._refined(e) from e.__cause__
        return self.api.parse_models(response.content)

    async def aclose(self) -> None:
        await self.http.aclose()

    def _models_call(self) -> HttpCall:
        call = self.api.models_call()
        if call is None:
            raise UserError(f"{self.provider} ({type(self.api).__name__}) cannot list its models")
        return call


class _Decoder:
    """One stream's decoding, shared by the sync and async readers (they differ only in how they read
    items): the codec's parser turns each item into events; text and tool-call events go out at once,
    usage and finish are held for the :meth:`tail`."""

    __slots__ = ("norm", "parser")

    def __init__(self, parser: StreamParser, norm: EventNormalizer) -> None:
        self.parser = parser
        self.norm = norm

    def feed(self, item: Any) -> list[StreamEvent]:
        events = self.parser.feed(item)
        for event in events:
            kind = event.kind
            if kind == "usage" or kind == "finish":
                return self._held(events)
        return events  # the common case: nothing to hold, no copy

    def _held(self, events: list[StreamEvent]) -> list[StreamEvent]:
        feed = self.norm.feed
        return [out for out in map(feed, events) if out is not None]

    def tail(self) -> tuple[StreamEvent, StreamEvent]:
        """The closing usage + finish events (ProviderConnectionError when the stream was cut short)."""
        for event in self.parser.end():
            self.norm.feed(event)
        return self.norm.tail()


def _close(items: object) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()


async def _aclose(items: object) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
