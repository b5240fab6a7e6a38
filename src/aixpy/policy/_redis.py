"""Redis plumbing shared by the caches and the shared rate limiter (``pip install 'aixpy[redis]'``).

:class:`RedisClients` holds one sync client and one async client per event loop, built from a URL whose
password never appears in logs, errors or ``repr`` (:func:`safe_url`), and counts failures: by default a
failure is logged (the first, then every 100th) and the caller goes on without Redis; with
``strict=True`` it raises :class:`~aixpy.errors.StoreError`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aixpy.errors import MissingDependencyError, StoreError, redact

__all__ = ["RedisClients", "redis_module", "safe_url"]


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:pw@h`` included)."""
    parts = urlsplit(url)
    if parts.password is None:
        return redact(url)
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_module() -> Any:
    """The ``redis`` package (with ``redis.asyncio``), or MissingDependencyError naming the extra."""
    try:
        import redis
        import redis.asyncio
    except ImportError as e:
        raise MissingDependencyError("redis (the Python client)", "pip install 'aixpy[redis]'") from e
    return redis


class RedisClients:
    """The clients of one Redis URL and what to do when a call fails (see the module docstring)."""

    def __init__(self, url: str, *, what: str, logger: logging.Logger, strict: bool = False,
                 socket_timeout: float = 2.0) -> None:
        self.lib = redis_module()
        self.url = url
        self.what = what
        self.logger = logger
        self.strict = strict
        self.socket_timeout = socket_timeout
        self.errors = 0
        self._client: Any = None
        self._aclient: Any = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def caught(self) -> tuple[type[BaseException], ...]:
        """The exceptions a Redis call may raise when Redis is down or slow."""
        return (self.lib.RedisError, OSError)

    def sync(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self.lib.Redis.from_url(self.url, socket_timeout=self.socket_timeout,
                                                       socket_connect_timeout=self.socket_timeout)
            return self._client

    def async_(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aloop is not loop:
            self._aclient = self.lib.asyncio.Redis.from_url(self.url, socket_timeout=self.socket_timeout,
                                                            socket_connect_timeout=self.socket_timeout)
            self._aloop = loop
        return self._aclient

    def failed(self, op: str, err: BaseException, fallback: str) -> None:
        """Count a failed ``op``; raise StoreError when strict, else log (``fallback`` says what happens)."""
        with self._lock:
            self.errors += 1
            n = self.errors
        detail = redact(f"{type(err).__name__}: {err}", [self.url, urlsplit(self.url).password or ""])
        if self.strict:
            raise StoreError(f"{self.what} {op} failed: {detail}") from err
        if n == 1 or n % 100 == 0:
            self.logger.warning("%s %s failed (%d errors so far); %s: %s", self.what, op, n, fallback, detail)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self._aclient, self._aloop = self._aclient, None, None
        if client is not None:
            await client.aclose()
        self.close()

    def __repr__(self) -> str:
        return f"RedisClients({safe_url(self.url)!r})"
