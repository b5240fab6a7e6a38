"""``aixpy serve`` on a free loopback port, in a thread, in front of a loopback stub of an OpenAI upstream."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests._services.loopback_http import LoopbackHTTPServer, Recorded, Reply

KEY, LIMITED_KEY, REVOKED_KEY = "sk-client-full", "sk-client-limited", "sk-client-revoked"
UPSTREAM_KEY = "sk-upstream-secret-123"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _sse(*chunks: dict[str, Any]) -> list[bytes]:
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def upstream_reply(rec: Recorded) -> Reply:
    """An OpenAI-compatible upstream: echoes the last user text; calls ``get_weather`` when given tools."""
    body = rec.json
    text = "echo: " + str(body["messages"][-1]["content"])
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    base = {"id": "up-1", "model": body["model"], "created": 1}
    tools = bool(body.get("tools")) and body["messages"][-1]["role"] == "user"
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if tools else text}
        if tools:
            message["tool_calls"] = [{"id": "call_1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
        return Reply(json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop"}]}).encode())
    chunk = {**base, "object": "chat.completion.chunk"}
    if tools:
        deltas: list[dict[str, Any]] = [
            {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": '{"city": '}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}]
    else:
        deltas = [{"role": "assistant", "content": ""}, {"content": text[:6]}, {"content": text[6:]}]
    chunks = [{**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if tools else "stop"}]})
    chunks.append({**chunk, "choices": [], "usage": usage})
    delay = float(body.get("seed") or 0) / 1000  # a test can slow the stream down through `seed` (ms per chunk)
    return Reply(chunks=_sse(*chunks), content_type="text/event-stream", chunk_delay=delay)


def config_yaml(upstream: str, *, extra: str = "") -> str:
    return f"""
agents:
  - name: assistant
    providers:
      - provider: openai_compatible
        model: stub-model
        endpoint: {upstream}/v1
        api_key: {UPSTREAM_KEY}
  - name: other
    providers:
      - provider: openai_compatible
        model: stub-other
        endpoint: {upstream}/v1
        api_key: {UPSTREAM_KEY}
embeddings:
  provider: hash
  hash: {{dimensions: 64}}
serve:
  api_keys:
    - {{name: full, sha256: "{sha(KEY)}"}}
    - {{name: limited, sha256: "{sha(LIMITED_KEY)}", models: [other]}}
    - {{name: revoked, sha256: "{sha(REVOKED_KEY)}", disabled: true}}
  max_body_bytes: 4096
{extra}"""


@pytest.fixture(autouse=True)
def no_leftover_subscribers() -> Iterator[None]:
    """A server turns its Prometheus subscription off when it stops: nothing leaks into later tests."""
    from aixpy import telemetry

    before = telemetry.subscribers()
    yield
    assert telemetry.subscribers() == before, "the server left a global telemetry subscriber behind"


@pytest.fixture
def upstream() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer(name="serve-upstream") as srv:
        srv.handler = upstream_reply
        yield srv


class RunningServer:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, http="h11", log_level="warning", lifespan="on",
                                                    h11_max_incomplete_event_size=16 * 1024))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def gateway(upstream: LoopbackHTTPServer) -> Iterator[RunningServer]:
    from aixpy.config import load_config_str
    from aixpy.serve import create_app

    server = RunningServer(create_app(load_config_str(config_yaml(upstream.url))))
    yield server
    server.close()
