"""Drivers of the ``pgvector`` backend's plans, sync and async, and its lazily opened async pool.

Every database operation of the backend is written once as a :data:`~aixpy.vectorstores._pg_sql.Plan`
(a generator of :class:`~aixpy.vectorstores._pg_sql.Stmt`). :func:`drive` runs a plan on a psycopg
cursor, :func:`adrive` on an async cursor; the two differ only in ``await``, so the sync and async
paths run the same SQL and decode results with the same code.

:class:`AsyncPools` holds the store's ``psycopg_pool.AsyncConnectionPool``: opened on first async use
inside the running event loop (one pool per loop, since asyncio objects belong to their loop), closed
by ``await aclose()`` or, best effort, by a synchronous ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from aixpy.errors import StoreError
from aixpy.vectorstores._pg_sql import Plan, Stmt

__all__ = ["IN_ASYNC", "AsyncPools", "adrive", "async_call", "drive", "start"]

T = TypeVar("T")
_NOT_STARTED: Any = object()


#: Set while a native async method validates its input: it refreshed the collection's dimensions with
#: ``await`` just before, so the sync catalog lookup of ``_shared_dimensions`` must not block the loop.
IN_ASYNC: ContextVar[bool] = ContextVar("aixpy_pgvector_async", default=False)


@contextlib.contextmanager
def async_call() -> Iterator[None]:
    token = IN_ASYNC.set(True)
    try:
        yield
    finally:
        IN_ASYNC.reset(token)


# ------------------------------------------------------------------ one statement


def _run(cur: Any, stmt: Stmt) -> Any:
    if stmt.copy_types is not None:
        with cur.copy(stmt.sql, stmt.params) as copy:
            copy.set_types(stmt.copy_types)
            for row in stmt.many or ():
                copy.write_row(row)
        return None
    if stmt.many is not None:
        cur.executemany(stmt.sql, stmt.many)
        return None
    cur.execute(stmt.sql, stmt.params)
    if stmt.fetch == "all":
        return cur.fetchall()
    return cur.fetchone() if stmt.fetch == "one" else None


async def _arun(cur: Any, stmt: Stmt) -> Any:
    if stmt.copy_types is not None:
        async with cur.copy(stmt.sql, stmt.params) as copy:
            copy.set_types(stmt.copy_types)
            for row in stmt.many or ():
                await copy.write_row(row)
        return None
    if stmt.many is not None:
        await cur.executemany(stmt.sql, stmt.many)
        return None
    await cur.execute(stmt.sql, stmt.params)
    if stmt.fetch == "all":
        return await cur.fetchall()
    return await cur.fetchone() if stmt.fetch == "one" else None


# ------------------------------------------------------------------ whole plans


def start(plan: Plan[T]) -> tuple[Stmt | None, T]:
    """Run ``plan`` up to its first statement: ``(stmt, _)``, or ``(None, value)`` when it needs no
    database at all (then no connection is taken)."""
    try:
        return next(plan), _NOT_STARTED
    except StopIteration as stop:
        return None, stop.value


def drive(cur: Any, plan: Plan[T], first: Stmt | None = None) -> T:
    """Run ``plan`` (from ``first`` if it was started with :func:`start`) on a psycopg cursor."""
    try:
        stmt = first if first is not None else next(plan)
        while True:
            stmt = plan.send(_run(cur, stmt))
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        plan.close()


async def adrive(cur: Any, plan: Plan[T], first: Stmt | None = None) -> T:
    """:func:`drive` on a psycopg async cursor."""
    try:
        stmt = first if first is not None else next(plan)
        while True:
            stmt = plan.send(await _arun(cur, stmt))
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        plan.close()


# ------------------------------------------------------------------ the async pool


def _finish_idle(pool: Any) -> None:
    """Last resort when the pool's loop cannot run any more: close its idle connections directly."""
    for conn in list(getattr(pool, "_pool", ())):
        with contextlib.suppress(Exception):
            conn.pgconn.finish()


class _Entry:
    """The pool of one event loop, with a guard task that closes it if the loop shuts down first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Any, open_timeout: float, wait: bool) -> None:
        self.loop, self.pool = loop, pool
        self.done = asyncio.Event()
        self.opening: asyncio.Task[None] = loop.create_task(self._open(open_timeout, wait))
        self.guard = loop.create_task(self._guard(), name=f"{getattr(pool, 'name', 'pool')}-guard")

    async def _open(self, timeout: float, wait: bool) -> None:
        try:
            await self.pool.open(wait=wait, timeout=timeout)
        except BaseException:
            self.done.set()  # nothing for the guard to do
            await self.pool.close()
            raise

    async def _guard(self) -> None:
        # asyncio.run() and Runner cancel every task at exit. psycopg_pool's tasks survive a
        # cancellation that hits them while connecting, which would hang that shutdown: unless the
        # pool was closed already, close it (which stops them) when this task is cancelled.
        try:
            await self.done.wait()
        finally:
            if not self.done.is_set():
                self.done.set()
                await self._close_pool()

    async def _close_pool(self) -> None:
        if not self.opening.done():
            self.opening.cancel()
        await asyncio.wait({self.opening})
        idle = list(getattr(self.pool, "_pool", ()))  # psycopg_pool's idle connections
        try:
            await self.pool.close()
        finally:
            # At loop shutdown the pool's tasks were cancelled too, and its close() then stops with
            # their CancelledError before closing the idle connections: close them here.
            for conn in idle:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def close(self) -> None:
        if not self.done.is_set():  # else closed already, or being closed by the guard
            self.done.set()
            await self._close_pool()
        await asyncio.wait({self.guard})  # leave no task behind


class AsyncPools:
    """The async connection pool of one store, per event loop, opened on first use in that loop.

    ``factory()`` builds an unopened ``AsyncConnectionPool``; it is opened with
    ``open(wait=wait, timeout=open_timeout)`` once, however many tasks ask for it at the same time.
    """

    def __init__(self, factory: Callable[[], Any], *, open_timeout: float, wait: bool) -> None:
        self._factory, self._timeout, self._wait = factory, open_timeout, wait
        self._entries: dict[asyncio.AbstractEventLoop, _Entry] = {}
        self._mutex = threading.Lock()  # held for dict updates only, never across an await
        self._closing: set[asyncio.Task[None]] = set()
        self.closed = False

    def opened(self) -> int:
        """How many pools (event loops) are open now."""
        with self._mutex:
            return len(self._entries)

    async def get(self) -> Any:
        """The pool of the running loop, opened (raises what opening raised, e.g. ``PoolTimeout``)."""
        loop = asyncio.get_running_loop()
        with self._mutex:
            if self.closed:
                raise StoreError("pgvector store is closed")
            dead = [lp for lp in self._entries if lp.is_closed()]
            for lp in dead:
                _finish_idle(self._entries.pop(lp).pool)
            entry = self._entries.get(loop)
            if entry is None:
                entry = self._entries[loop] = _Entry(loop, self._factory(), self._timeout, self._wait)
        try:
            await asyncio.shield(entry.opening)
        except BaseException:
            if entry.opening.done() and not entry.opening.cancelled() and entry.opening.exception() is not None:
                with self._mutex:  # failed to open: the next call tries again
                    if self._entries.get(loop) is entry:
                        del self._entries[loop]
            raise
        return entry.pool

    def _take_all(self) -> list[_Entry]:
        with self._mutex:
            self.closed = True
            entries = list(self._entries.values())
            self._entries.clear()
        return entries

    async def aclose(self) -> None:
        """Close every pool: the running loop's by awaiting it, the others as :meth:`close` does."""
        running = asyncio.get_running_loop()
        for entry in self._take_all():
            if entry.loop is running:
                await entry.close()
            else:
                self._close_elsewhere(entry, running)
        if self._closing:
            await asyncio.gather(*[t for t in self._closing if t.get_loop() is running], return_exceptions=True)

    def close(self) -> None:
        """Best effort from synchronous code: the pool is closed now if its loop is idle (or already
        gone), else the close is scheduled on its loop. From async code, prefer :meth:`aclose`."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for entry in self._take_all():
            self._close_elsewhere(entry, running)

    def _close_elsewhere(self, entry: _Entry, running: asyncio.AbstractEventLoop | None) -> None:
        loop = entry.loop
        if loop.is_closed():
            _finish_idle(entry.pool)
        elif loop is running:  # sync close() called inside this loop: finish the close in a task
            task = loop.create_task(entry.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(entry.close(), loop)
        elif running is None:
            try:
                loop.run_until_complete(entry.close())
            except RuntimeError:  # started meanwhile in another thread
                asyncio.run_coroutine_threadsafe(entry.close(), loop)
        else:  # an idle loop we cannot drive from inside another running loop
            _finish_idle(entry.pool)
