"""Single flight: a key already being fetched by one call is not fetched again by another.

A call that misses a cache *claims* each missing key. A key nobody is fetching becomes the call's
own (it sends it); a key another call is fetching right now is *waited for* instead. The owner always
settles its keys when its request ends — with the value, or with ``None`` when it failed or was
cancelled — so a waiter never hangs on a dead flight: it then sends the request itself.

Owners send before they wait, so two calls waiting on each other's keys cannot deadlock. Flights are
:class:`concurrent.futures.Future` objects, so threads (the sync path) and event loops (the async path,
through a shielded :func:`asyncio.wrap_future`) share one registry. Used by the embedding cache (a
vector per text) and the LLM response cache (an answer per request).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Generic, TypeVar

from aixpy.policy.deadline import Deadline

__all__ = ["Flights"]

V = TypeVar("V")


class Flights(Generic[V]):
    """The keys being fetched right now, each with the future its waiters block on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Future[V | None]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def claim(self, keys: Sequence[str]) -> tuple[list[str], dict[str, Future[V | None]]]:
        """Split ``keys`` into the ones this call now owns and the ones it must wait for."""
        own: list[str] = []
        waiting: dict[str, Future[V | None]] = {}
        with self._lock:
            for key in keys:
                flight = self._open.get(key)
                if flight is None:
                    self._open[key] = Future()
                    own.append(key)
                else:
                    waiting[key] = flight
        return own, waiting

    def settle(self, own: Iterable[str], found: Mapping[str, V]) -> None:
        """End the flights of ``own``: waiters get the value from ``found``, or ``None`` if absent."""
        with self._lock:
            ended = [(self._open.pop(key), found.get(key)) for key in own]
        for flight, value in ended:
            if not flight.done():
                flight.set_result(value)

    @staticmethod
    def wait(waiting: Mapping[str, Future[V | None]], deadline: Deadline) -> dict[str, V | None]:
        """The values of ``waiting`` (``None``: the owner failed, or the deadline came first)."""
        out: dict[str, V | None] = {}
        for key, flight in waiting.items():
            try:
                out[key] = flight.result(timeout=deadline.remaining())
            except FutureTimeout:
                out[key] = None
        return out

    @staticmethod
    async def await_(waiting: Mapping[str, Future[V | None]], deadline: Deadline) -> dict[str, V | None]:
        """:meth:`wait` for the event loop (a cancelled waiter never cancels the flight itself)."""
        out: dict[str, V | None] = {}
        for key, flight in waiting.items():
            try:
                out[key] = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(flight)), deadline.remaining())
            except TimeoutError:
                out[key] = None
        return out
