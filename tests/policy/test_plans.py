"""aixpy.policy.plans: one generator of I/O steps driven by a sync and an async runner, with identical outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from aixpy.policy.plans import Plan, arun, run


def failover(hosts: list[str]) -> Plan[str, int, str]:
    """Ask each host in turn; a ConnectionError moves on, anything else escapes the plan."""
    errors: list[str] = []
    for host in hosts:
        try:
            answer = yield host
        except ConnectionError as e:
            errors.append(f"{host}: {e}")
            continue
        return f"{host}={answer}"
    raise LookupError("; ".join(errors))


def io_for(table: dict[str, int | BaseException], seen: list[str]) -> Callable[[str], int]:
    def io(host: str) -> int:
        seen.append(host)
        value = table[host]
        if isinstance(value, BaseException):
            raise value
        return value

    return io


def both(hosts: list[str], table: dict[str, int | BaseException]) -> list[tuple[str, object, list[str]]]:
    """The outcome (value or exception type + text) and the I/O done, by the sync and the async runner."""
    out: list[tuple[str, object, list[str]]] = []
    for kind in ("sync", "async"):
        seen: list[str] = []
        io = io_for(table, seen)

        async def aio(host: str, io: Callable[[str], int] = io) -> int:
            await asyncio.sleep(0)
            return io(host)

        try:
            result: object = run(failover(hosts), io) if kind == "sync" else asyncio.run(arun(failover(hosts), aio))
        except Exception as e:
            result = (type(e).__name__, str(e))
        out.append((kind, result, seen))
    return out


@pytest.mark.parametrize(("table", "expected", "asked"), [
    ({"a": 1, "b": 2}, "a=1", ["a"]),
    ({"a": ConnectionError("down"), "b": 2}, "b=2", ["a", "b"]),
    ({"a": ConnectionError("down"), "b": ConnectionError("gone")}, ("LookupError", "a: down; b: gone"), ["a", "b"]),
    ({"a": ValueError("bad input"), "b": 2}, ("ValueError", "bad input"), ["a"]),   # not caught: escapes as is
])
def test_sync_and_async_runners_agree(table: dict[str, int | BaseException], expected: object,
                                      asked: list[str]) -> None:
    (_, sync_result, sync_seen), (_, async_result, async_seen) = both(["a", "b"], table)
    assert sync_result == async_result == expected
    assert sync_seen == async_seen == asked


def test_a_plan_without_io_returns_at_once() -> None:
    def nothing() -> Plan[str, int, int]:
        return 7
        yield "never"  # pragma: no cover - makes this a generator

    assert run(nothing(), lambda _: 0) == 7
