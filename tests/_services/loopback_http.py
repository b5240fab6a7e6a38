"""One scriptable HTTP server on 127.0.0.1 for the tests that stand in for a remote vendor.

Usage::

    from tests._services.loopback_http import LoopbackHTTPServer, Reply

    with LoopbackHTTPServer() as srv:                  # 127.0.0.1, a free port, one thread per connection
        srv.push(Reply(b'{"ok": true}'), Reply(status=503))  # answered in order, one per request...
        srv.handler = lambda rec: Reply(rec.body)     # ...then the handler (runs in the server thread)...
        srv.reply = Reply(status=404)                  # ...then this default (else a 500 "no reply scripted")
        client_code(srv.url)                           # "http://127.0.0.1:<port>"
        rec = srv.take_one()                           # the one request recorded since the last take()
        rec.method, rec.path, rec.query, rec.headers["authorization"], rec.json

A :class:`Reply` says what to do with one request: answer a body (``Content-Length``) or ``chunks``
(chunked, one write and flush per item), after ``delay``; or misbehave: ``hang`` (answer nothing, then
close), ``drop`` (close without a status line), ``reset`` (TCP RST), or cut a chunked body after
``cut_after`` chunks (``cut``: RST, close mid-body, or a clean but early end). Waits end at once when the
server closes; a client hanging up mid-answer just closes the connection. ``srv.requests``, ``srv.last``
and ``srv.take()`` give the :class:`Recorded` requests.

Each test module keeps its own small :class:`Reply` subclass of named constructors (vendor payloads, SSE,
NDJSON, fixtures) and, where it needs one, a server subclass (a :meth:`LoopbackHTTPServer.fallback`
answer, a :attr:`LoopbackHTTPServer.recorded_type`); the HTTP machinery is here.

Only 127.0.0.1 is bound; nothing here can reach the internet.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["Cut", "Handler", "LoopbackHTTPServer", "Recorded", "Reply", "split_sse"]

Cut = Literal["reset", "close", "eof"]


@dataclass
class Reply:
    """What the server does with one request (every field is optional).

    The order is: wait ``delay``; then ``drop`` (close, no status line), ``hang`` (answer nothing for that
    many seconds, then close), ``reset`` (close with a TCP RST), or answer ``status``, ``content_type``,
    ``headers`` and ``body``. With ``chunks`` the body is chunked, one write per item, each item
    ``chunk_delay`` seconds after the previous write; ``cut_after`` stops after that many items, as
    ``cut`` says: ``"reset"`` (RST), ``"close"`` (close mid-body) or ``"eof"`` (the terminating chunk,
    announced by ``Connection: close``).
    """

    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    cut: Cut = "close"
    reset: bool = False
    hang: float = 0.0
    drop: bool = False

    @property
    def raw(self) -> bytes:
        """The whole body as the client receives it."""
        return b"".join(self.chunks) if self.chunks is not None else self.body


@dataclass
class Recorded:
    """One request as the server saw it (``headers`` have lower-case names)."""

    method: str
    target: str  # path + "?" + query, exactly as sent
    headers: dict[str, str]
    body: bytes = b""
    at: float = 0.0  # time.monotonic() when the request was fully read
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path
        self.query = parse_qs(parts.query, keep_blank_values=True)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None

    @property
    def media_type(self) -> str:
        """The request's ``Content-Type`` without parameters, lower-case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


Handler = Callable[[Recorded], Reply]


def split_sse(raw: bytes) -> list[bytes]:
    """An SSE stream split into whole events, each keeping its blank-line terminator (for ``chunks``)."""
    text = raw.replace(b"\r\n", b"\n")
    return [block + b"\n\n" for block in text.split(b"\n\n") if block.strip()]


def _rst(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset (SO_LINGER 0) instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: LoopbackHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients hanging up on purpose
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner = self.server.owner
        reply = owner._answer(owner.recorded_type(self.command, self.path, headers, body, time.monotonic()))
        stop = owner._stop
        if reply.delay > 0:
            stop.wait(reply.delay)
        if reply.drop or reply.hang > 0:
            if reply.hang > 0:
                stop.wait(reply.hang)
            self.close_connection = True
            return
        if reply.reset:
            self.close_connection = True
            _rst(self.connection)
            return
        try:
            self._send(reply, stop)
        except OSError:  # the client hung up (broken pipe, reset): nothing left to say
            self.close_connection = True

    def _send(self, reply: Reply, stop: threading.Event) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if reply.chunks is None:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        if reply.cut == "eof" and reply.cut_after is not None:
            # the server closes after the (early) end: say so, as HTTP/1.1 asks, so that the client does
            # not race the close by reusing the connection
            self.send_header("Connection", "close")
        self.end_headers()
        for i, chunk in enumerate(reply.chunks):
            if reply.cut_after is not None and i >= reply.cut_after:
                self._cut(reply.cut)
                return
            if reply.chunk_delay > 0:
                stop.wait(reply.chunk_delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self, how: Cut) -> None:
        self.wfile.flush()
        self.close_connection = True
        if how == "eof":  # a clean end of the body, just too early
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif how == "reset":
            _rst(self.connection)
        else:  # close mid-body: an incomplete chunked message
            self.connection.shutdown(socket.SHUT_RDWR)


class LoopbackHTTPServer:
    """A threaded HTTP server on ``127.0.0.1:<free port>``; see the module doc.

    Each request is recorded, then answered by the next queued reply (:meth:`push`), else by
    :attr:`handler`, else by :meth:`fallback` (:attr:`reply` unless a subclass says otherwise).
    Subclasses may set :attr:`recorded_type` to record requests as a :class:`Recorded` subclass.
    """

    recorded_type: ClassVar[type[Recorded]] = Recorded

    def __init__(self, *replies: Reply, reply: Reply | None = None, name: str = "loopback-http") -> None:
        self.reply: Reply = reply if reply is not None else Reply(b'{"error": {"message": "no reply scripted"}}',
                                                                  status=500)
        self.handler: Handler | None = None
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.owner = self
        self.port = int(self._srv.server_address[1])
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> Self:
        """Queue replies: the next requests get them in order, before ``handler``/``reply`` apply again."""
        with self._lock:
            self.replies.extend(replies)
        return self

    def fallback(self, rec: Recorded) -> Reply:
        """The answer when nothing is queued and there is no handler: :attr:`reply`."""
        return self.reply

    def _answer(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            if self.replies:
                return self.replies.popleft()
            handler = self.handler
        return handler(rec) if handler is not None else self.fallback(rec)

    def take(self) -> list[Recorded]:
        """The requests recorded since the last call (and forget them)."""
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def take_one(self) -> Recorded:
        """The one request recorded since the last :meth:`take` (asserts there was exactly one)."""
        recs = self.take()
        assert len(recs) == 1, f"expected exactly one request, got {[(r.method, r.target) for r in recs]}"
        return recs[0]

    @property
    def last(self) -> Recorded:
        """The latest request recorded (and not yet taken)."""
        with self._lock:
            return self.requests[-1]

    def close(self) -> None:
        """Stop serving; waiting replies (``delay``, ``hang``, ``chunk_delay``) wake up at once."""
        self._stop.set()
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
