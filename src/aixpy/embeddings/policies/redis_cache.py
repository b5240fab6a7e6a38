"""``RedisCache``: a cache backend shared by processes and machines (``pip install 'aixpy[redis]'``).

Vectors are stored as little-endian float32 bytes under ``prefix + key``, each with ``EX ttl``
(whole seconds, rounded up) when a TTL is set. A batch is one ``MGET`` and one pipelined series of
``SET``; sync calls use ``redis.Redis``, async calls ``redis.asyncio.Redis`` (one client per event
loop: call ``aclose()`` before the loop ends).

When Redis is down or slow
    By default the embedding call still works, **uncached**: the failed lookup counts as misses, the
    failed write is dropped, ``stats()["errors"]`` grows and a warning is logged (the first failure,
    then every 100th). With ``strict=True`` the call raises :class:`~aixpy.errors.StoreError` instead.
    A stored value of the wrong size is never returned (it is a miss, counted in ``corrupt``).

The URL may hold a password: it never appears in logs, errors or ``repr``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from aixpy.embeddings.policies.cache import Vector
from aixpy.errors import StoreError
from aixpy.policy._redis import RedisClients, safe_url

__all__ = ["RedisCache"]

logger = logging.getLogger("aixpy.embeddings")

class RedisCache:
    """Cache backend on Redis. ``ttl`` in seconds (``None``: keep until evicted by Redis)."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, ttl: float | None = None,
                 prefix: str = "aixpy:emb:", strict: bool = False, socket_timeout: float = 2.0) -> None:
        if ttl is not None and ttl <= 0:
            raise StoreError("ttl must be positive (or None for no expiry)")
        self._redis = RedisClients(url, what="redis cache", logger=logger, strict=strict,
                                   socket_timeout=socket_timeout)
        self._url = url
        self.ttl = ttl
        self.prefix = prefix
        self.strict = strict
        self.socket_timeout = socket_timeout
        self._lock = threading.Lock()
        self._corrupt = 0

    def _sync(self) -> Any:
        return self._redis.sync()

    def _async(self) -> Any:
        return self._redis.async_()

    # ------------------------------------------------------------------ encoding (no I/O)

    def _decode(self, raw: Any) -> Vector | None:
        if raw is None:
            return None
        if not isinstance(raw, bytes) or len(raw) % 4:
            with self._lock:
                self._corrupt += 1
            return None
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def _entries(self, items: dict[str, Vector]) -> list[tuple[str, bytes]]:
        return [(self.prefix + k, np.asarray(v, dtype="<f4").tobytes()) for k, v in items.items()]

    def _ex(self) -> int | None:
        return None if self.ttl is None else max(1, math.ceil(self.ttl))

    def _failed(self, op: str, err: BaseException) -> None:
        self._redis.failed(op, err, "embedding uncached")

    def _errors_caught(self) -> tuple[type[BaseException], ...]:
        return self._redis.caught

    # ------------------------------------------------------------------ the backend protocol

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        try:
            raw = self._sync().mget([self.prefix + k for k in keys])
        except self._errors_caught() as e:
            self._failed("lookup", e)
            return [None] * len(keys)
        return [self._decode(r) for r in raw]

    def set_many(self, items: dict[str, Vector]) -> None:
        try:
            pipe = self._sync().pipeline(transaction=False)
            for key, data in self._entries(items):
                pipe.set(key, data, ex=self._ex())
            pipe.execute()
        except self._errors_caught() as e:
            self._failed("write", e)

    async def aget_many(self, keys: Sequence[str]) -> list[Vector | None]:
        try:
            raw = await self._async().mget([self.prefix + k for k in keys])
        except self._errors_caught() as e:
            self._failed("lookup", e)
            return [None] * len(keys)
        return [self._decode(r) for r in raw]

    async def aset_many(self, items: dict[str, Vector]) -> None:
        try:
            pipe = self._async().pipeline(transaction=False)
            for key, data in self._entries(items):
                pipe.set(key, data, ex=self._ex())
            await pipe.execute()
        except self._errors_caught() as e:
            self._failed("write", e)

    def stats(self) -> dict[str, Any]:
        return {"backend": "redis", "errors": self._redis.errors, "corrupt": self._corrupt, "ttl": self.ttl}

    def close(self) -> None:
        self._redis.close()

    async def aclose(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisCache({safe_url(self._url)!r}, ttl={self.ttl}, prefix={self.prefix!r})"
