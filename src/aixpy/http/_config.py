"""What an :class:`~aixpy.http.HttpClient` is built from (:class:`HttpConfig`) and what its metrics hooks
receive (:class:`RequestEvent`); which header values are secrets."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aixpy._version import __version__
from aixpy.errors import InvalidInputError
from aixpy.http._ssrf import URLPolicy, public_policy, safe_url
from aixpy.http._transport import Resolver

__all__ = ["SENSITIVE_HEADERS", "HttpConfig", "RequestEvent", "RequestHook", "secret_values"]

#: Header names whose values are always treated as secrets.
SENSITIVE_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie",
    "x-auth-token", "ocp-apim-subscription-key",
})


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """What a metrics hook receives once per call (after the body was read or the stream closed)."""

    provider: str | None
    model: str | None
    method: str
    host: str
    path: str
    status: int | None
    seconds: float
    bytes: int
    error: str | None
    stream: bool = False


RequestHook = Callable[[RequestEvent], None]
"""A metrics hook. One with a ``listening`` attribute that is false is skipped for that request (and,
when no hook listens and logging is off, no :class:`RequestEvent` is built): ``aixpy.telemetry``'s
bridge says so while nobody subscribes."""


@dataclass(frozen=True)
class HttpConfig:
    """Everything an :class:`HttpClient` is built from. Timeouts are seconds.

    ``secret_headers`` (and any header named like ``Authorization`` or ``x-api-key``) are sent on
    every request but never shown. ``total_timeout`` is the per-call deadline across connect, send
    and read (streamed bodies included); ``None`` disables it.
    """

    base_url: str
    policy: URLPolicy = field(default_factory=public_policy)
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_headers: Mapping[str, str] = field(default_factory=dict)
    provider: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 10.0
    total_timeout: float | None = 600.0
    max_response_bytes: int = 32 * 1024 * 1024
    user_agent: str = f"aixpy/{__version__}"
    follow_redirects: bool = False
    max_redirects: int = 5
    verify: ssl.SSLContext | bool = True
    max_connections: int = 100
    max_keepalive_connections: int = 20
    keepalive_expiry: float = 30.0
    resolver: Resolver | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout", "keepalive_expiry"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(f"HttpConfig.{name} must be > 0")
        if self.total_timeout is not None and not self.total_timeout > 0:
            raise InvalidInputError("HttpConfig.total_timeout must be > 0 or None")
        if self.max_response_bytes <= 0 or self.max_redirects < 0 or self.max_connections <= 0:
            raise InvalidInputError("HttpConfig sizes and counts must be positive")

    @property
    def secrets(self) -> tuple[str, ...]:
        return secret_values([*self.secret_headers.values(),
                               *(v for k, v in self.headers.items() if k.lower() in SENSITIVE_HEADERS)])

    @property
    def secret_header_names(self) -> frozenset[str]:
        return SENSITIVE_HEADERS | {k.lower() for k in self.secret_headers}

    def __repr__(self) -> str:
        names = self.secret_header_names
        shown = [f"{k}=***" if k.lower() in names else k for k in (*self.headers, *self.secret_headers)]
        return (f"HttpConfig(base_url={safe_url(self.base_url)!r}, policy={self.policy.name!r}, "
                f"provider={self.provider!r}, headers={shown}, total_timeout={self.total_timeout})")


def secret_values(values: Iterable[str]) -> tuple[str, ...]:
    """Header values to scrub, plus the bare token of ``Bearer <token>``-style values."""
    out: list[str] = []
    for v in values:
        if v:
            out.append(v)
            if " " in v.strip():
                out.append(v.strip().split(" ", 1)[1])
    return tuple(out)
