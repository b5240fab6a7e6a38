"""``TTLCache``: a thread-safe in-process LRU whose entries may expire, on an injectable clock.

The memory backend of the embedding cache (vectors) and of the LLM response cache (encoded answers)
share it. At most ``max_entries`` entries are kept (the least recently used goes first); each lives
``ttl`` seconds from when it was written (``None``: until evicted), read on :class:`Clock` so tests
expire entries on a :class:`~aixpy.policy.deadline.ManualClock`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from aixpy.errors import InvalidInputError
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock

__all__ = ["TTLCache"]

V = TypeVar("V")


class TTLCache(Generic[V]):
    """At most ``max_entries`` values, each kept ``ttl`` seconds (``None``: forever)."""

    def __init__(self, max_entries: int = 10_000, ttl: float | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if max_entries < 1:
            raise InvalidInputError("max_entries must be at least 1")
        if ttl is not None and ttl <= 0:
            raise InvalidInputError("ttl must be positive (or None for no expiry)")
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock
        self._data: OrderedDict[str, tuple[V, float | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.evictions = 0
        self.expired = 0

    def get(self, key: str) -> V | None:
        """The value of ``key``, or ``None`` when absent or expired (an expired entry is dropped)."""
        return self.get_many((key,))[0]

    def get_many(self, keys: Sequence[str]) -> list[V | None]:
        now = self.clock.now() if self.ttl is not None else 0.0
        out: list[V | None] = []
        with self._lock:
            for key in keys:
                entry = self._data.get(key)
                if entry is not None and entry[1] is not None and entry[1] <= now:
                    del self._data[key]
                    self.expired += 1
                    entry = None
                if entry is not None:
                    self._data.move_to_end(key)
                out.append(None if entry is None else entry[0])
        return out

    def set(self, key: str, value: V) -> None:
        self.set_many({key: value})

    def set_many(self, items: Mapping[str, V]) -> None:
        expires = None if self.ttl is None else self.clock.now() + self.ttl
        with self._lock:
            for key, value in items.items():
                self._data[key] = (value, expires)
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
                self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, Any]:
        """``size``, ``max_entries``, ``evictions`` and ``expired``."""
        with self._lock:
            return {"size": len(self._data), "max_entries": self.max_entries, "evictions": self.evictions,
                    "expired": self.expired}
