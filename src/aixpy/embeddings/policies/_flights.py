"""Single-flight for the cache: a text already being embedded by one call is not sent again by another.

A call that misses the cache *claims* each missing key. A key nobody is embedding becomes the call's
own (it sends it); a key another call is embedding right now is *waited for* instead. The owner always
settles its keys when its request ends — with the vector, or with ``None`` when it failed or was
cancelled — so a waiter never hangs on a dead flight: it then sends the text itself.

Owners send before they wait, so two calls waiting on each other's keys cannot deadlock. Flights are
:class:`concurrent.futures.Future` objects, so threads (the sync path) and event loops (the async path,
through a shielded :func:`asyncio.wrap_future`) share one registry.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import numpy.typing as npt

from aixpy.policy.deadline import Deadline

__all__ = ["Flights"]

Vector = npt.NDArray[np.float32]
Flight = Future[Vector | None]


class Flights:
    """The keys being embedded right now, each with the future its waiters block on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Flight] = {}

    def __len__(self) -> int:
        return len(self._open)

    def claim(self, keys: Sequence[str]) -> tuple[list[str], dict[str, Flight]]:
        """Split ``keys`` into the ones this call now owns and the ones it must wait for."""
        own: list[str] = []
        waiting: dict[str, Flight] = {}
        with self._lock:
            for key in keys:
                flight = self._open.get(key)
                if flight is None:
                    self._open[key] = Future()
                    own.append(key)
                else:
                    waiting[key] = flight
        return own, waiting

    def settle(self, own: Iterable[str], found: Mapping[str, Vector]) -> None:
        """End the flights of ``own``: waiters get the vector from ``found``, or ``None`` if absent."""
        with self._lock:
            ended = [(self._open.pop(key), found.get(key)) for key in own]
        for flight, vector in ended:
            if not flight.done():
                flight.set_result(vector)

    @staticmethod
    def wait(waiting: Mapping[str, Flight], deadline: Deadline) -> dict[str, Vector | None]:
        """The vectors of ``waiting`` (``None``: the owner failed, or the deadline came first)."""
        out: dict[str, Vector | None] = {}
        for key, flight in waiting.items():
            try:
                out[key] = flight.result(timeout=deadline.remaining())
            except FutureTimeout:
                out[key] = None
        return out

    @staticmethod
    async def await_(waiting: Mapping[str, Flight], deadline: Deadline) -> dict[str, Vector | None]:
        """:meth:`wait` for the event loop (a cancelled waiter never cancels the flight itself)."""
        out: dict[str, Vector | None] = {}
        for key, flight in waiting.items():
            try:
                out[key] = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(flight)), deadline.remaining())
            except TimeoutError:
                out[key] = None
        return out
