"""Run an async-only model from sync code on ONE long-lived event loop (never a loop per call).

Built-in models do sync I/O natively and never come here; this serves third-party
:class:`~aixpy.llm.model.ChatModel` subclasses that implement only the async core.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["iterate", "run"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="aixpy-sync-bridge", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the bridge loop and wait for its result (from any thread but the loop's)."""
    return asyncio.run_coroutine_threadsafe(coro, _get_loop()).result()


async def _anext(agen: AsyncGenerator[T, None]) -> tuple[bool, T | None]:
    try:
        return True, await agen.__anext__()
    except StopAsyncIteration:
        return False, None


def iterate(agen: AsyncGenerator[T, None]) -> Generator[T, None, None]:
    """Iterate an async generator from sync code; closing this generator closes ``agen``."""
    try:
        while True:
            more, item = run(_anext(agen))
            if not more:
                return
            yield item  # type: ignore[misc]  # item is a T whenever more is true
    finally:
        run(agen.aclose())
