"""``CachedModel``: answer a repeated request from a cache instead of sending it again.

What is cached (``when=``)
    ``"deterministic"`` (the default): only requests whose effective temperature is 0 — the
    request's ``temperature``, else the provider's configured default. A request with no temperature
    anywhere samples at the provider's default (usually 1) and is not cached; a ``seed`` alone does not
    make it cacheable either (providers promise only best-effort determinism with a seed).
    ``"always"``: every request. Or a function ``(ChatRequest) -> bool``.

Key and entries
    A canonical hash of everything that changes the answer — provider, model, endpoint, messages,
    tools, response format, temperature and every other parameter (see :mod:`._cache_codec`). A
    streamed answer is stored as its events and replayed as the same events; a non-streamed one as the
    answer. A stream the caller stopped early, or that failed, is never stored.

Hits
    No request is made: the answer has ``cached=True`` and ``cost_usd == 0`` (its ``usage`` is the
    original call's), ``CallContext.cached`` is set so an :class:`~aixpy.llm.policies.InstrumentedModel`
    above reports ``LLMEvent.cached`` with cost 0, and ``stats()`` counts it.

Concurrent identical misses send one request
    The first call owns the key (single flight, :class:`aixpy.policy.flights.Flights`, shared by
    threads and event loops); the others wait for its entry (bounded by their deadline) and are served
    as hits. If the owner fails or its caller stops reading, the waiters send their own requests.

Backends
    :class:`MemoryResponseCache` — in-process LRU with a TTL (:class:`aixpy.policy.lru.TTLCache`,
    injectable clock); :class:`RedisResponseCache` — shared by processes, TTL via ``EX``. Both default
    to the guide's one hour (``WithCacheTTL(1h)``). Redis being down makes calls uncached, not failed.

Where it sits: outside the retry loop (``CachedModel(RetryModel(FallbackModel([...])))``), so a hit
sends nothing, waits for no rate limit and costs nothing.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing, closing
from typing import Any, Literal, Protocol, runtime_checkable

from aixpy.errors import InvalidInputError
from aixpy.llm.model import CallContext, ChatModel
from aixpy.llm.policies._cache_codec import Entry, cache_key, encode_events, encode_response, target_of
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent
from aixpy.policy._redis import RedisClients, safe_url
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock
from aixpy.policy.flights import Flights
from aixpy.policy.lru import TTLCache

__all__ = ["DEFAULT_TTL", "CachedModel", "MemoryResponseCache", "RedisResponseCache", "ResponseCache",
           "deterministic"]

logger = logging.getLogger("aixpy.llm")

DEFAULT_TTL = 3600.0
"""One hour, the guide's ``WithCacheTTL(1h)``."""

CacheWhen = Literal["deterministic", "always"] | Callable[[ChatRequest], bool]


@runtime_checkable
class ResponseCache(Protocol):
    """Where encoded answers are kept (``None``: absent or expired)."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes) -> None: ...

    async def aget(self, key: str) -> bytes | None: ...

    async def aset(self, key: str, value: bytes) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryResponseCache:
    """In-process LRU of at most ``max_entries`` answers, each kept ``ttl`` seconds (``None``: forever)."""

    def __init__(self, max_entries: int = 1000, ttl: float | None = DEFAULT_TTL, *,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._lru: TTLCache[bytes] = TTLCache(max_entries, ttl, clock=clock)
        self.ttl = ttl

    def get(self, key: str) -> bytes | None:
        return self._lru.get(key)

    def set(self, key: str, value: bytes) -> None:
        self._lru.set(key, value)

    async def aget(self, key: str) -> bytes | None:
        return self._lru.get(key)

    async def aset(self, key: str, value: bytes) -> None:
        self._lru.set(key, value)

    def clear(self) -> None:
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def stats(self) -> dict[str, Any]:
        return {"backend": "memory", "ttl": self.ttl, **self._lru.stats()}

    def close(self) -> None:
        self.clear()

    async def aclose(self) -> None:
        self.clear()

    def __repr__(self) -> str:
        return f"MemoryResponseCache(max_entries={self._lru.max_entries}, ttl={self.ttl})"


class RedisResponseCache:
    """Answers in Redis under ``prefix + key`` with ``EX ttl`` (``pip install 'aixpy[redis]'``).

    A failing Redis makes the call uncached (logged; ``stats()["errors"]``), or raises
    :class:`~aixpy.errors.StoreError` with ``strict=True``. The URL's password never appears anywhere.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, ttl: float | None = DEFAULT_TTL,
                 prefix: str = "aixpy:llm:", strict: bool = False, socket_timeout: float = 2.0) -> None:
        if ttl is not None and ttl <= 0:
            raise InvalidInputError("ttl must be positive (or None for no expiry)")
        self.ttl = ttl
        self.prefix = prefix
        self._ex = None if ttl is None else max(1, math.ceil(ttl))
        self._redis = RedisClients(url, what="redis response cache", logger=logger, strict=strict,
                                   socket_timeout=socket_timeout)

    def get(self, key: str) -> bytes | None:
        try:
            raw: bytes | None = self._redis.sync().get(self.prefix + key)
        except self._redis.caught as e:
            self._redis.failed("lookup", e, "calling uncached")
            return None
        return raw

    def set(self, key: str, value: bytes) -> None:
        try:
            self._redis.sync().set(self.prefix + key, value, ex=self._ex)
        except self._redis.caught as e:
            self._redis.failed("write", e, "answer not cached")

    async def aget(self, key: str) -> bytes | None:
        try:
            raw: bytes | None = await self._redis.async_().get(self.prefix + key)
        except self._redis.caught as e:
            self._redis.failed("lookup", e, "calling uncached")
            return None
        return raw

    async def aset(self, key: str, value: bytes) -> None:
        try:
            await self._redis.async_().set(self.prefix + key, value, ex=self._ex)
        except self._redis.caught as e:
            self._redis.failed("write", e, "answer not cached")

    def stats(self) -> dict[str, Any]:
        return {"backend": "redis", "ttl": self.ttl, "errors": self._redis.errors}

    def close(self) -> None:
        self._redis.close()

    async def aclose(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisResponseCache({safe_url(self._redis.url)!r}, ttl={self.ttl}, prefix={self.prefix!r})"


def _default_temperature(target: Any) -> float | None:
    while isinstance(target, list):  # a fallback chain: the primary's default
        target = target[0] if target else None
    return target.get("temperature") if isinstance(target, dict) else None


def deterministic(req: ChatRequest, default_temperature: float | None = None) -> bool:
    """Whether ``req`` is cached by the default rule: its effective temperature is 0."""
    temperature = req.temperature if req.temperature is not None else default_temperature
    return temperature == 0


class CachedModel(ChatModel):
    """Caches the answers of ``inner`` in ``backend`` (default: a :class:`MemoryResponseCache` of 1 h)."""

    def __init__(self, inner: ChatModel, backend: ResponseCache | None = None, *, when: CacheWhen = "deterministic",
                 ttl: float | None = DEFAULT_TTL) -> None:
        super().__init__(provider=inner.provider, model=inner.model, capabilities=inner.capabilities,
                         timeout=inner.timeout, clock=inner.clock)
        if not callable(when) and when not in ("deterministic", "always"):
            raise InvalidInputError(f"when must be 'deterministic', 'always' or a function, not {when!r}")
        self.inner = inner
        self.backend: ResponseCache = backend if backend is not None else MemoryResponseCache(ttl=ttl,
                                                                                             clock=inner.clock)
        self.when = when
        self._target = target_of(inner)
        self._default_temperature = _default_temperature(self._target)
        self._flights: Flights[bytes] = Flights()
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "coalesced": 0, "skipped": 0}

    def __repr__(self) -> str:
        return f"CachedModel({self.inner!r}, backend={self.backend!r})"

    # ------------------------------------------------------------------ shared, no I/O

    def key(self, req: ChatRequest) -> str | None:
        """The cache key of ``req``, or ``None`` when the ``when`` rule says not to cache it."""
        when = self.when
        if when == "always" or (deterministic(req, self._default_temperature) if when == "deterministic"
                                else callable(when) and when(req)):
            return cache_key(self._target, req)
        self._count("skipped")
        return None

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def stats(self) -> dict[str, Any]:
        """``hits``, ``misses``, ``coalesced`` (served by another call's request), ``skipped`` (not
        cacheable), ``hit_rate`` and the backend's counters."""
        with self._lock:
            counts = dict(self._counts)
        asked = counts["hits"] + counts["misses"] + counts["coalesced"]
        served = counts["hits"] + counts["coalesced"]
        return {**counts, "hit_rate": served / asked if asked else 0.0, **self.backend.stats()}

    def _served(self, raw: bytes | None, ctx: CallContext, counter: str) -> Entry | None:
        if raw is None:
            return None
        try:
            entry = Entry(raw)
        except (ValueError, TypeError, KeyError):
            logger.warning("ignoring an unreadable LLM cache entry")
            return None
        entry.serve(ctx)
        self._count(counter)
        return entry

    def _claim(self, key: str) -> tuple[list[str], dict[str, Any]]:
        own, waiting = self._flights.claim([key])
        if own:
            self._count("misses")
        return own, waiting

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        key = self.key(req)
        if key is None:
            return self.inner._chat(req, ctx)
        entry = self._served(self.backend.get(key), ctx, "hits")
        if entry is not None:
            return entry.response()
        own, waiting = self._claim(key)
        if waiting:
            entry = self._served(self._flights.wait(waiting, ctx.deadline)[key], ctx, "coalesced")
            if entry is not None:
                return entry.response()
            self._count("misses")
        found: dict[str, bytes] = {}
        try:
            resp = self.inner._chat(req, ctx)
            found[key] = encode_response(resp, ctx)
            self.backend.set(key, found[key])
        finally:
            self._flights.settle(own, found)
        return resp

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        key = self.key(req)
        return self.inner._stream(req, ctx) if key is None else self._cached_stream(req, ctx, key)

    def _cached_stream(self, req: ChatRequest, ctx: CallContext, key: str) -> Generator[StreamEvent, None, None]:
        entry = self._served(self.backend.get(key), ctx, "hits")
        if entry is not None:
            yield from entry.events()
            return
        own, waiting = self._claim(key)
        if waiting:
            entry = self._served(self._flights.wait(waiting, ctx.deadline)[key], ctx, "coalesced")
            if entry is not None:
                yield from entry.events()
                return
            self._count("misses")
        found: dict[str, bytes] = {}
        seen: list[StreamEvent] = []
        try:
            with closing(self.inner._stream(req, ctx)) as events:
                for event in events:
                    seen.append(event)
                    yield event
            found[key] = encode_events(seen, ctx)
            self.backend.set(key, found[key])
        finally:
            self._flights.settle(own, found)

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.inner._list_models(ctx)

    def close(self) -> None:
        self.inner.close()
        self.backend.close()

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        key = self.key(req)
        if key is None:
            return await self.inner._achat(req, ctx)
        entry = self._served(await self.backend.aget(key), ctx, "hits")
        if entry is not None:
            return entry.response()
        own, waiting = self._claim(key)
        if waiting:
            entry = self._served((await self._flights.await_(waiting, ctx.deadline))[key], ctx, "coalesced")
            if entry is not None:
                return entry.response()
            self._count("misses")
        found: dict[str, bytes] = {}
        try:
            resp = await self.inner._achat(req, ctx)
            found[key] = encode_response(resp, ctx)
            await self.backend.aset(key, found[key])
        finally:
            self._flights.settle(own, found)
        return resp

    def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        key = self.key(req)
        return self.inner._astream(req, ctx) if key is None else self._acached_stream(req, ctx, key)

    async def _acached_stream(self, req: ChatRequest, ctx: CallContext,
                              key: str) -> AsyncGenerator[StreamEvent, None]:
        entry = self._served(await self.backend.aget(key), ctx, "hits")
        if entry is None:
            own, waiting = self._claim(key)
            if waiting:
                entry = self._served((await self._flights.await_(waiting, ctx.deadline))[key], ctx, "coalesced")
                if entry is None:
                    self._count("misses")
        if entry is not None:
            for event in entry.events():
                yield event
            return
        found: dict[str, bytes] = {}
        seen: list[StreamEvent] = []
        try:
            async with aclosing(self.inner._astream(req, ctx)) as events:
                async for event in events:
                    seen.append(event)
                    yield event
            found[key] = encode_events(seen, ctx)
            await self.backend.aset(key, found[key])
        finally:
            self._flights.settle(own, found)

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.inner._alist_models(ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()
        await self.backend.aclose()
