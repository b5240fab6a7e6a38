"""The scriptable loopback HTTP server of the provider, policy and fault-injection tests.

Each request takes the next scripted :class:`Reply` (or asks ``handler``), so a test states exactly
what the "provider" does: answer JSON, stream SSE/NDJSON chunk by chunk, cut a stream after N
chunks (TCP reset, close mid-body, or a clean end), reset the connection, hang, or send garbage.
The server itself is :mod:`tests._services.loopback_http`; this module adds the constructors these
tests use. Every socket binds to 127.0.0.1; nothing reaches the internet. The few tests at the bottom
check the server itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from aixpy.llm import AsyncChatStream, ChatStream, StreamEvent
from tests._services import loopback_http
from tests._services.loopback_http import Cut
from tests._services.loopback_http import split_sse as sse_blocks

FIXTURES = Path(__file__).parent / "fixtures"


class Reply(loopback_http.Reply):
    """What the server does for one request; the fields are :class:`tests._services.loopback_http.Reply`'s.

    Here ``Reply.raw(body)`` and ``Reply.hang(seconds)`` are constructors; on the class they shadow the
    base's ``raw`` property and ``hang`` field (unused by these tests; an instance still has its ``hang``).
    """

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(json.dumps(obj).encode(), status, headers=headers or {})

    @classmethod
    def raw(cls, body: bytes | str, status: int = 200,  # type: ignore[override]
            content_type: str = "application/json") -> Reply:
        return cls(body.encode() if isinstance(body, str) else body, status, content_type)

    @classmethod
    def sse(cls, blocks: Sequence[bytes | str], **kw: Any) -> Reply:
        """``blocks``: whole SSE messages (``data: ...\\n\\n``), one write each."""
        chunks = [b if isinstance(b, bytes) else b.encode() for b in blocks]
        return cls(content_type="text/event-stream", chunks=chunks, **kw)

    @classmethod
    def sse_data(cls, payloads: Sequence[Any], *, done: bool = True, **kw: Any) -> Reply:
        """One ``data: <payload>`` message per payload (a str as is, else JSON), then ``data: [DONE]``."""
        blocks = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
        if done:
            blocks.append("data: [DONE]\n\n")
        return cls.sse(blocks, **kw)

    @classmethod
    def sse_file(cls, name: str, **kw: Any) -> Reply:
        """The SSE fixture ``name``, one write per message."""
        return cls.sse(sse_blocks((FIXTURES / name).read_bytes()), **kw)

    @classmethod
    def ndjson(cls, lines: Sequence[Any], **kw: Any) -> Reply:
        """One line per item (a str as is, else JSON), one write each."""
        chunks = [(line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines]
        return cls(content_type="application/x-ndjson", chunks=chunks, **kw)

    @classmethod
    def connection_reset(cls) -> Reply:
        """Reset the connection (TCP RST) instead of answering."""
        return cls(reset=True)

    @classmethod
    def hang(cls, seconds: float) -> Reply:  # type: ignore[override]
        """Answer ``{}`` only after ``seconds`` (a client timeout fires first)."""
        return cls(b"{}", delay=seconds)


@dataclass
class Recorded(loopback_http.Recorded):
    """One request; here ``path`` is the whole target, query included (the tests assert on it)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.path = self.target


class ScriptedServer(loopback_http.LoopbackHTTPServer):
    """A loopback server answering from a script (``push``), then ``handler``, else a 418.

    ``url`` is ``http://127.0.0.1:<port>``; ``label`` names the server in the 418 message.
    """

    recorded_type = Recorded

    def __init__(self, *replies: Reply, label: str = "server") -> None:
        super().__init__(*replies, name=f"scripted-server-{label}")
        self.label = label

    def fallback(self, rec: loopback_http.Recorded) -> Reply:
        return Reply.json({"error": {"message": f"{self.label}: no scripted reply for {rec.method} {rec.path}"}},
                          status=418)


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
