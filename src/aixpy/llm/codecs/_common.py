"""Helpers shared by the codecs (pure functions, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from aixpy.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

__all__ = ["as_int", "canonical_json", "error_for_code", "load_json", "load_json_object"]


def load_json(body: dict[str, Any] | bytes | str, *, provider: str) -> Any:
    """Decode a JSON body (a dict passes through). Raises ResponseFormatError on invalid JSON."""
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError as e:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        raise ResponseFormatError(f"{provider} sent invalid JSON: {e}", provider=provider, body=text) from e


def load_json_object(body: dict[str, Any] | bytes | str, *, provider: str) -> dict[str, Any]:
    """Like :func:`load_json`, but the value must be a JSON object."""
    value = load_json(body, provider=provider)
    if not isinstance(value, dict):
        raise ResponseFormatError(f"{provider} sent a JSON {type(value).__name__}, expected an object",
                                  provider=provider, body=json.dumps(value)[:500])
    return value


def as_int(value: Any) -> int:
    """A token count from the wire: ``None``/missing/garbage -> 0."""
    if value.__class__ is int:  # the common case (bool is a subclass, never this class)
        return value
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return 0


def canonical_json(value: Any) -> str:
    """The one JSON encoding codecs use when they must turn an object into text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_RATE = ("rate_limit", "rate_limit_error", "rate_limit_exceeded", "too_many_requests")
_SERVER = ("overloaded_error", "api_error", "server_error", "internal_error", "service_unavailable", "overloaded",
           "timeout", "internal_server_error")
_AUTH = ("authentication_error", "permission_error", "invalid_api_key", "unauthorized", "forbidden")
_INVALID = ("invalid_request_error", "not_found_error", "request_too_large", "invalid_request", "model_not_found",
            "context_length_exceeded", "bad_request", "billing_error")


def error_for_code(code: str | None, message: str, *, provider: str, model: str | None = None,
                   status_code: int | None = None, body: str | None = None) -> ProviderError:
    """The ProviderError subclass for an error that arrived *inside* a body or stream (no HTTP status)."""
    key = (code or "").lower()
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status_code, "body": body}
    if key == "insufficient_quota":  # OpenAI: out of credit; waiting does not help
        return RateLimitError(message, retryable=False, **kw)
    if key in _RATE:
        return RateLimitError(message, **kw)
    if key in _SERVER:
        return ServerError(message, **kw)
    if key in _AUTH:
        return AuthenticationError(message, **kw)
    if key in _INVALID:
        return InvalidRequestError(message, **kw)
    return ProviderError(message, **kw)
