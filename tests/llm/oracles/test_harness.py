"""The oracle harness itself: the recording server records what was sent and streams what is scripted,
and no oracle test can leave the loopback interface."""

from __future__ import annotations

import socket

import httpx
import pytest

from ._oracle import sse_events
from ._server import RecordingServer, Reply


def test_records_method_path_query_headers_and_body(server: RecordingServer) -> None:
    server.reply = Reply.json({"ok": True})
    with httpx.Client(trust_env=False) as c:
        r = c.post(server.url + "/v1beta/models/m:streamGenerateContent?alt=sse", json={"a": [1, "é"]},
                   headers={"X-Goog-Api-Key": "k"})
    assert r.json() == {"ok": True}
    rec = server.take_one()
    assert (rec.method, rec.path, rec.query) == ("POST", "/v1beta/models/m:streamGenerateContent", {"alt": ["sse"]})
    assert rec.headers["x-goog-api-key"] == "k"
    assert rec.media_type == "application/json"
    assert rec.json == {"a": [1, "é"]}


def test_streams_a_fixture_event_by_event(server: RecordingServer) -> None:
    server.reply = Reply.fixture("anthropic_text.sse")
    with httpx.Client(trust_env=False) as c, c.stream("POST", server.url + "/v1/messages", json={}) as r:
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        body = b"".join(r.iter_bytes())
    assert body == server.reply.raw
    assert [event for event, _ in sse_events(body)][:2] == ["message_start", "content_block_start"]


def test_only_loopback_connections_are_allowed() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(AssertionError, match="only the loopback server"):
            sock.connect(("192.0.2.1", 443))  # TEST-NET-1: refused before any packet is sent
    finally:
        sock.close()
