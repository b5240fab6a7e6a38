"""A scriptable loopback HTTP server for the provider, policy and fault-injection tests.

Each request takes the next scripted :class:`Reply` (or asks ``handler``), so a test states exactly
what the "provider" does: answer JSON, stream SSE/NDJSON chunk by chunk, cut a stream after N
chunks (TCP reset, close mid-body, or a clean end), reset the connection, hang, or send garbage.
Every socket binds to 127.0.0.1; nothing reaches the internet. The few tests at the bottom check the
server itself.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from aixpy.llm import AsyncChatStream, ChatStream, StreamEvent

FIXTURES = Path(__file__).parent / "fixtures"

Cut = Literal["reset", "close", "eof"]


@dataclass
class Reply:
    """What the server does for one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # chunked transfer, one write per item
    delay: float = 0.0  # before the status line
    chunk_delay: float = 0.0
    cut_after: int | None = None  # with chunks: stop after this many
    cut: Cut = "close"
    reset: bool = False  # reset the connection instead of answering

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(obj).encode(), headers=headers or {})

    @classmethod
    def raw(cls, body: bytes | str, status: int = 200, content_type: str = "application/json") -> Reply:
        return cls(status, body.encode() if isinstance(body, str) else body, content_type)

    @classmethod
    def sse(cls, blocks: Sequence[bytes | str], **kw: Any) -> Reply:
        """``blocks``: whole SSE messages (``data: ...\\n\\n``); a dict/str payload becomes ``data: <json>``."""
        chunks = [b if isinstance(b, bytes) else b.encode() for b in blocks]
        return cls(content_type="text/event-stream", chunks=chunks, **kw)

    @classmethod
    def sse_data(cls, payloads: Sequence[Any], *, done: bool = True, **kw: Any) -> Reply:
        blocks = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
        if done:
            blocks.append("data: [DONE]\n\n")
        return cls.sse(blocks, **kw)

    @classmethod
    def sse_file(cls, name: str, **kw: Any) -> Reply:
        return cls.sse(sse_blocks((FIXTURES / name).read_bytes()), **kw)

    @classmethod
    def ndjson(cls, lines: Sequence[Any], **kw: Any) -> Reply:
        chunks = [(line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines]
        return cls(content_type="application/x-ndjson", chunks=chunks, **kw)

    @classmethod
    def connection_reset(cls) -> Reply:
        return cls(reset=True)

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls(200, b"{}", delay=seconds)


def sse_blocks(raw: bytes) -> list[bytes]:
    """Split an SSE stream into whole messages (each keeps its blank-line terminator)."""
    text = raw.replace(b"\r\n", b"\n")
    return [block + b"\n\n" for block in text.split(b"\n\n") if block.strip()]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients hanging up on purpose
        pass


def _rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls between header and body writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = owner._take(rec)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.reset:
            self.close_connection = True
            _rst(self.connection)
            return
        try:
            self._answer(reply)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _answer(self, reply: Reply) -> None:
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
            # this server will close after the (early) end: say so, as HTTP/1.1 asks, so the client
            # does not race the close by reusing the connection
            self.send_header("Connection", "close")
        self.end_headers()
        for i, chunk in enumerate(reply.chunks):
            if reply.cut_after is not None and i >= reply.cut_after:
                self._cut(reply.cut)
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
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


class ScriptedServer:
    """A loopback server answering from a script. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, *replies: Reply, label: str = "server") -> None:
        self.label = label
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[Recorded] = []
        self.handler: Callable[[Recorded], Reply] | None = None
        self._lock = threading.Lock()
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.owner = self
        self.port = int(self._srv.server_address[1])
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> ScriptedServer:
        with self._lock:
            self.replies.extend(replies)
        return self

    def _take(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            if self.replies:
                return self.replies.popleft()
        if self.handler is not None:
            return self.handler(rec)
        return Reply.json({"error": {"message": f"{self.label}: no scripted reply for {rec.method} {rec.path}"}},
                          status=418)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def servers(n: int) -> Iterator[list[ScriptedServer]]:
    """``n`` servers labelled s0, s1... for a fixture; closed afterwards."""
    made = [ScriptedServer(label=f"s{i}") for i in range(n)]
    try:
        yield made
    finally:
        for s in made:
            s.close()


# --------------------------------------------------------------------------- reading streams


def collect(stream: ChatStream, into: list[StreamEvent]) -> None:
    """Read a stream to its end (or its error), keeping every event received in ``into``."""
    with stream:
        into.extend(stream)


async def acollect(stream: AsyncChatStream, into: list[StreamEvent]) -> None:
    """Async twin of :func:`collect`."""
    async with stream:
        async for event in stream:
            into.append(event)


# --------------------------------------------------------------------------- OpenAI-shaped payloads


def oa_chunk(content: str | None = None, *, finish: str | None = None, tool: dict[str, Any] | None = None,
             usage: dict[str, int] | None = None, model: str = "gpt-4o-mini-2024-07-18") -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if tool is not None:
        delta["tool_calls"] = [tool]
    choices = [] if usage is not None and content is None and finish is None and tool is None else \
        [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model, "choices": choices, "usage": usage}


def oa_text_stream(words: Sequence[str], *, usage: tuple[int, int] = (10, 5), **kw: Any) -> Reply:
    """An OpenAI stream: a role chunk, one chunk per word, a finish chunk, a usage chunk, ``[DONE]``."""
    payloads: list[Any] = [{"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]}]
    payloads += [oa_chunk(w) for w in words]
    payloads.append(oa_chunk(finish="stop"))
    payloads.append(oa_chunk(usage={"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                    "total_tokens": sum(usage)}))
    return Reply.sse_data(payloads, **kw)


def oa_completion(text: str | None = "Hello!", *, tool_calls: list[dict[str, Any]] | None = None,
                  usage: tuple[int, int] = (10, 5), model: str = "gpt-4o-mini-2024-07-18",
                  finish: str = "stop") -> dict[str, Any]:
    """A non-streamed ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


WEATHER_CALL = {"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}


# --------------------------------------------------------------------------- the server's own tests


def _client() -> httpx.Client:
    return httpx.Client(trust_env=False)  # never an environment proxy


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def test_server_answers_json_and_records(server: ScriptedServer) -> None:
    server.push(Reply.json({"ok": True}, headers={"X-Test": "1"}))
    with _client() as c:
        r = c.post(server.url + "/v1/x", json={"a": 1})
    assert r.json() == {"ok": True}
    assert r.headers["x-test"] == "1"
    assert server.last.json == {"a": 1}
    assert server.last.path == "/v1/x"


def test_server_unscripted_request_is_418(server: ScriptedServer) -> None:
    with _client() as c:
        assert c.get(server.url + "/nothing").status_code == 418


@pytest.mark.parametrize("how", ["close", "reset"])
def test_server_cut_mid_body_breaks_the_read(server: ScriptedServer, how: Cut) -> None:
    server.push(Reply.sse_data([{"n": i} for i in range(5)], cut_after=2, cut=how))
    with _client() as c, pytest.raises(httpx.HTTPError), c.stream("GET", server.url) as r:
        for _ in r.iter_bytes():
            pass


def test_server_cut_eof_ends_cleanly_early(server: ScriptedServer) -> None:
    server.push(Reply.sse_data([{"n": i} for i in range(5)], cut_after=2, cut="eof"))
    with _client() as c:
        assert c.get(server.url).text.count("data:") == 2


def test_server_reset_before_answer(server: ScriptedServer) -> None:
    server.push(Reply.connection_reset())
    with _client() as c, pytest.raises(httpx.HTTPError):
        c.get(server.url)
