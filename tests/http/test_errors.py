"""The one error mapping (no network): httpx exceptions, statuses, Retry-After; and the public surface."""

from __future__ import annotations

import importlib
from email.utils import formatdate

import httpx
import pytest
from httpx_sse import SSEError

from aixpy.errors import (
    AuthenticationError,
    BlockedURLError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from aixpy.http import error_for_status, map_exception, parse_retry_after
from aixpy.http._errors import ErrorContext

NOW = 1_700_000_000.0
CTX = ErrorContext("POST", "https://api.example.com/v1/chat", "openai", "gpt-x", ("sk-live-0123456789abcdef",))


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Retry-After": "7"}, 7.0),
    ({"retry-after": "1.5"}, 1.5),
    ({"Retry-After": formatdate(NOW + 42, usegmt=True)}, 42.0),
    ({"Retry-After": formatdate(NOW - 42, usegmt=True)}, 0.0),
    ({"Retry-After": "garbage"}, None),
    ({"Retry-After": "-3"}, None),
    ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
    ({"retry-after-ms": "nan", "Retry-After": "9"}, 9.0),
    ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
    ({"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-reset-requests": "1s"}, 360.0),
    ({"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-reset-requests": "1s",
      "x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "900"}, 1.0),
    ({"x-ratelimit-reset": str(int(NOW + 30))}, 30.0),  # epoch seconds
    ({"x-ratelimit-reset": "12"}, 12.0),
    ({"x-ratelimit-reset-requests": "2023-11-14T22:13:50Z"}, 30.0),
    ({"x-ratelimit-reset-requests": "1h2x"}, None),
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = parse_retry_after(headers, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(("status", "error"), [
    (200, None), (204, None), (301, ProviderError), (400, InvalidRequestError), (401, AuthenticationError),
    (402, InvalidRequestError), (403, AuthenticationError), (404, InvalidRequestError), (408, ProviderTimeoutError),
    (409, InvalidRequestError), (413, InvalidRequestError), (422, InvalidRequestError), (429, RateLimitError),
    (500, ServerError), (503, ServerError), (504, ServerError),
])
def test_error_for_status(status: int, error: type[ProviderError] | None) -> None:
    body = b'{"error": {"message": "bad thing, key sk-live-0123456789abcdef", "type": "x"}}'
    err = error_for_status(status, {"Retry-After": "3"}, body, CTX, now=NOW)
    if error is None:
        assert err is None
        return
    assert type(err) is error
    assert err is not None
    assert (err.status_code, err.provider, err.model) == (status, "openai", "gpt-x")
    assert "sk-live-0123456789abcdef" not in str(err)
    assert "sk-live-0123456789abcdef" not in (err.body or "")
    if status >= 400:
        assert "bad thing" in str(err)
    if isinstance(err, RateLimitError):
        assert err.retry_after == 3.0


@pytest.mark.parametrize(("body", "message"), [
    (b'{"error": "model not found"}', "model not found"),
    (b'{"message": "Invalid input"}', "Invalid input"),
    (b'{"detail": "Not Found"}', "Not Found"),
    (b'[{"error": {"code": 400, "message": "API key not valid"}}]', "API key not valid"),
    (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', "Overloaded"),
    (b"<html>502 Bad Gateway</html>", None),
])
def test_provider_messages(body: bytes, message: str | None) -> None:
    err = error_for_status(502, {}, body, CTX)
    assert err is not None
    if message:
        assert str(err).startswith(f"HTTP 502 from POST https://api.example.com/v1/chat: {message}")
    else:
        assert err.body is not None
        assert "Bad Gateway" in err.body


@pytest.mark.parametrize(("exc", "error", "retryable"), [
    (httpx.ConnectTimeout("x"), ProviderTimeoutError, True),
    (httpx.ReadTimeout("x"), ProviderTimeoutError, True),
    (httpx.WriteTimeout("x"), ProviderTimeoutError, True),
    (httpx.PoolTimeout("x"), ProviderTimeoutError, True),
    (httpx.ConnectError("[Errno 111] Connection refused"), ProviderConnectionError, True),
    (httpx.ReadError("reset"), ProviderConnectionError, True),
    (httpx.WriteError("broken pipe"), ProviderConnectionError, True),
    (httpx.RemoteProtocolError("peer closed connection"), ProviderConnectionError, True),
    (httpx.DecodingError("bad gzip"), ResponseFormatError, False),
    (SSEError("not sse"), ResponseFormatError, False),
    (httpx.TooManyRedirects("x"), ProviderError, False),
    (httpx.LocalProtocolError("bad header"), ProviderError, False),
    (httpx.UnsupportedProtocol("x"), ProviderError, False),
])
def test_map_exception(exc: Exception, error: type[ProviderError], retryable: bool) -> None:
    err = map_exception(exc, CTX)
    assert type(err) is error
    assert isinstance(err, ProviderError)
    assert err.retryable is retryable
    assert (err.provider, err.model) == ("openai", "gpt-x")


def test_map_exception_details() -> None:
    assert "total deadline" in str(map_exception(httpx.ReadTimeout("total request deadline exceeded"), CTX))
    assert "connect timeout" in str(map_exception(httpx.ConnectTimeout("x"), CTX))
    assert isinstance(map_exception(httpx.InvalidURL("bad"), CTX), BlockedURLError)
    leaked = map_exception(httpx.ConnectError("failed with sk-live-0123456789abcdef"), CTX)
    assert "sk-live-0123456789abcdef" not in str(leaked)


def test_public_api_is_sorted_complete_and_resolvable() -> None:
    mod = importlib.import_module("aixpy.http")
    exported = list(mod.__all__)
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(mod, name) is not None
    public_classes = {"HttpClient", "HttpConfig", "URLPolicy", "GuardedTransport", "AsyncGuardedTransport",
                      "GuardedBackend", "AsyncGuardedBackend", "RequestEvent", "ParsedTarget", "IPClass"}
    assert public_classes <= set(exported)
