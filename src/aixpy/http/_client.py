"""``HttpClient``: the one pooled, SSRF-guarded HTTP client every provider uses.

One instance holds one ``httpx.Client`` and one ``httpx.AsyncClient``, created on first use and reused
for every call until :meth:`HttpClient.close` / :meth:`HttpClient.aclose`. The base URL comes only
from :class:`HttpConfig` (configuration, checked against the policy at construction); calls take a
*relative* path, and a request that would leave the configured origin is refused. Secret headers
(API keys) never reach logs, reprs or error messages, and are dropped if a followed redirect leaves
the origin. Each call has a total deadline covering connect, send and every read of a streamed body,
and a response size cap. This layer never retries: the retry policy wraps it, so there is exactly
one retry loop per call.

Building a client also installs a filter on the ``httpx`` logger that drops query strings from the
URL httpx logs at INFO for each request (query strings may carry keys, e.g. ``?key=`` APIs).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from httpx_sse import SSEError

from aixpy.errors import AixpyError, BlockedURLError, InvalidInputError, ResponseFormatError, UserError
from aixpy.http._config import HttpConfig, RequestEvent, RequestHook, secret_values
from aixpy.http._errors import ErrorContext, error_for_status, map_exception
from aixpy.http._ssrf import check_url, safe_url
from aixpy.http._transport import (
    AsyncGuardedTransport,
    GuardedTransport,
    deadline_scope,
    time_left,
)

__all__ = ["HttpClient", "HttpConfig", "RequestEvent", "RequestHook"]

logger = logging.getLogger("aixpy.http")

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2e){1,2}(?:/|$)", re.IGNORECASE)
_ERROR_BODY_LIMIT = 64 * 1024
_STREAM_HEADERS: Mapping[str, str] = {"Accept-Encoding": "identity"}  # read only, shared by every call


class _StripQueryFilter(logging.Filter):
    """httpx logs each request's full URL at INFO; a query string can hold a key (``?key=`` APIs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, httpx.URL) and a.query for a in args):
            record.args = tuple(safe_url(a) if isinstance(a, httpx.URL) else a for a in args)
        return True


def _install_httpx_log_filter() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _StripQueryFilter) for f in httpx_logger.filters):
        httpx_logger.addFilter(_StripQueryFilter())


class _Call:
    """Per-call state. The :class:`ErrorContext` (safe URL, secrets to scrub) is only needed when an
    error is built or an event is logged, so it is built on first use, from the same inputs."""

    __slots__ = ("_ctx", "_method", "_model", "_provider", "_secrets", "_url", "error", "host", "nbytes", "path",
                 "start", "status", "stream")

    def __init__(self, method: str, url: httpx.URL, provider: str | None, model: str | None,
                 secrets: tuple[str, ...], host: str, path: str, stream: bool) -> None:
        self._ctx: ErrorContext | None = None
        self._method, self._url, self._provider, self._model, self._secrets = method, url, provider, model, secrets
        self.host, self.path, self.stream = host, path, stream
        self.start = time.monotonic()
        self.status: int | None = None
        self.nbytes = 0
        self.error: BaseException | None = None

    @property
    def ctx(self) -> ErrorContext:
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = ErrorContext(self._method, safe_url(self._url), self._provider, self._model,
                                           self._secrets)
        return ctx


class _CappedStream(httpx.SyncByteStream):
    """Counts wire bytes, enforces the size cap and the total deadline between chunks."""

    def __init__(self, inner: httpx.SyncByteStream, call: _Call, cap: int) -> None:
        self._inner, self._call, self._cap = inner, call, cap

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            _account(self._call, len(chunk), self._cap)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncCappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, call: _Call, cap: int) -> None:
        self._inner, self._call, self._cap = inner, call, cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            _account(self._call, len(chunk), self._cap)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _account(call: _Call, n: int, cap: int) -> None:
    call.nbytes += n
    if call.nbytes > cap:
        raise _too_large(call, cap)
    left = time_left()
    if left is not None and left <= 0:
        raise httpx.ReadTimeout("total request deadline exceeded")


_BODY_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


def _buffered(response: httpx.Response, body: bytearray) -> httpx.Response:
    """A closed copy of ``response`` holding its decoded ``body`` (read under the size cap).

    Built with httpx's public constructor, so nothing private is written: the headers describing the
    wire encoding (``Content-Encoding``, ``Transfer-Encoding``, the wire ``Content-Length``) go, since
    ``body`` is already decoded; ``Content-Length`` is then its length.
    """
    headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _BODY_HEADERS]
    out = httpx.Response(response.status_code, headers=headers, content=bytes(body), request=response.request,
                         extensions=response.extensions, history=response.history,
                         default_encoding=response.default_encoding)
    out.elapsed = response.elapsed
    return out


def _too_large(call: _Call, cap: int) -> ResponseFormatError:
    return ResponseFormatError(f"response body of {call.ctx.method} {call.ctx.url} exceeds the {cap}-byte cap",
                               **call.ctx.kw())


class HttpClient:
    """Pooled, SSRF-guarded HTTP client with sync and async twins of every method.

    >>> client = HttpClient(HttpConfig("https://api.openai.com/v1", policy=public_policy("api.openai.com"),
    ...                                secret_headers={"Authorization": "Bearer sk-..."}, provider="openai"))
    >>> client.request("POST", "/chat/completions", json={...}, model="gpt-4o-mini").json()  # doctest: +SKIP
    """

    def __init__(self, config: HttpConfig, *, on_request: Iterable[RequestHook] = ()) -> None:
        base = check_url(config.base_url, config.policy)
        if base.query:
            raise InvalidInputError("base_url must not carry a query string; pass params= per request")
        self.config = config
        self.on_request: list[RequestHook] = list(on_request)
        _install_httpx_log_filter()
        self._base_url = httpx.URL(base.url)
        self._origin = (self._base_url.scheme, self._base_url.raw_host, self._base_url.port)
        self._display_host = base.origin.split("://", 1)[1]
        self._secrets = config.secrets
        self._secret_names = config.secret_header_names
        self._timeout = httpx.Timeout(connect=config.connect_timeout, read=config.read_timeout,
                                      write=config.write_timeout,
                                      pool=min(config.pool_timeout, config.total_timeout or config.pool_timeout))
        self._lock = threading.Lock()
        self._closed = False
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return (f"HttpClient(provider={self.config.provider!r}, base_url={str(self._base_url)!r}, "
                f"policy={self.config.policy.name!r})")

    # ------------------------------------------------------------------ pooled clients (created once)

    def _client_options(self) -> dict[str, Any]:
        c = self.config
        return {
            "base_url": self._base_url,
            "headers": {"User-Agent": c.user_agent, **c.headers, **c.secret_headers},
            # what every request gets (build_request would otherwise copy a per-call Timeout): only
            # requests built by _prepare go through these clients
            "timeout": self._timeout,
            "follow_redirects": c.follow_redirects,
            "max_redirects": c.max_redirects,
            "trust_env": False,  # no env proxies (they would resolve names past the guard), no .netrc
        }

    def _transport_options(self) -> dict[str, Any]:
        c = self.config
        limits = httpx.Limits(max_connections=c.max_connections, max_keepalive_connections=c.max_keepalive_connections,
                              keepalive_expiry=c.keepalive_expiry)
        return {"resolver": c.resolver, "verify": c.verify, "limits": limits}

    def _check_open(self) -> None:
        if self._closed:
            raise UserError("this HttpClient is closed")

    def _sync(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._lock:
                self._check_open()
                if self._client is None:
                    transport = GuardedTransport(self.config.policy, **self._transport_options())
                    self._client = httpx.Client(transport=transport, event_hooks={"request": [self._on_hop]},
                                                **self._client_options())
                client = self._client
        return client

    def _async(self) -> httpx.AsyncClient:
        client = self._aclient
        if client is None:
            with self._lock:
                self._check_open()
                if self._aclient is None:
                    transport = AsyncGuardedTransport(self.config.policy, **self._transport_options())
                    self._aclient = httpx.AsyncClient(transport=transport, event_hooks={"request": [self._aon_hop]},
                                                      **self._client_options())
                client = self._aclient
        return client

    def _on_hop(self, request: httpx.Request) -> None:
        """Called by httpx for every hop; a redirect off the origin loses every secret header."""
        url = request.url
        if (url.scheme, url.raw_host, url.port) != self._origin:
            for name in self._secret_names:
                request.headers.pop(name, None)

    async def _aon_hop(self, request: httpx.Request) -> None:
        self._on_hop(request)

    def close(self) -> None:
        """Close the pooled sync client. Use :meth:`aclose` when async methods were used."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both pooled clients."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
            aclient, self._aclient = self._aclient, None
        if aclient is not None:
            await aclient.aclose()
        if client is not None:
            client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ I/O-free helpers

    def _prepare(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        json: Any,
        content: bytes | str | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        model: str | None,
        stream: bool,
    ) -> tuple[httpx.Request, _Call]:
        _check_relative(path)
        hdrs: httpx.Headers | Mapping[str, str] | None
        if headers:
            hdrs = httpx.Headers(headers)
            if "host" in hdrs:
                raise BlockedURLError("overriding the Host header is not allowed")
            if stream and "accept-encoding" not in hdrs:
                hdrs["Accept-Encoding"] = "identity"  # so the size cap counts what the caller will read
            call_secrets = self._secrets + secret_values(v for k, v in hdrs.items() if k in self._secret_names)
        else:  # no per-call headers: nothing to check, no extra secret (httpx merges a dict like Headers)
            hdrs = _STREAM_HEADERS if stream else None
            call_secrets = self._secrets
        request = client.build_request(method.upper(), path, json=json, content=content, params=params,
                                       headers=hdrs)  # timeout: the client's, which is self._timeout
        url = request.url
        if (url.scheme, url.raw_host, url.port) != self._origin:
            raise BlockedURLError(f"request to {safe_url(url)} leaves the configured origin {self._display_host}")
        return request, _Call(request.method, url, self.config.provider, model, call_secrets, self._display_host,
                              url.path, stream)

    def _total(self, timeout: float | None) -> float | None:
        return self.config.total_timeout if timeout is None else timeout

    def _guard(self, call: _Call) -> _Guard:
        """Map errors (the one place, see ``_errors.py``), then log and emit the event, once per call."""
        return _Guard(self, call)

    def _finish(self, call: _Call) -> None:
        seconds = time.monotonic() - call.start
        err = call.error
        level = logging.DEBUG if err is None else logging.INFO
        hooks = [h for h in self.on_request if getattr(h, "listening", True)] if self.on_request else ()
        if not hooks and not logger.isEnabledFor(level):
            return
        # the call's own fields, not call.ctx: the error context (safe URL, secrets) is built only when needed
        event = RequestEvent(call._provider, call._model, call._method, call.host, call.path,
                             call.status, seconds, call.nbytes, None if err is None else type(err).__name__,
                             call.stream)
        if logger.isEnabledFor(level):
            fields = {"provider": event.provider, "model": event.model, "method": event.method, "host": event.host,
                      "path": event.path, "status": event.status, "ms": round(seconds * 1000, 2),
                      "bytes": event.bytes, "error": event.error, "stream": event.stream}
            if err is None:
                logger.debug("%s %s%s -> %s (%.1f ms, %d bytes)", event.method, event.host, event.path,
                             event.status, seconds * 1000, event.bytes, extra={"aixpy_http": fields})
            else:
                why = str(err) if isinstance(err, AixpyError) else type(err).__name__
                logger.info("%s %s%s failed (%.1f ms): %s", event.method, event.host, event.path, seconds * 1000,
                            why, extra={"aixpy_http": fields})
        for hook in hooks:
            try:
                hook(event)
            except Exception:
                logger.warning("on_request hook %r failed", hook, exc_info=True)

    def _raise_for_status(self, response: httpx.Response, call: _Call, body: bytes) -> None:
        if response.status_code < 300:  # error_for_status returns None for these (no ErrorContext needed)
            return
        err = error_for_status(response.status_code, response.headers, body, call.ctx)
        if err is not None:
            raise err

    def _precheck_length(self, response: httpx.Response, call: _Call) -> None:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.config.max_response_bytes and response.status_code < 300:
            raise _too_large(call, self.config.max_response_bytes)

    # ------------------------------------------------------------------ sync I/O

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send a request to ``base_url + path`` and return the (fully read, 2xx) response.

        Raises the mapped :class:`~aixpy.errors.ProviderError` for any failure or non-2xx status.
        ``timeout`` overrides the total deadline for this call.
        """
        client = self._sync()
        request, call = self._prepare(client, method, path, json=json, content=content, params=params,
                                      headers=headers, model=model, stream=False)
        cap = self.config.max_response_bytes
        with deadline_scope(self._total(timeout)), self._guard(call):
            response = client.send(request, stream=True)
            try:
                call.status = response.status_code
                self._precheck_length(response, call)
                assert isinstance(response.stream, httpx.SyncByteStream)
                response.stream = _CappedStream(response.stream, call, cap)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > cap:  # decoded size: a compressed bomb stops here
                        raise _too_large(call, cap)
            finally:
                response.close()
            response = _buffered(response, body)
            self._raise_for_status(response, call, response.content)
        return response

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[httpx.Response]:
        """Open a streamed request; yields the 2xx response for ``iter_lines``/:func:`iter_sse`/...

        Errors (status, timeout, deadline, size cap) raise from the ``with`` as aixpy errors, also
        when they happen while iterating the body inside the block.
        """
        client = self._sync()
        request, call = self._prepare(client, method, path, json=json, content=content, params=params,
                                      headers=headers, model=model, stream=True)
        with deadline_scope(self._total(timeout)), self._guard(call):
            response = client.send(request, stream=True)
            try:
                call.status = response.status_code
                assert isinstance(response.stream, httpx.SyncByteStream)
                response.stream = _CappedStream(response.stream, call, self.config.max_response_bytes)
                if response.status_code >= 300:
                    self._raise_for_status(response, call, _read_prefix(response))
                yield response
            finally:
                response.close()

    # ------------------------------------------------------------------ async I/O

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Async twin of :meth:`request`."""
        client = self._async()
        request, call = self._prepare(client, method, path, json=json, content=content, params=params,
                                      headers=headers, model=model, stream=False)
        cap = self.config.max_response_bytes
        with deadline_scope(self._total(timeout)), self._guard(call):
            response = await client.send(request, stream=True)
            try:
                call.status = response.status_code
                self._precheck_length(response, call)
                assert isinstance(response.stream, httpx.AsyncByteStream)
                response.stream = _AsyncCappedStream(response.stream, call, cap)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > cap:
                        raise _too_large(call, cap)
            finally:
                await response.aclose()
            response = _buffered(response, body)
            self._raise_for_status(response, call, response.content)
        return response

    @asynccontextmanager
    async def astream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Async twin of :meth:`stream`."""
        client = self._async()
        request, call = self._prepare(client, method, path, json=json, content=content, params=params,
                                      headers=headers, model=model, stream=True)
        with deadline_scope(self._total(timeout)), self._guard(call):
            response = await client.send(request, stream=True)
            try:
                call.status = response.status_code
                assert isinstance(response.stream, httpx.AsyncByteStream)
                response.stream = _AsyncCappedStream(response.stream, call, self.config.max_response_bytes)
                if response.status_code >= 300:
                    self._raise_for_status(response, call, await _aread_prefix(response))
                yield response
            finally:
                await response.aclose()


class _Guard:
    """The context manager of :meth:`HttpClient._guard` (a plain class: cheaper than a generator per call)."""

    __slots__ = ("_call", "_client")

    def __init__(self, client: HttpClient, call: _Call) -> None:
        self._client, self._call = client, call

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        call = self._call
        if e is None:
            self._client._finish(call)
            return
        if isinstance(e, httpx.HTTPError | httpx.InvalidURL | SSEError):
            err = map_exception(e, call.ctx)
            call.error = err
            try:
                raise err from e
            finally:
                self._client._finish(call)
        call.error = e
        self._client._finish(call)


_RELATIVE_OK: set[str] = set()
"""Paths that passed :func:`_check_relative` (a pure function of the text): a provider uses a handful.
Only paths without a query string are kept (a query may carry a key; it is never held beyond the call)."""


def _check_relative(path: str) -> None:
    if path.__class__ is str and path in _RELATIVE_OK:
        return
    _check_relative_text(path)
    if path.__class__ is str and "?" not in path:
        if len(_RELATIVE_OK) >= 256:
            _RELATIVE_OK.clear()
        _RELATIVE_OK.add(path)


def _check_relative_text(path: str) -> None:
    if not isinstance(path, str):
        raise BlockedURLError(f"request path must be a string, not {type(path).__name__}")
    if _ABSOLUTE.match(path) or path.startswith("//"):
        raise BlockedURLError(f"absolute URL {safe_url(path)} refused: requests take a path relative to the "
                              "configured base_url")
    if _FORBIDDEN.search(path):
        raise BlockedURLError("request path contains whitespace, control characters or backslashes")
    if _DOT_SEGMENT.search(path.split("?", 1)[0]):
        raise BlockedURLError("request path contains '.' or '..' segments")


def _read_prefix(response: httpx.Response) -> bytes:
    """Up to 64 KiB of an error body, best effort (a broken error body must not hide the status)."""
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except (httpx.HTTPError, AixpyError):
        pass
    return bytes(body)


async def _aread_prefix(response: httpx.Response) -> bytes:
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except (httpx.HTTPError, AixpyError):
        pass
    return bytes(body)
