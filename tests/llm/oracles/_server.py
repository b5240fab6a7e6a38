"""The loopback recording server of the wire-oracle tests.

It records every request (method, path, query, headers, JSON body) and answers every request with the
one scripted :class:`Reply` currently set (:attr:`RecordingServer.reply`), so the official SDK and our
code receive byte-identical answers: a JSON body, an SSE stream or an NDJSON stream (chunked, one write
per event, as vendors stream). The server itself is :mod:`tests._services.loopback_http`. It binds to
127.0.0.1 only; nothing here can reach the internet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests._services import loopback_http
from tests._services.loopback_http import Recorded, split_sse

__all__ = ["FIXTURES", "ORACLE_FIXTURES", "Recorded", "RecordingServer", "Reply", "split_sse"]

FIXTURES = Path(__file__).parent.parent / "fixtures"  # the codec tests' vendor fixtures (read only)
ORACLE_FIXTURES = Path(__file__).parent / "fixtures"

_STREAM_HEADERS = {"Cache-Control": "no-cache"}


class Reply(loopback_http.Reply):
    """What the server answers. ``chunks`` set means a chunked (streamed) body, one write per item."""

    @classmethod
    def json(cls, obj: Any) -> Reply:
        return cls(json.dumps(obj).encode())

    @classmethod
    def sse(cls, raw: bytes) -> Reply:
        """An SSE stream, one write per event."""
        return cls(content_type="text/event-stream", chunks=split_sse(raw), headers=dict(_STREAM_HEADERS))

    @classmethod
    def ndjson(cls, raw: bytes) -> Reply:
        """An NDJSON stream, one write per non-empty line."""
        return cls(content_type="application/x-ndjson", chunks=[line + b"\n" for line in raw.splitlines() if line],
                   headers=dict(_STREAM_HEADERS))

    @classmethod
    def fixture(cls, name: str) -> Reply:
        """A reply from a fixture file: ``.json``, ``.sse`` or ``.ndjson`` (oracle fixtures first)."""
        path = ORACLE_FIXTURES / name
        if not path.exists():
            path = FIXTURES / name
        raw = path.read_bytes()
        if name.endswith(".sse"):
            return cls.sse(raw)
        if name.endswith(".ndjson"):
            return cls.ndjson(raw)
        return cls(raw)


class RecordingServer(loopback_http.LoopbackHTTPServer):
    """Records requests; answers each with :attr:`reply`. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        super().__init__(reply=Reply.json({"error": {"message": "no reply scripted"}}),
                         name="oracle-recording-server")
