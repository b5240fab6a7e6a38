"""The loopback HTTP server of the remote embedding tests (shared by every embedding provider).

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
hang without answering (``Reply.hang_for(seconds)``, for timeouts) or drop the connection
(``Reply.drop_connection()``). The server is threaded, so concurrent requests are answered concurrently
(a delayed reply does not hold back the others). Fixtures: ``loopback`` (function scope, a fresh server
per test). The server itself is :mod:`tests._services.loopback_http`; this module adds the constructors
and fakes of the embedding tests.

It binds to 127.0.0.1 only; nothing here can reach the internet. The API is kept stable: other test
modules import it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests._services import loopback_http
from tests._services.loopback_http import Handler, Recorded

__all__ = ["Handler", "LoopbackServer", "Recorded", "Reply", "fake_ollama", "fake_openai", "loopback", "vector_for"]


class Reply(loopback_http.Reply):
    """What the server answers to one request; the fields are :class:`tests._services.loopback_http.Reply`'s."""

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
        """One JSON document per line, chunked one line per write."""
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


class LoopbackServer(loopback_http.LoopbackHTTPServer):
    """A threaded HTTP server on ``127.0.0.1:<free port>`` answering from a script; see the module doc."""

    def __init__(self) -> None:  # unscripted requests get a 500 "no reply scripted"
        super().__init__(name="embeddings-loopback-server")

    script = loopback_http.LoopbackHTTPServer.push


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """A fresh :class:`LoopbackServer` per test, closed after it. Import it into a test module or conftest."""
    with LoopbackServer() as srv:
        yield srv


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
