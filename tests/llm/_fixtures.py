"""Fixture loading for the codec tests: vendor-shaped JSON bodies and raw SSE streams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict[str, Any]:
    value = json.loads(fixture_bytes(name))
    assert isinstance(value, dict)
    return value


def read_sse(name: str) -> list[tuple[str | None, str]]:
    """``(event, data)`` pairs of an SSE stream, as an SSE client (httpx-sse) would hand them over."""
    out: list[tuple[str | None, str]] = []
    event: str | None = None
    data: list[str] = []
    for line in fixture_bytes(name).decode("utf-8").splitlines():
        if not line:
            if data:
                out.append((event, "\n".join(data)))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        out.append((event, "\n".join(data)))
    return out
