"""SSRF-guarded httpx transports: resolve once per connection, validate, connect to the pinned IP.

How the pinning works: each transport here is an ``httpx.BaseTransport`` on the pattern of httpx's own
``HTTPTransport`` (convert the request, drive an ``httpcore.ConnectionPool``, map httpcore's exceptions to
httpx's), but it builds that pool itself: no private attribute of httpx or httpcore is touched. For every *new*
connection the pool calls ``network_backend.connect_tcp(host, port, ...)`` and then, for https,
``stream.start_tls(ssl_context, server_hostname=<the URL's host>)``. Our transports give the pool a
:class:`GuardedBackend` whose ``connect_tcp``

1. checks the host name and port against the :class:`~aixpy.http.URLPolicy`,
2. resolves the name exactly once (injectable resolver; ``getaddrinfo``, in a worker thread for async),
3. checks *every* resolved address (one bad address refuses the host: no mixed answers),
4. opens the TCP connection to one of those validated addresses, never to the name.

TLS keeps verifying the certificate against the original name (httpcore passes ``server_hostname``
from the request's origin, not from what ``connect_tcp`` connected to) and httpx writes the ``Host``
header from the URL, so virtual hosting and certificate checks are unchanged. There is no second
lookup for a rebinding DNS server to answer differently. Keep-alive connections stay pinned to the
address they were opened to. Each request's URL (every redirect hop included) is also checked as text
in ``handle_request`` before the pool sees it. No proxy is ever used (a proxy would resolve names
itself), and httpcore's connect retries are fixed at 0: this layer never retries.

The transports also honour a per-request total deadline (:func:`deadline_scope`): each socket
connect/read/write/TLS handshake gets at most the time left, so a slow-drip body cannot outlive it.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Any

import anyio
import anyio.to_thread
import httpcore
import httpx

from aixpy.errors import BlockedURLError
from aixpy.http._ssrf import IPAddress, URLPolicy, check_host, check_ip, check_target

__all__ = [
    "AsyncGuardedBackend",
    "AsyncGuardedTransport",
    "GuardedBackend",
    "GuardedTransport",
    "Resolver",
    "deadline_scope",
    "system_resolver",
    "time_left",
]

#: ``resolver(host, port) -> addresses``: every address the host name resolves to, as strings.
Resolver = Callable[[str, int], Sequence[str]]

_deadline: ContextVar[float | None] = ContextVar("aixpy_http_deadline", default=None)


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with ``socket.getaddrinfo``; addresses in the system's preferred order, deduplicated."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _DeadlineScope:
    """The context manager :func:`deadline_scope` returns (a plain class: one is entered per request)."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._token: Token[float | None] | None = None

    def __enter__(self) -> float | None:
        seconds = self._seconds
        outer = _deadline.get()
        at = None if seconds is None else time.monotonic() + seconds
        if outer is not None and (at is None or outer < at):
            at = outer
        self._token = _deadline.set(at)
        return at

    def __exit__(self, *exc: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            _deadline.reset(token)


def deadline_scope(seconds: float | None) -> AbstractContextManager[float | None]:
    """Within the block, every guarded socket operation finishes by ``monotonic() + seconds``.

    Nested scopes keep the earlier deadline. Yields the absolute deadline (or ``None``).
    """
    return _DeadlineScope(seconds)


def time_left() -> float | None:
    """Seconds left before the current :func:`deadline_scope` ends (``None`` outside one)."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise exc("total request deadline exceeded")
    return left if timeout is None else min(timeout, left)



@functools.lru_cache(maxsize=4)
def _shared_context(verify: bool, trust_env: bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify, trust_env=trust_env)


def ssl_context_for(verify: ssl.SSLContext | bool, trust_env: bool) -> ssl.SSLContext:
    """The TLS context for a pool. Loading the CA bundle costs ~60 ms, so the default contexts are built
    once per process and shared by every client (an ``SSLContext`` is safe to share between connections)."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    return _shared_context(bool(verify), trust_env)

class _Pinner:
    """The I/O-free half shared by both backends: host check and address validation."""

    def __init__(self, policy: URLPolicy, resolver: Resolver | None) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or system_resolver

    def literal(self, host: str, port: int) -> tuple[str, list[str] | None]:
        name, ip = check_host(host, port, self.policy)
        return name, None if ip is None else [str(ip)]

    def validate(self, name: str, answers: Sequence[str]) -> list[str]:
        addresses: list[IPAddress] = []
        for a in answers:
            try:
                addresses.append(ipaddress.ip_address(a))
            except ValueError:
                raise httpcore.ConnectError(f"resolver returned an invalid address for {name!r}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{name!r} resolved to no address")
        for ip in addresses:
            check_ip(ip, self.policy, host=name)  # any blocked address refuses the whole host
        return list(dict.fromkeys(str(ip) for ip in addresses))


def _resolve_error(name: str, e: OSError) -> httpcore.ConnectError:
    return httpcore.ConnectError(f"could not resolve {name!r}: {e.strerror or e}")


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _count(self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout)))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _count(await self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout)))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout))
        return _AsyncDeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """An ``httpcore.NetworkBackend`` that resolves once, validates, and connects to the pinned IP."""

    def __init__(
        self, policy: URLPolicy, resolver: Resolver | None = None, inner: httpcore.NetworkBackend | None = None
    ) -> None:
        self._pinner = _Pinner(policy, resolver)
        self._inner = inner or httpcore.SyncBackend()

    def resolve(self, host: str, port: int) -> list[str]:
        """Check ``host``/``port``, resolve the name once, return the validated addresses."""
        name, literal = self._pinner.literal(host, port)
        if literal is not None:
            return literal
        try:
            answers = self._pinner.resolver(name, port)
        except OSError as e:
            raise _resolve_error(name, e) from e
        return self._pinner.validate(name, answers)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last: Exception | None = None
        for ip in self.resolve(host, port):
            try:
                stream = self._inner.connect_tcp(
                    ip, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, _with_nodelay(socket_options)
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
                continue
            return _DeadlineStream(stream)
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise BlockedURLError("unix sockets cannot go through the SSRF guard")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """Async twin of :class:`GuardedBackend`; the resolver runs in a worker thread."""

    def __init__(
        self,
        policy: URLPolicy,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._pinner = _Pinner(policy, resolver)
        self._inner = inner or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        name, literal = self._pinner.literal(host, port)
        if literal is not None:
            return literal
        limit = _clamp(timeout, httpcore.ConnectTimeout)
        try:
            with anyio.fail_after(limit):
                answers = await anyio.to_thread.run_sync(self._pinner.resolver, name, port, abandon_on_cancel=True)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {name!r} timed out") from None
        except OSError as e:
            raise _resolve_error(name, e) from e
        return self._pinner.validate(name, answers)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for ip in await self.resolve(host, port, timeout):
            try:
                stream = await self._inner.connect_tcp(
                    ip, port, _clamp(timeout, httpcore.ConnectTimeout), local_address, _with_nodelay(socket_options)
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
                continue
            return _AsyncDeadlineStream(stream)
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedURLError("unix sockets cannot go through the SSRF guard")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _RequestChecker:
    """Checks each request's URL as text; remembers the (scheme, host, port) triples that passed."""

    def __init__(self, policy: URLPolicy) -> None:
        self.policy = policy
        self._passed: set[tuple[str, bytes, int | None]] = set()

    def __call__(self, request: httpx.Request) -> None:
        url = request.url
        key = (url.scheme, url.raw_host, url.port)
        if key in self._passed:
            return
        check_target(url.scheme, url.raw_host.decode("ascii"), url.port, self.policy)
        if len(self._passed) > 256:
            self._passed.clear()
        self._passed.add(key)


_EXCEPTIONS: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


class _HttpxErrors:
    """Re-raise httpcore's exceptions as the matching httpx ones (the most specific class), as
    httpx's own transport does; anything else (a :class:`BlockedURLError`...) passes unchanged."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, tp: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if tp is None:
            return
        for cls in tp.__mro__:
            mapped = _EXCEPTIONS.get(cls)
            if mapped is not None:
                raise mapped(str(exc)) from exc


_HTTPX_ERRORS = _HttpxErrors()


class _Attempt:
    """Bytes the server sent while one request waited for its response head, counted by the guarded
    streams (through :data:`_attempt`, which the transports set around the pool call).

    A kept-alive connection the server had closed is found dead on reuse: a protocol error with zero
    bytes received means the server never answered this request (no message text is read), so the
    request is sent once more, on a new connection (as Go's and urllib3's clients do). This is
    connection management, not a retry policy: any other failure, or a second one, propagates to the
    single retry loop of the caller.
    """

    __slots__ = ("received",)

    def __init__(self) -> None:
        self.received = 0


_attempt: ContextVar[_Attempt | None] = ContextVar("aixpy_http_attempt", default=None)


def _count(data: bytes) -> bytes:
    attempt = _attempt.get()
    if attempt is not None:
        attempt.received += len(data)
    return data


def _core_request(request: httpx.Request) -> httpcore.Request:
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _HTTPX_ERRORS:
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            with _HTTPX_ERRORS:
                close()


class _AsyncResponseStream(httpx.AsyncByteStream):
    def __init__(self, inner: AsyncIterable[bytes]) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _HTTPX_ERRORS:
            async for part in self._inner:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._inner, "aclose", None)
        if aclose is not None:
            with _HTTPX_ERRORS:
                await aclose()


def _pool_options(verify: ssl.SSLContext | bool, trust_env: bool, limits: httpx.Limits, http2: bool,
                  local_address: str | None) -> dict[str, Any]:
    return {
        "ssl_context": ssl_context_for(verify, trust_env),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": True,
        "http2": http2,
        "retries": 0,
        "local_address": local_address,
    }


_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over an ``httpcore.ConnectionPool`` whose connections go through a
    :class:`GuardedBackend` (httpx's ``HTTPTransport`` pattern, with the pool built here).

    Never uses a proxy, never retries. ``network_backend`` replaces the socket layer under the guard
    (for tests); the guard itself cannot be turned off.
    """

    def __init__(
        self,
        policy: URLPolicy,
        *,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        http2: bool = False,
        local_address: str | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._check = _RequestChecker(policy)
        self.backend = GuardedBackend(policy, resolver, network_backend)
        self.pool = httpcore.ConnectionPool(network_backend=self.backend,
                                            **_pool_options(verify, trust_env, limits, http2, local_address))

    def __enter__(self) -> GuardedTransport:
        self.pool.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        with _HTTPX_ERRORS:
            self.pool.__exit__(*exc)

    def close(self) -> None:
        self.pool.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        req = _core_request(request)
        attempt = _Attempt()
        token = _attempt.set(attempt)
        try:
            with _HTTPX_ERRORS:
                try:
                    resp = self.pool.handle_request(req)
                except httpcore.RemoteProtocolError:
                    if attempt.received:
                        raise
                    resp = self.pool.handle_request(req)  # the server never answered: see _Attempt
        finally:
            _attempt.reset(token)
        assert isinstance(resp.stream, Iterable)
        return httpx.Response(resp.status, headers=resp.headers, stream=_ResponseStream(resp.stream),
                              extensions=resp.extensions)


class AsyncGuardedTransport(httpx.AsyncBaseTransport):
    """Async twin of :class:`GuardedTransport`."""

    def __init__(
        self,
        policy: URLPolicy,
        *,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
        limits: httpx.Limits = _DEFAULT_LIMITS,
        http2: bool = False,
        local_address: str | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._check = _RequestChecker(policy)
        self.backend = AsyncGuardedBackend(policy, resolver, network_backend)
        self.pool = httpcore.AsyncConnectionPool(network_backend=self.backend,
                                                 **_pool_options(verify, trust_env, limits, http2, local_address))

    async def __aenter__(self) -> AsyncGuardedTransport:
        await self.pool.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        with _HTTPX_ERRORS:
            await self.pool.__aexit__(*exc)

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._check(request)
        req = _core_request(request)
        attempt = _Attempt()
        token = _attempt.set(attempt)
        try:
            with _HTTPX_ERRORS:
                try:
                    resp = await self.pool.handle_async_request(req)
                except httpcore.RemoteProtocolError:
                    if attempt.received:
                        raise
                    resp = await self.pool.handle_async_request(req)  # the server never answered: see _Attempt
        finally:
            _attempt.reset(token)
        assert isinstance(resp.stream, AsyncIterable)
        return httpx.Response(resp.status, headers=resp.headers, stream=_AsyncResponseStream(resp.stream),
                              extensions=resp.extensions)


def _with_nodelay(options: Iterable[Any] | None) -> list[Any]:
    """Disable Nagle: a request goes out as headers + body in two writes, and waiting for the ACK of
    the first before sending the second adds up to a delayed-ACK period (~40 ms) per request."""
    opts = list(options or ())
    if not any(o[:2] == (socket.IPPROTO_TCP, socket.TCP_NODELAY) for o in opts):
        opts.append((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))
    return opts
