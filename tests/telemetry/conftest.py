"""Fixtures of the telemetry tests: ``events`` collects every event of the process during one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aixpy import telemetry


class Events(list[telemetry.Event]):
    """The events received, in order; ``of(kind)`` keeps one type."""

    def of(self, cls: type[telemetry.Event]) -> list[telemetry.Event]:
        return [e for e in self if isinstance(e, cls)]


@pytest.fixture(autouse=True)
def no_leftover_subscribers() -> Iterator[None]:
    assert telemetry.subscribers() == (), "a test left a global subscriber behind"
    yield
    assert telemetry.subscribers() == (), "this test left a global subscriber behind"


@pytest.fixture
def events() -> Iterator[Events]:
    got = Events()
    stop = telemetry.subscribe(got.append)
    yield got
    stop()


def assert_no_content(events: list[telemetry.Event], *secrets: str) -> None:
    """No event field (nor its repr) holds any of ``secrets``."""
    for e in events:
        text = repr(e) + repr(e.attributes()) + repr(e.labels())
        for s in secrets:
            assert s not in text, f"{s!r} leaked into {e!r}"
