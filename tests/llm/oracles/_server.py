"""A loopback recording server for the wire-oracle tests.

It records every request (method, path, query, headers, JSON body) and answers every request with the
one scripted :class:`Reply` currently set, so the official SDK and our code receive byte-identical
answers: a JSON body, an SSE stream or an NDJSON stream (chunked, one write per event, as vendors
stream). It binds to 127.0.0.1 only; nothing here can reach the internet.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FIXTURES", "ORACLE_FIXTURES", "Recorded", "RecordingServer", "Reply", "split_sse"]

FIXTURES = Path(__file__).parent.parent / "fixtures"  # the codec tests' vendor fixtures (read only)
ORACLE_FIXTURES = Path(__file__).parent / "fixtures"


def split_sse(raw: bytes) -> list[bytes]:
    """An SSE stream split into whole events, each keeping its blank-line terminator."""
    text = raw.replace(b"\r\n", b"\n")
    return [block + b"\n\n" for block in text.split(b"\n\n") if block.strip()]


@dataclass
class Reply:
    """What the server answers. ``chunks`` set means a chunked (streamed) body, one write per item."""

    body: bytes = b""
    content_type: str = "application/json"
    chunks: list[bytes] | None = None
    status: int = 200

    @classmethod
    def json(cls, obj: Any) -> Reply:
        return cls(json.dumps(obj).encode())

    @classmethod
    def sse(cls, raw: bytes) -> Reply:
        return cls(content_type="text/event-stream", chunks=split_sse(raw))

    @classmethod
    def ndjson(cls, raw: bytes) -> Reply:
        return cls(content_type="application/x-ndjson", chunks=[line + b"\n" for line in raw.splitlines() if line])

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

    @property
    def raw(self) -> bytes:
        """The whole body as the client receives it."""
        return b"".join(self.chunks) if self.chunks is not None else self.body


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    target: str  # path + "?" + query, exactly as sent
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = parse_qs(parts.query, keep_blank_values=True)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: RecordingServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client hanging up early
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.owner._record(Recorded(self.command, self.path, headers, body))
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for chunk in reply.chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class RecordingServer:
    """Records requests; answers each with :attr:`reply`. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.reply = Reply.json({"error": {"message": "no reply scripted"}})
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.owner = self
        self.port = int(self._srv.server_address[1])
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="oracle-recording-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            return self.reply

    def take(self) -> list[Recorded]:
        """The requests recorded since the last call (and forget them)."""
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def take_one(self) -> Recorded:
        recs = self.take()
        assert len(recs) == 1, f"expected exactly one request, got {[(r.method, r.target) for r in recs]}"
        return recs[0]

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)
