"""The event model and the hub: label/measure split, subscribe/unsubscribe, failing handlers, threads,
and the package's place at the bottom of the import layers."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import threading

import pytest

from aixpy import telemetry
from aixpy.telemetry import AgentRunEvent, AgentStepEvent, Event, HttpEvent, LLMEvent, ToolCallEvent

from .conftest import Events

ALL_KINDS = [getattr(telemetry, n) for n in telemetry.__all__ if n.endswith("Event") and n != "Event"]


def test_every_kind_is_distinct_and_splits_its_fields_into_labels_measures_and_attributes() -> None:
    assert len(ALL_KINDS) == 7
    assert len({cls.kind for cls in ALL_KINDS}) == len(ALL_KINDS)
    names = {f.name for f in dataclasses.fields(Event)}
    assert names == {"timestamp", "duration", "error"}
    for cls in ALL_KINDS:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert names <= fields
        assert set(cls.LABELS) <= fields, cls
        assert set(cls.MEASURES) <= fields, cls
        assert not set(cls.LABELS) & set(cls.MEASURES), cls
        assert "error" in cls.LABELS
        assert "duration" in cls.MEASURES


def test_an_event_is_frozen_and_reports_its_groups() -> None:
    e = LLMEvent(timestamp=1.0, duration=0.25, provider="openai", model="gpt-4o-mini", operation="chat",
                 input_tokens=10, output_tokens=5, cost_usd=0.0001, attempts=2, fallbacks=1, events=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.duration = 1.0  # type: ignore[misc]
    assert e.kind == "llm.call"
    assert e.ok
    assert e.labels() == {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat", "finish_reason": "",
                          "error": ""}
    assert e.measures() == {"duration": 0.25, "input_tokens": 10.0, "output_tokens": 5.0, "cost_usd": 0.0001,
                            "attempts": 2.0, "fallbacks": 1.0}  # unknown (None) values are left out, not 0
    assert e.attributes() == {"events": 0, "completed": True, "cached": False}
    h = HttpEvent(timestamp=1.0, duration=0.5, error="ServerError", provider=None, model=None, method="GET",
                  host="api.example.com", path="/v1/items/123", status=503, bytes=12)
    assert not h.ok
    assert h.labels() == {"provider": "", "model": "", "method": "GET", "host": "api.example.com", "status": "503",
                          "error": "ServerError"}
    assert h.attributes() == {"path": "/v1/items/123", "stream": False}  # the path is never a label


def test_subscribe_returns_the_unsubscriber_and_emit_reaches_local_then_global() -> None:
    order: list[str] = []
    stop_a = telemetry.subscribe(lambda e: order.append("a"))
    stop_b = telemetry.subscribe(lambda e: order.append("b"))
    assert telemetry.listening()
    assert telemetry.listening(print)
    telemetry.emit(ToolCallEvent(timestamp=0, duration=0, agent="x", run_id="r", step=1, tool="t"),
                   lambda e: order.append("local"))
    assert order == ["local", "a", "b"]
    stop_a()
    stop_a()  # twice: no effect
    telemetry.emit(ToolCallEvent(timestamp=0, duration=0, agent="x", run_id="r", step=1, tool="t"))
    assert order == ["local", "a", "b", "b"]
    stop_b()
    assert not telemetry.listening()
    assert telemetry.subscribers() == ()
    with pytest.raises(TypeError):
        telemetry.subscribe("not callable")  # type: ignore[arg-type]


def test_a_failing_handler_is_logged_once_with_its_traceback_and_the_others_still_get_the_event(
        caplog: pytest.LogCaptureFixture, events: Events) -> None:
    calls = []

    def broken(e: Event) -> None:
        calls.append(e)
        raise RuntimeError("handler bug")

    stop = telemetry.subscribe(broken)
    try:
        with caplog.at_level(logging.DEBUG, logger="aixpy.telemetry"):
            for _ in range(3):
                telemetry.emit(AgentRunEvent(timestamp=0, duration=1, agent="a", run_id="r"))
    finally:
        stop()
    assert len(calls) == 3
    assert len(events) == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    debugs = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(warnings) == 1
    assert warnings[0].exc_info is not None
    assert "agent.run" in warnings[0].getMessage()
    assert len(debugs) == 2
    assert not any(r.exc_info for r in debugs)


def test_subscribing_and_emitting_from_many_threads_loses_nothing() -> None:
    received: list[int] = []
    lock = threading.Lock()
    per_thread = 200

    def worker(i: int) -> None:
        def mine(e: Event) -> None:
            if isinstance(e, AgentStepEvent) and e.run_id == f"t{i}":
                with lock:
                    received.append(e.step)

        stop = telemetry.subscribe(mine)
        for step in range(per_thread):
            telemetry.emit(AgentStepEvent(timestamp=0, duration=0, agent="a", run_id=f"t{i}", step=step))
        stop()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(received) == 8 * per_thread
    assert telemetry.subscribers() == ()


def test_telemetry_imports_only_the_standard_library_and_aixpy_errors() -> None:
    code = ("import sys, aixpy; before = set(sys.modules); import aixpy.telemetry; "
            "new = sorted(m for m in set(sys.modules) - before if m.startswith('aixpy') or m in "
            "('httpx', 'numpy', 'pydantic')); print(','.join(new))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    loaded = set(out.split(","))
    allowed = {"aixpy.errors", "aixpy.telemetry", "aixpy.telemetry.events", "aixpy.telemetry.hub",
               "aixpy.telemetry.bridge"}
    assert "aixpy.telemetry" in loaded
    assert loaded <= allowed, loaded - allowed


def test_public_names_are_all_exported() -> None:
    exported = set(telemetry.__all__)
    assert len(exported) == len(telemetry.__all__)
    for name in exported:
        assert getattr(telemetry, name) is not None
