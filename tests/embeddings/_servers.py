"""A scriptable loopback HTTP server for the remote embedding tests (shared by every embedding provider).

Usage::

    from tests.embeddings._servers import LoopbackServer, Reply

    with LoopbackServer() as srv:                       # binds 127.0.0.1 on a free port
        srv.reply = Reply.json({"data": []})            # every request gets this reply...
        srv.script(Reply.error(429, retry_after=2),    # ...unless replies are queued: served in order
                   Reply.json({"data": []}))
        srv.handler = lambda rec: Reply.json(...)       # ...or computed per request (runs in the server thread)
        client_code(srv.url)                            # "http://127.0.0.1:<port>"
        rec = srv.take_one()                            # the one request recorded since the last take()
        rec.method, rec.path, rec.query, rec.headers["authorization"], rec.json

Precedence per request: the queued replies (``script``) first, then ``handler``, then ``reply``.
Fake vendors (handlers answering like the real APIs, with deterministic vectors from :func:`vector_for`):
``srv.handler = fake_openai(dims=8, shuffle=True)`` (``POST /embeddings``, float or base64 as asked) and
``srv.handler = fake_ollama(dims=8)`` (``POST /api/embed``).

A :class:`Reply` can be delayed (``delay=``), carry headers (``Retry-After`` ...), be streamed in chunks,
hang without answering (``Reply.hang(seconds)``, for timeouts) or drop the connection
(``Reply.drop()``). The server is threaded, so concurrent requests are answered concurrently (a delayed
reply does not hold back the others). Fixtures: ``loopback`` (function scope, a fresh server per test).

It binds to 127.0.0.1 only; nothing here can reach the internet. The API is kept stable: other test
modules import it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["Handler", "LoopbackServer", "Recorded", "Reply", "fake_ollama", "fake_openai", "loopback", "vector_for"]


@dataclass
class Reply:
    """What the server answers to one request.

    ``chunks`` set means a chunked body, one write per item (``chunk_delay`` seconds apart).
    ``delay`` is slept before answering. ``hang`` > 0 means: read the request, answer nothing for that
    many seconds, then close (a client timeout test). ``drop`` closes the connection without a response.
    """

    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    delay: float = 0.0
    hang: float = 0.0
    drop: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, *, headers: dict[str, str] | None = None, delay: float = 0.0) -> Reply:
        return cls(json.dumps(obj).encode(), status=status, headers=dict(headers or {}), delay=delay)

    @classmethod
    def text(cls, text: str | bytes, status: int = 200, *, content_type: str = "text/plain") -> Reply:
        """A raw body (e.g. malformed JSON: ``Reply.text('{"data": [', content_type="application/json")``)."""
        return cls(text.encode() if isinstance(text, str) else text, status=status, content_type=content_type)

    @classmethod
    def error(cls, status: int, obj: Any = None, *, retry_after: str | int | float | None = None,
               headers: dict[str, str] | None = None) -> Reply:
        """An error status with a JSON body (default ``{"error": {"message": "status <n>"}}``)."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        body = obj if obj is not None else {"error": {"message": f"status {status}"}}
        return cls(json.dumps(body).encode(), status=status, headers=hdrs)

    @classmethod
    def ndjson(cls, lines: list[Any], *, chunk_delay: float = 0.0) -> Reply:
        return cls(content_type="application/x-ndjson", chunks=[json.dumps(x).encode() + b"\n" for x in lines],
                   chunk_delay=chunk_delay)

    @classmethod
    def hang_for(cls, seconds: float) -> Reply:
        """Answer nothing for ``seconds`` (the client's read timeout should fire first), then close."""
        return cls(hang=seconds)

    @classmethod
    def drop_connection(cls) -> Reply:
        """Close the connection without sending a status line."""
        return cls(drop=True)

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
        return json.loads(self.body) if self.body else None


Handler = Callable[[Recorded], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: LoopbackServer

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

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner = self.server.owner
        reply = owner._answer(Recorded(self.command, self.path, headers, body, time.monotonic()))
        if reply.drop:
            self.close_connection = True
            return
        if reply.hang > 0:
            owner._stop.wait(reply.hang)
            self.close_connection = True
            return
        if reply.delay > 0:
            owner._stop.wait(reply.delay)
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
        self.end_headers()
        for chunk in reply.chunks:
            if reply.chunk_delay > 0:
                owner._stop.wait(reply.chunk_delay)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class LoopbackServer:
    """A threaded HTTP server on ``127.0.0.1:<free port>`` answering from a script; see the module doc."""

    def __init__(self) -> None:
        self.reply: Reply = Reply.error(500, {"error": {"message": "no reply scripted"}})
        self.handler: Handler | None = None
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.owner = self
        self.port = int(self._srv.server_address[1])
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="embeddings-loopback-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Queue replies: the next requests get them in order, before ``handler``/``reply`` apply again."""
        with self._lock:
            self._queue.extend(replies)

    def _answer(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            if self._queue:
                return self._queue.popleft()
            handler = self.handler
        return handler(rec) if handler is not None else self.reply

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
        self._stop.set()  # wake hanging / delayed replies
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A fresh :class:`LoopbackServer` per test, closed after it. Import it into a test module or conftest."""
    srv = LoopbackServer()
    try:
        yield srv
    finally:
        srv.close()


# --------------------------------------------------------------------------- fake vendors


def vector_for(text: str, dims: int) -> list[float]:
    """A deterministic vector for ``text``: multiples of 1/128 in [-1, 1), exact in float32."""
    digest = hashlib.blake2b(text.encode(), digest_size=64).digest()
    raw = (digest * (dims // 64 + 1))[:dims]
    return [(b - 128) / 128 for b in raw]


_OPENAI_WIDTHS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


def fake_openai(dims: int | None = None, *, shuffle: bool = False, usage: bool = True, seed: int = 0) -> Handler:
    """A handler answering ``POST .../embeddings`` like OpenAI: ``data`` (shuffled if asked: ``index`` says
    where each vector belongs), ``encoding_format`` float or base64 as requested, ``usage.prompt_tokens`` =
    the number of words (so tests can check it is the server's count, not an estimate). Width: the
    request's ``dimensions``, else ``dims``, else OpenAI's native width of the model (8 for other models)."""
    rng = random.Random(seed)

    def handle(rec: Recorded) -> Reply:
        body = rec.json
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        width = body.get("dimensions") or dims or _OPENAI_WIDTHS.get(body["model"], 8)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vec = vector_for(text, width)
            emb: Any = base64.b64encode(struct_f32(vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        if shuffle:
            rng.shuffle(data)
        out: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
        if usage:
            words = sum(len(t.split()) for t in texts)
            out["usage"] = {"prompt_tokens": words, "total_tokens": words}
        return Reply.json(out)

    return handle


def fake_ollama(dims: int = 8) -> Handler:
    """A handler answering ``POST /api/embed`` like Ollama (``prompt_eval_count`` = number of words)."""

    def handle(rec: Recorded) -> Reply:
        body = rec.json
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        width = body.get("dimensions", dims)
        return Reply.json({"model": body["model"], "embeddings": [vector_for(t, width) for t in texts],
                           "total_duration": 1000, "load_duration": 10,
                           "prompt_eval_count": sum(len(t.split()) for t in texts)})

    return handle


def struct_f32(values: list[float]) -> bytes:
    """Little-endian float32 bytes (what OpenAI's base64 embeddings encode)."""
    import struct

    return struct.pack(f"<{len(values)}f", *values)
