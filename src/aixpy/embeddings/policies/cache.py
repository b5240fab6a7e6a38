"""``CachedEmbeddings``: embed each text once; later calls are answered from a cache.

Key
    ``"v1:" + sha256("provider|model|dimensions|normalize|text")`` (hex). The version prefix changes
    if the vector encoding ever does; ``normalize`` is ``1``/``0`` when the service says whether it
    L2-normalises (TEI's ``normalize:``), else ``-``. A different model, dimension count or provider
    never shares an entry.

Batches
    ``embed_batch`` looks every text up at once and sends only the misses to the inner service, in
    one call; a text repeated inside one batch is sent once. When the inner service fails part of a
    batch (:class:`~aixpy.errors.PartialBatchError`), the vectors that did come back are cached and
    the error is re-raised with indexes into *your* list and every vector known (cached or new).

Concurrent calls
    A text that another call is embedding right now is not sent again: the second call waits for
    the first one's vector (single-flight, see ``_flights``). If the first call fails or is
    cancelled, the waiter sends the text itself; a wait never outlasts the caller's deadline.

Backends
    :class:`MemoryCache` — in-process LRU with ``max_entries`` and an optional TTL (injectable clock).
    :class:`~aixpy.embeddings.policies.redis_cache.RedisCache` — shared, float32 bytes, TTL via ``EX``.
    A cached vector whose length is not ``dimensions()`` is never returned: it counts as a miss.

``stats()`` returns ``hits`` (texts answered from the cache), ``misses`` (distinct texts sent to the
provider), ``duplicates`` (repeats inside a batch served by one embedding), ``coalesced`` (texts
answered by another call's in-flight request) plus the backend's own counters (size, evictions,
errors...).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aixpy.embeddings.base import EmbeddingService, EmbeddingUsage, Matrix
from aixpy.embeddings.policies._attempts import partial_error, usage_of
from aixpy.embeddings.policies._flights import Flight, Flights
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.errors import PartialBatchError, ResponseFormatError
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock
from aixpy.policy.lru import TTLCache

__all__ = ["KEY_VERSION", "CacheBackend", "CachedEmbeddings", "MemoryCache", "cache_key"]

KEY_VERSION = "v1"
Vector = npt.NDArray[np.float32]


def cache_key(provider: str, model: str, dimensions: int, normalize: bool | None, text: str) -> str:
    """The cache key of one text (see the module docstring)."""
    flag = "-" if normalize is None else ("1" if normalize else "0")
    digest = hashlib.sha256(f"{provider}|{model}|{dimensions}|{flag}|{text}".encode()).hexdigest()
    return f"{KEY_VERSION}:{digest}"


@runtime_checkable
class CacheBackend(Protocol):
    """Where vectors are kept. ``get_many`` returns one entry per key (``None``: absent or expired)."""

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]: ...

    def set_many(self, items: dict[str, Vector]) -> None: ...

    async def aget_many(self, keys: Sequence[str]) -> list[Vector | None]: ...

    async def aset_many(self, items: dict[str, Vector]) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryCache:
    """Thread-safe in-process LRU: at most ``max_entries`` vectors, each kept ``ttl`` seconds (``None``: forever).

    The LRU itself is :class:`aixpy.policy.lru.TTLCache`; this backend stores read-only copies of the vectors.
    """

    def __init__(self, max_entries: int = 10_000, ttl: float | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._lru: TTLCache[Vector] = TTLCache(max_entries, ttl, clock=clock)
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock

    def get_many(self, keys: Sequence[str]) -> list[Vector | None]:
        return self._lru.get_many(keys)

    def set_many(self, items: dict[str, Vector]) -> None:
        stored: dict[str, Vector] = {}
        for key, vec in items.items():
            copy = np.array(vec, dtype=np.float32, copy=True)
            copy.setflags(write=False)
            stored[key] = copy
        self._lru.set_many(stored)

    async def aget_many(self, keys: Sequence[str]) -> list[Vector | None]:
        return self.get_many(keys)

    async def aset_many(self, items: dict[str, Vector]) -> None:
        self.set_many(items)

    def clear(self) -> None:
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    def stats(self) -> dict[str, Any]:
        return {"backend": "memory", **self._lru.stats()}

    def close(self) -> None:
        self.clear()

    async def aclose(self) -> None:
        self.clear()

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, ttl={self.ttl})"


class _Lookup:
    """One batch's plan: which distinct texts are cached, which must be embedded (no I/O here)."""

    def __init__(self, texts: list[str], keys: list[str], dims: int) -> None:
        self.keys = keys
        self.dims = dims
        self.unique: list[str] = list(dict.fromkeys(keys))
        self.found: dict[str, Vector] = {}
        self.missing: list[str] = []
        self.first_text: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            self.first_text.setdefault(key, text)

    def take(self, cached: list[Vector | None]) -> None:
        for key, vec in zip(self.unique, cached, strict=True):
            if vec is not None and vec.shape == (self.dims,):
                self.found[key] = vec
            else:
                self.missing.append(key)

    def arrived(self, waited: dict[str, Vector | None]) -> list[str]:
        """Keep the vectors other calls delivered; the keys that did not arrive become the misses."""
        late: list[str] = []
        for key, vec in waited.items():
            if vec is not None and vec.shape == (self.dims,):
                self.found[key] = vec
            else:
                late.append(key)
        self.missing = late
        return late

    @property
    def miss_texts(self) -> list[str]:
        return [self.first_text[k] for k in self.missing]

    def fresh(self, matrix: Matrix) -> dict[str, Vector]:
        if matrix.shape != (len(self.missing), self.dims):
            expected = (len(self.missing), self.dims)
            raise ResponseFormatError(f"service returned shape {matrix.shape}, expected {expected}")
        new = {key: matrix[i] for i, key in enumerate(self.missing)}
        self.found.update(new)
        return new

    def fresh_partial(self, err: PartialBatchError) -> dict[str, Vector]:
        new: dict[str, Vector] = {}
        failed = set(err.failed)
        for i, key in enumerate(self.missing):
            vec = err.vectors[i] if i < len(err.vectors) else None
            if vec is not None and i not in failed:
                arr = np.asarray(vec, dtype=np.float32)
                if arr.shape == (self.dims,):
                    new[key] = arr
        self.found.update(new)
        return new

    def assemble(self) -> Matrix:
        out = np.empty((len(self.keys), self.dims), dtype=np.float32)
        for i, key in enumerate(self.keys):
            out[i] = self.found[key]
        return out

    def partial(self, err: PartialBatchError) -> PartialBatchError:
        """``err`` re-indexed onto the caller's texts, with every vector known (cached or new)."""
        failed = [i for i, k in enumerate(self.keys) if k not in self.found]
        vectors = [self.found[k].tolist() if k in self.found else None for k in self.keys]
        return partial_error(failed, err.errors, vectors, usage_of(err) or EmbeddingUsage(0, 0),
                             provider=err.provider, model=err.model)


class CachedEmbeddings(EmbeddingWrapper):
    """Caches the vectors of ``inner`` in ``backend`` (default: a 10,000-entry :class:`MemoryCache`).

    The usage returned is that of the misses only (hits cost nothing).
    """

    def __init__(self, inner: EmbeddingService, backend: CacheBackend | None = None, **kw: Any) -> None:
        super().__init__(inner, **kw)
        self.backend: CacheBackend = backend if backend is not None else MemoryCache(clock=self.clock)
        self._lock = threading.Lock()
        self._flights = Flights()
        self._hits = self._misses = self._duplicates = self._coalesced = 0

    def key(self, text: str, dimensions: int | None = None) -> str:
        """The cache key of ``text`` for this service."""
        dims = dimensions if dimensions is not None else self.dimensions()
        return cache_key(self.provider, self._model, dims, self.normalize, text)

    def stats(self) -> dict[str, Any]:
        """Counters since creation: ``hits``, ``misses``, ``duplicates``, ``hit_rate`` and the backend's."""
        with self._lock:
            hits, misses, dups, coalesced = self._hits, self._misses, self._duplicates, self._coalesced
        asked = hits + misses
        return {"hits": hits, "misses": misses, "duplicates": dups, "coalesced": coalesced,
                "hit_rate": hits / asked if asked else 0.0, **self.backend.stats()}

    def _lookup(self, texts: list[str], dims: int) -> _Lookup:
        return _Lookup(texts, [self.key(t, dims) for t in texts], dims)

    def _count(self, plan: _Lookup) -> None:
        """Count one lookup; ``plan.missing`` is every key not in the cache (in flight or not)."""
        missing = set(plan.missing)
        with self._lock:
            self._hits += sum(1 for k in plan.keys if k not in missing)
            self._misses += len(plan.missing)
            self._duplicates += sum(1 for k in plan.keys if k in missing) - len(plan.missing)

    def _claim(self, plan: _Lookup) -> tuple[list[str], dict[str, Flight]]:
        """Own the misses nobody is embedding; the rest are waited for (counted as coalesced)."""
        self._count(plan)
        own, waiting = self._flights.claim(plan.missing)
        plan.missing = own
        with self._lock:
            self._misses -= len(waiting)
            self._coalesced += len(waiting)
        return own, waiting

    def _late(self, plan: _Lookup, waited: dict[str, Vector | None]) -> bool:
        """Take what other calls delivered; ``True`` when some keys must still be sent by this call."""
        late = plan.arrived(waited)
        with self._lock:
            self._misses += len(late)
            self._coalesced -= len(late)
        return bool(late)

    def _send(self, plan: _Lookup) -> EmbeddingUsage:
        if not plan.missing:
            return EmbeddingUsage(0, 0)
        try:
            matrix, usage = self.inner.embed_with_usage(plan.miss_texts)
        except PartialBatchError as e:
            new = plan.fresh_partial(e)
            if new:
                self.backend.set_many(new)
            raise plan.partial(e) from e
        self.backend.set_many(plan.fresh(matrix))
        return usage

    async def _asend(self, plan: _Lookup) -> EmbeddingUsage:
        if not plan.missing:
            return EmbeddingUsage(0, 0)
        try:
            matrix, usage = await self.inner.aembed_with_usage(plan.miss_texts)
        except PartialBatchError as e:
            new = plan.fresh_partial(e)
            if new:
                await self.backend.aset_many(new)
            raise plan.partial(e) from e
        await self.backend.aset_many(plan.fresh(matrix))
        return usage

    def _run(self, texts: list[str]) -> Result:
        plan = self._lookup(texts, self.dimensions())
        plan.take(self.backend.get_many(plan.unique))
        own, waiting = self._claim(plan)
        try:
            usage = self._send(plan)
        finally:
            self._flights.settle(own, plan.found)
        if waiting and self._late(plan, self._flights.wait(waiting, self._deadline())):
            usage += self._send(plan)
        return plan.assemble(), usage

    async def _arun(self, texts: list[str]) -> Result:
        plan = self._lookup(texts, await self.adimensions())
        plan.take(await self.backend.aget_many(plan.unique))
        own, waiting = self._claim(plan)
        try:
            usage = await self._asend(plan)
        finally:
            self._flights.settle(own, plan.found)
        if waiting and self._late(plan, await self._flights.await_(waiting, self._deadline())):
            usage += await self._asend(plan)
        return plan.assemble(), usage

    def close(self) -> None:
        self.backend.close()
        super().close()

    async def aclose(self) -> None:
        await self.backend.aclose()
        await super().aclose()

    def __repr__(self) -> str:
        return f"CachedEmbeddings({self.inner!r}, backend={self.backend!r})"
