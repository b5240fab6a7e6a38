"""Plumbing every HTTP embedding provider shares: one pooled :class:`~aixpy.http.HttpClient`, no retries.

:class:`RemoteEmbeddings` holds the client (its sync half serves ``embed*``, its async half
``aembed*``; both are created once and reused), sends one JSON POST per sub-batch through
:meth:`RemoteEmbeddings._post` / :meth:`RemoteEmbeddings._apost`, and closes the client with the
service. A provider subclass only builds the body and parses the answer with its sans-IO codec::

    class MyEmbeddings(RemoteEmbeddings):
        provider = "mine"

        def _embed_part(self, texts):
            return Embedded(*codec.parse(self._post("/embed", codec.build(texts)), len(texts)))

        async def _aembed_part(self, texts):
            return Embedded(*codec.parse(await self._apost("/embed", codec.build(texts)), len(texts)))

Where the client may go is decided by the caller with
:func:`aixpy.http.endpoint_target` (official host: public policy; a loopback or
private ``base_url``: the local policy; any other host: public policy for that host only), and API keys
with :func:`~aixpy.http.resolve_key`. Keys go in ``secret_headers``: never logged,
shown or kept across a redirect off the origin. Errors are the HTTP layer's mapped ones
(429 -> :class:`~aixpy.errors.RateLimitError` with ``retry_after``, 5xx -> ``ServerError``, timeouts...);
retries, rate limits, caching and fallback are wrappers around the service, never in here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.errors import ConfigError
from aixpy.http import HttpClient, HttpConfig, RequestHook, URLPolicy, request_headers, safe_url

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "RemoteEmbeddings", "bearer"]

DEFAULT_TIMEOUT = 60.0
"""Seconds one embedding request may take (connect, send and read) unless configured."""

DEFAULT_CONCURRENCY = 4
"""Sub-batches in flight at once for cloud providers."""


def bearer(key: str | None) -> dict[str, str]:
    """``{"Authorization": "Bearer <key>"}``, or nothing without a key."""
    return {"Authorization": f"Bearer {key}"} if key else {}


class RemoteEmbeddings(EmbeddingService):
    """Base of the HTTP embedding providers (see the module docstring).

    Args:
        base_url, policy: where requests go and the SSRF policy that allows it.
        secret_headers: auth headers (never shown); headers: other fixed headers.
        extra_headers, allow_auth_override: the block's ``headers:`` (secrets too), checked and merged
            by :func:`~aixpy.http.request_headers`.
        timeout: total seconds per request; connect_timeout: seconds to connect.
        batch_size: texts per request; max_concurrency: requests in flight at once.
        on_request: metrics hooks, one :class:`~aixpy.http.RequestEvent` per request.
    """

    def __init__(
        self,
        *,
        model: str,
        dimensions: int | None,
        base_url: str,
        policy: URLPolicy,
        secret_headers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = 10.0,
        batch_size: int = 64,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        on_request: Sequence[RequestHook] = (),
        extra_headers: Mapping[str, Any] | None = None,
        allow_auth_override: bool = False,
    ) -> None:
        secret_headers = request_headers(extra_headers, secret_headers, fixed=headers or {},
                                         allow_auth_override=allow_auth_override)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}", path="batch_size")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}", path="max_concurrency")
        if not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}", path="timeout")
        super().__init__(model=model, dimensions=dimensions)
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        pool = max(10, 2 * max_concurrency)
        self._http = HttpClient(HttpConfig(
            base_url, policy=policy, provider=self.provider, headers=dict(headers or {}),
            secret_headers=dict(secret_headers or {}), connect_timeout=min(connect_timeout, timeout),
            read_timeout=timeout, write_timeout=timeout, total_timeout=timeout,
            max_connections=pool, max_keepalive_connections=pool), on_request=on_request)

    @property
    def base_url(self) -> str:
        """The base URL, without credentials or query string."""
        return safe_url(self._http.config.base_url)

    def __repr__(self) -> str:
        dims = self._dimensions or "learned"
        return f"{type(self).__name__}(model={self._model!r}, base_url={self.base_url!r}, dims={dims})"

    def _post(self, path: str, body: Any) -> bytes:
        """POST ``body`` as JSON to ``base_url + path``; the 2xx body (errors raise, mapped)."""
        return self._http.request("POST", path, json=body, model=self._model).content

    async def _apost(self, path: str, body: Any) -> bytes:
        """Async twin of :meth:`_post`."""
        return (await self._http.arequest("POST", path, json=body, model=self._model)).content

    def close(self) -> None:
        """Close the sync connection pool (use :meth:`aclose` after async calls)."""
        super().close()
        self._http.close()

    async def aclose(self) -> None:
        """Close both connection pools."""
        super().close()
        await self._http.aclose()
