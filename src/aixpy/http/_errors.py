"""The one place where httpx exceptions and HTTP statuses become aixpy errors.

::

    httpx.TimeoutException (connect/read/write/pool, total deadline) -> ProviderTimeoutError  (retryable)
    httpx.NetworkError, RemoteProtocolError                           -> ProviderConnectionError (retryable)
    httpx.DecodingError, httpx_sse.SSEError                           -> ResponseFormatError
    httpx.InvalidURL                                                  -> BlockedURLError
    other httpx errors (too many redirects, local protocol error...) -> ProviderError
    HTTP 3xx (redirect not followed)                                  -> ProviderError
    HTTP 401, 403                                                     -> AuthenticationError
    HTTP 408                                                          -> ProviderTimeoutError  (retryable)
    HTTP 429                                                          -> RateLimitError(retry_after=...)
    HTTP 5xx                                                          -> ServerError           (retryable)
    other HTTP 4xx (400, 404, 409, 413, 422...)                       -> InvalidRequestError

Messages name the method, the URL without query string and the provider's own error message; bodies
are cut to a short excerpt and every configured secret is scrubbed from both.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from httpx_sse import SSEError

from aixpy.errors import (
    AixpyError,
    AuthenticationError,
    BlockedURLError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    redact,
)

__all__ = ["ErrorContext", "error_for_status", "map_exception", "parse_retry_after"]

_EXCERPT = 500
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What an error message may say about the call (no headers, no query string)."""

    method: str
    url: str
    provider: str | None = None
    model: str | None = None
    secrets: Sequence[str] = ()

    def scrub(self, text: str) -> str:
        return redact(text, self.secrets)

    def kw(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model}


def map_exception(exc: BaseException, ctx: ErrorContext) -> AixpyError:
    """Map an httpx / httpx-sse exception to the aixpy error tree (the caller chains ``from exc``)."""
    what = f"{ctx.method} {ctx.url}"
    detail = ctx.scrub(str(exc)) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        phase = {httpx.ConnectTimeout: "connect", httpx.ReadTimeout: "read", httpx.WriteTimeout: "write",
                 httpx.PoolTimeout: "connection pool"}.get(type(exc), "request")
        if "deadline" in detail:
            phase = "total deadline"
        return ProviderTimeoutError(f"{phase} timeout: {what}", **ctx.kw())
    if isinstance(exc, httpx.ConnectError):
        return ProviderConnectionError(f"could not connect: {what}: {detail}", **ctx.kw())
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return ProviderConnectionError(f"connection failed: {what}: {detail}", **ctx.kw())
    if isinstance(exc, httpx.DecodingError | SSEError):
        return ResponseFormatError(f"malformed response: {what}: {detail}", **ctx.kw())
    if isinstance(exc, httpx.InvalidURL):
        return BlockedURLError(f"invalid URL {ctx.url}: {detail}")
    return ProviderError(f"request failed: {what}: {type(exc).__name__}: {detail}", retryable=False, **ctx.kw())


# --------------------------------------------------------------------------- statuses


def _provider_message(body: str) -> str | None:
    """The error message of the common JSON error shapes (OpenAI, Anthropic, Gemini, HF, Ollama)."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return None
    for key in ("error", "message", "detail", "error_description"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("type")
        if isinstance(value, str) and value:
            return value
    return None


def error_for_status(
    status: int, headers: Mapping[str, str], body: bytes, ctx: ErrorContext, *, now: float | None = None
) -> ProviderError | None:
    """The error for an HTTP status, or ``None`` for 1xx/2xx. ``body`` may be a prefix of the body."""
    if status < 300:
        return None
    text = ctx.scrub(body[:4096].decode("utf-8", "replace"))
    excerpt = text[:_EXCERPT] or None
    reason = _provider_message(text)
    message = f"HTTP {status} from {ctx.method} {ctx.url}" + (f": {reason[:300]}" if reason else "")
    kw: dict[str, Any] = {**ctx.kw(), "status_code": status, "body": excerpt}
    if status < 400:
        return ProviderError(f"unexpected redirect (HTTP {status}) from {ctx.method} {ctx.url}; redirects are "
                             "not followed", retryable=False, **kw)
    if status in (401, 403):
        return AuthenticationError(message, **kw)
    if status == 408:
        return ProviderTimeoutError(message, **kw)
    if status == 429:
        return RateLimitError(message, retry_after=parse_retry_after(headers, now=now), **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return InvalidRequestError(message, **kw)


def _seconds(value: str, now: float) -> float | None:
    """Seconds from a number, a Go-style duration ("1m30s", "20ms"), an epoch, an HTTP or ISO date."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number) or number < 0:
            return None
        return max(0.0, number - now) if number > 1e9 else number  # large numbers are epoch seconds
    if value and "".join(m.group(0) for m in _DURATION.finditer(value)) == value:
        return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(value))
    when: datetime | None = None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait before retrying, from (first present wins) ``retry-after-ms``, ``Retry-After``
    (seconds or HTTP-date) or the ``x-ratelimit-reset[-*]`` headers (the reset of an exhausted limit
    when ``x-ratelimit-remaining-*`` says which, else the longest)."""
    now = time.time() if now is None else now
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            ms = float(lower["retry-after-ms"])
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    if "retry-after" in lower:
        seconds = _seconds(lower["retry-after"], now)
        if seconds is not None:
            return seconds
    resets: dict[str, float] = {}
    for key, value in lower.items():
        if key == "x-ratelimit-reset" or key.startswith("x-ratelimit-reset-"):
            seconds = _seconds(value, now)
            if seconds is not None:
                resets[key.removeprefix("x-ratelimit-reset").lstrip("-")] = seconds
    if not resets:
        return None
    exhausted = [s for kind, s in resets.items()
                 if lower.get("x-ratelimit-remaining" + (f"-{kind}" if kind else ""), "").strip() == "0"]
    return max(exhausted or resets.values())
