"""CachedEmbeddings single-flight: a text another call is embedding right now is waited for, not re-sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from aixpy.embeddings.policies import CachedEmbeddings
from aixpy.errors import ServerError

from ._fakes import Scripted, reference


class Gate:
    """Holds the first request inside the provider until released (other requests pass at once)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._first = True
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> None:
        with self._lock:
            first, self._first = self._first, False
        if first:
            self.entered.set()
            assert self.release.wait(10), "the test never released the first request"


def until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def test_concurrent_misses_of_one_text_send_it_once() -> None:
    gate = Gate()
    inner = Scripted(on_request=gate)
    svc = CachedEmbeddings(inner)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(svc.embed_array, ["a", "b"])
        assert gate.entered.wait(10)
        second = pool.submit(svc.embed_array, ["b", "c"])     # b is in flight: waited for; c is sent
        until(lambda: svc.stats()["coalesced"] == 1 and len(inner.requests) == 2, "the second call to wait")
        gate.release.set()
        a_b, b_c = first.result(10), second.result(10)
    assert sorted(map(tuple, inner.requests)) == [("a", "b"), ("c",)]
    np.testing.assert_array_equal(a_b, reference(["a", "b"]))
    np.testing.assert_array_equal(b_c, reference(["b", "c"]))
    stats = svc.stats()
    assert (stats["hits"], stats["misses"], stats["coalesced"]) == (0, 3, 1)
    assert svc.last_usage is not None
    assert len(svc._flights) == 0


def test_a_failed_owner_leaves_its_waiters_to_send_the_text_themselves() -> None:
    gate = Gate()
    inner = Scripted(on_request=gate, script=[ServerError("boom")])
    svc = CachedEmbeddings(inner)
    with ThreadPoolExecutor(2) as pool:
        owner = pool.submit(svc.embed_array, ["x"])
        assert gate.entered.wait(10)
        waiter = pool.submit(svc.embed_array, ["x"])
        until(lambda: svc.stats()["coalesced"] == 1, "the waiter")
        gate.release.set()
        with pytest.raises(ServerError):
            owner.result(10)
        np.testing.assert_array_equal(waiter.result(10), reference(["x"]))
    assert inner.requests == [["x"], ["x"]]
    stats = svc.stats()
    assert (stats["misses"], stats["coalesced"]) == (2, 0)   # the waiter's text was sent after all
    assert len(svc._flights) == 0


async def test_async_gathered_misses_of_one_text_send_it_once() -> None:
    gate = Gate()
    inner = Scripted(on_request=gate)
    svc = CachedEmbeddings(inner)
    first = asyncio.ensure_future(svc.aembed_array(["p", "q"]))
    assert await asyncio.to_thread(gate.entered.wait, 10)
    second = asyncio.ensure_future(svc.aembed_array(["q"]))
    while svc.stats()["coalesced"] != 1:
        await asyncio.sleep(0.002)
    gate.release.set()
    p_q, q = await asyncio.gather(first, second)
    assert inner.requests == [["p", "q"]]
    np.testing.assert_array_equal(q, reference(["q"]))
    np.testing.assert_array_equal(p_q, reference(["p", "q"]))


async def owner_and_waiter(text: str) -> tuple[Gate, Scripted, CachedEmbeddings, asyncio.Future[Any],
                                                asyncio.Future[Any]]:
    """Two tasks embedding ``text``: the owner held inside the provider, the waiter waiting for its flight."""
    gate = Gate()
    inner = Scripted(on_request=gate)
    svc = CachedEmbeddings(inner)
    owner = asyncio.ensure_future(svc.aembed_array([text]))
    assert await asyncio.to_thread(gate.entered.wait, 10)
    waiter = asyncio.ensure_future(svc.aembed_array([text]))
    while svc.stats()["coalesced"] != 1:
        await asyncio.sleep(0.002)
    return gate, inner, svc, owner, waiter


async def test_a_cancelled_async_owner_does_not_strand_its_waiter() -> None:
    gate, inner, svc, owner, waiter = await owner_and_waiter("z")
    owner.cancel()                                           # the owner gives up while its request runs
    out = await asyncio.wait_for(waiter, 10)                 # the waiter sends "z" itself
    np.testing.assert_array_equal(out, reference(["z"]))
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert inner.requests == [["z"], ["z"]]
    assert len(svc._flights) == 0


async def test_a_cancelled_waiter_does_not_disturb_the_flight() -> None:
    gate, inner, svc, owner, waiter = await owner_and_waiter("w")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.release.set()
    np.testing.assert_array_equal(await owner, reference(["w"]))
    assert inner.requests == [["w"]]
    assert len(svc._flights) == 0
