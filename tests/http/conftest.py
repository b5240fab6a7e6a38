"""Loopback-only test servers: a small HTTP/1.1 server (threads), a rebinding DNS server (UDP).

Nothing here reaches the internet: every socket binds to 127.0.0.0/8.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# --------------------------------------------------------------------------- HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], label: str, tls: ssl.SSLContext | None = None) -> None:
        self.label = label
        self.accepted = 0
        self.requests: list[dict[str, Any]] = []
        self.tls = tls
        self.sni: list[str | None] = []
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients hanging up on purpose
        pass

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        self.accepted += 1
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        return conn, addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, ctype: str, chunks: Iterator[bytes], delay: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for c in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c))
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        p = parts.path
        if p.endswith("/echo") or p == "/":
            out = {"label": self.server.label, "path": self.path, "method": self.command,
                   "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
            self._send(200, json.dumps(out).encode())
        elif p.endswith("/label"):
            self._send(200, self.server.label.encode(), "text/plain")
        elif p.endswith("/sleep"):
            time.sleep(float(q.get("s", "2")))
            self._send(200, b'{"slept": true}')
        elif p.endswith("/drip"):
            n, delay = int(q.get("n", "100")), float(q.get("delay", "0.1"))
            self._chunked("text/plain", (b"x\n" for _ in range(n)), delay)
        elif p.endswith("/big"):
            n = int(q.get("n", "1000"))
            if q.get("chunked"):
                self._chunked("application/octet-stream", (b"a" * 1024 for _ in range(n // 1024 + 1)))
            else:
                self._send(200, b"a" * n, "application/octet-stream")
        elif p.endswith("/gzip"):
            packed = gzip.compress(b"\0" * int(q.get("n", "1000")))
            self._send(200, packed, "application/octet-stream", {"Content-Encoding": "gzip"})
        elif "/status/" in p:
            status = int(p.rsplit("/", 1)[1])
            headers = {k[2:]: v for k, v in q.items() if k.startswith("h_")}
            if q.get("date"):
                headers["Retry-After"] = formatdate(time.time() + float(q["date"]), usegmt=True)
            self._send(status, q.get("body", '{"error": {"message": "nope"}}').encode(), headers=headers)
        elif p.endswith("/redirect"):
            self._send(int(q.get("code", "302")), b"", headers={"Location": q["to"]})
        elif p.endswith("/sse"):
            events = [b"event: message\ndata: {\"n\": %d}\n\n" % i for i in range(3)] + [b"data: [DONE]\n\n"]
            self._chunked("text/event-stream", iter(events))
        elif p.endswith("/ndjson"):
            self._chunked("application/x-ndjson", iter([b'{"n": 0}\n{"n": 1}\n', b"\n", b'{"n": 2, "done": true}\n']))
        elif p.endswith("/badjson"):
            self._chunked("application/x-ndjson", iter([b'{"n": 0}\n', b"{oops\n"]))
        else:
            self._send(404, b'{"error": "no route"}')


class HttpServer:
    """A running loopback server: ``url``, ``accepted`` connections, received ``requests``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, label: str = "server",
                 tls: ssl.SSLContext | None = None) -> None:
        self._srv = _Server((host, port), label, tls)
        self.host, self.port = host, self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sni(self) -> list[str | None]:
        return self._srv.sni

    @property
    def accepted(self) -> int:
        return self._srv.accepted

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._srv.requests

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[HttpServer]:
    s = HttpServer()
    yield s
    s.close()


@pytest.fixture
def make_server() -> Iterator[Callable[..., HttpServer]]:
    made: list[HttpServer] = []

    def make(host: str = "127.0.0.1", port: int = 0, label: str = "server",
             tls: ssl.SSLContext | None = None) -> HttpServer:
        s = HttpServer(host, port, label, tls)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def free_port_pair(host_a: str, host_b: str) -> int:
    """A port that is free on both loopback addresses."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind((host_a, 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind((host_b, port))
                except OSError:
                    continue
            return int(port)
    raise RuntimeError("no common free port")


@pytest.fixture
def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


# --------------------------------------------------------------------------- DNS server + resolver


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length


class RebindingDNS:
    """UDP DNS server on 127.0.0.1: A answers ``first`` to the first query, ``then`` to every other."""

    def __init__(self, first: str, then: str) -> None:
        self.first, self.then = first, then
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            qid = data[:2]
            qend = _skip_name(data, 12) + 4
            question = data[12:qend]
            labels, pos = [], 12
            while data[pos]:
                labels.append(data[pos + 1: pos + 1 + data[pos]].decode())
                pos += 1 + data[pos]
            self.queries.append(".".join(labels))
            address = self.first if len(self.queries) == 1 else self.then
            header = qid + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            answer = struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address)
            self.sock.sendto(header + question + answer, peer)

    def resolve(self, host: str, port: int) -> list[str]:
        """A resolver for the guarded transport that asks this server (A records only)."""
        qid = random.randrange(65536)
        query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(host) + struct.pack(">HH", 1, 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(query, ("127.0.0.1", self.port))
            data = s.recv(512)
        rid, _flags, _qd, ancount, _ns, _ar = struct.unpack(">HHHHHH", data[:12])
        assert rid == qid
        pos = _skip_name(data, 12) + 4
        out = []
        for _ in range(ancount):
            pos = _skip_name(data, pos)
            rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[pos: pos + 10])
            pos += 10
            if rtype == 1:
                out.append(socket.inet_ntoa(data[pos: pos + rdlen]))
            pos += rdlen
        if not out:
            raise socket.gaierror(socket.EAI_NONAME, "no A record")
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def rebinding_dns() -> Iterator[Callable[[str, str], RebindingDNS]]:
    made: list[RebindingDNS] = []

    def make(first: str, then: str) -> RebindingDNS:
        d = RebindingDNS(first, then)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()
