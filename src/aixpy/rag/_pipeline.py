"""The indexing pipeline's moving parts: a reader thread that loads and chunks files ahead of the
embedder through a bounded buffer, and the two drivers (sync and async) of the indexer's plan.

The indexer is one plan (:mod:`aixpy.policy.plans`): a generator yielding :class:`Step`\\ s (a
collection call, start or await an embedding, walk a folder, start the reader, take its next file).
:func:`run_sync` and :func:`run_async` do those steps; they hold no decision, only the I/O, so the
order of collection writes (what the kill -9 guarantees rest on) is the plan's alone.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from aixpy.embeddings.base import EmbeddingService
from aixpy.policy.plans import Plan, arun, run
from aixpy.rag.loaders import walk
from aixpy.vectorstores.base import BaseCollection

__all__ = ["Reader", "Step", "run_async", "run_sync", "step"]

T = TypeVar("T")
Out = TypeVar("Out")


@dataclass(frozen=True, slots=True)
class Step:
    """One I/O the plan needs: ``kind`` names it (a collection method, ``dims``, ``walk``, ``read``,
    ``next``, ``embed``, ``wait``), ``args`` are its arguments."""

    kind: str
    args: tuple[Any, ...]


def step(kind: str, *args: Any) -> Step:
    return Step(kind, args)


class Reader(Generic[T]):
    """Runs ``prepare`` over ``items`` in a thread, ahead of the consumer, holding at most ``budget``
    units of prepared work (``weight(result)``, e.g. chunks) unconsumed: memory stays flat however
    large the corpus. :meth:`get` returns results in order, then ``None``; an exception raised by
    ``prepare`` is raised by :meth:`get`."""

    def __init__(self, items: Iterable[Any], prepare: Callable[[Any], T], weight: Callable[[T], int],
                 budget: int) -> None:
        self._items, self._prepare, self._weight, self._budget = items, prepare, weight, max(1, budget)
        self._buf: deque[tuple[T, int]] = deque()
        self._held = 0
        self._done = False
        self._error: BaseException | None = None
        self._stop = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="aixpy-index-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                result = self._prepare(item)
                w = self._weight(result)

                def room(w: int = w) -> bool:
                    # one result is always let through, however heavy, so a big file cannot stall the run
                    return self._stop or not self._buf or self._held + w <= self._budget

                with self._cond:
                    self._cond.wait_for(room)
                    if self._stop:
                        return
                    self._buf.append((result, w))
                    self._held += w
                    self._cond.notify_all()
        except BaseException as e:  # handed to the consumer
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def get(self) -> T | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._buf) or self._done)
            if self._buf:
                result, w = self._buf.popleft()
                self._held -= w
                self._cond.notify_all()
                return result
            if self._error is not None:
                raise self._error
            return None

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._buf.clear()
            self._cond.notify_all()
        self._thread.join()


def _walk(root: Path) -> list[tuple[Path, bool]]:
    return list(walk(root))


def run_sync(plan: Plan[Step, Any, Out], coll: BaseCollection, embedder: EmbeddingService,
             reader: Callable[..., Any] = Reader, io_override: dict[str, Callable[..., Any]] | None = None) -> Out:
    """Drive the plan with blocking calls; embeddings run in one worker thread so the plan can write
    the previous batch while the next is embedded. ``reader`` makes the reader of a ``read`` step
    (anything with ``get()`` and ``close()``), ``io_override`` replaces steps' I/O (the Ray engine reads and
    embeds on its cluster)."""
    readers: list[Any] = []

    def read(*args: Any) -> Any:
        readers.append(reader(*args))
        return readers[-1]

    with ThreadPoolExecutor(1, thread_name_prefix="aixpy-embed") as pool:
        io: dict[str, Callable[..., Any]] = {
            "get": coll.get, "upsert": coll.upsert, "upsert_batch": coll.upsert_batch, "delete": coll.delete,
            "count": coll.count, "dims": embedder.dimensions, "walk": _walk, "read": read,
            "next": lambda r: r.get(), "embed": lambda texts: pool.submit(embedder.embed_array, texts),
            "wait": Future.result, **(io_override or {}),
        }
        try:
            return run(plan, lambda s: io[s.kind](*s.args))
        finally:
            for r in readers:
                r.close()


async def run_async(plan: Plan[Step, Any, Out], coll: BaseCollection, embedder: EmbeddingService) -> Out:
    """Drive the plan with awaited calls (the collection's and embedder's async methods); the reader
    is the same thread, waited for without blocking the loop."""
    readers: list[Reader[Any]] = []
    tasks: list[asyncio.Future[Any]] = []

    async def read(*args: Any) -> Reader[Any]:
        readers.append(Reader(*args))
        return readers[-1]

    async def embed(texts: list[str]) -> asyncio.Future[Any]:
        tasks.append(asyncio.ensure_future(embedder.aembed_array(texts)))
        return tasks[-1]

    async def wait(task: asyncio.Future[Any]) -> Any:
        return await task

    io: dict[str, Callable[..., Awaitable[Any]]] = {
        "get": coll.aget, "upsert": coll.aupsert, "upsert_batch": coll.aupsert_batch, "delete": coll.adelete,
        "count": coll.acount, "dims": embedder.adimensions, "walk": lambda root: asyncio.to_thread(_walk, root),
        "read": read, "next": lambda r: asyncio.to_thread(r.get), "embed": embed, "wait": wait,
    }
    try:
        return await arun(plan, lambda s: io[s.kind](*s.args))
    finally:
        for t in tasks:
            t.cancel()
        for r in readers:
            await asyncio.to_thread(r.close)
