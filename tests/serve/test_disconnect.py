"""A client hanging up mid-stream: the gateway stops reading the upstream stream and closes it (the upstream
connection is released), instead of reading the upstream answer to its end for nobody."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests._services.loopback_http import LoopbackHTTPServer, Recorded, Reply
from tests.serve.conftest import KEY, RunningServer

CHUNKS, CHUNK_DELAY = 40, 0.1  # the upstream answer takes ~4 s when read to its end


class CountingChunks(list[bytes]):
    """The upstream's chunks, counting how many the stub server took to write (it stops at a broken pipe)."""

    def __init__(self, items: list[bytes]) -> None:
        super().__init__(items)
        self.served = 0
        self.finished = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for item in super().__iter__():
                self.served += 1
                yield item
        finally:
            self.finished.set()


def _long_stream(replies: list[CountingChunks]) -> Any:
    def handler(rec: Recorded) -> Reply:
        base = {"id": "up-1", "model": rec.json["model"], "created": 1, "object": "chat.completion.chunk"}
        events = [{**base, "choices": [{"index": 0, "delta": {"content": f"piece {i} "}, "finish_reason": None}]}
                  for i in range(CHUNKS)]
        chunks = CountingChunks([f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"])
        replies.append(chunks)
        return Reply(chunks=chunks, content_type="text/event-stream", chunk_delay=CHUNK_DELAY)
    return handler


def test_a_client_hanging_up_mid_stream_closes_the_upstream_stream(gateway: RunningServer,
                                                                  upstream: LoopbackHTTPServer) -> None:
    replies: list[CountingChunks] = []
    upstream.handler = _long_stream(replies)
    body = {"model": "assistant", "stream": True, "messages": [{"role": "user", "content": "long"}]}
    got = 0
    with httpx.Client(timeout=10) as client, client.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json=body,
            headers={"authorization": f"Bearer {KEY}"}) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if "piece" in line:
                got += 1
                if got == 2:
                    break  # leaving the block closes the connection mid-stream
    hung_up = time.monotonic()
    (served,) = replies
    # the upstream notices the closed connection at its next write or two, long before its ~4 s end
    assert served.finished.wait(3), f"the gateway kept reading the upstream: {served.served} chunks served"
    assert time.monotonic() - hung_up < 3
    assert served.served < CHUNKS // 2
    # the gateway still serves the next request normally
    upstream.handler = None
    upstream.reply = Reply(json.dumps({"id": "up-2", "object": "chat.completion", "created": 1, "model": "stub-model",
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": "fine"}}]}).encode())
    r = httpx.post(f"{gateway.url}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"}, timeout=10,
                   json={"model": "assistant", "messages": [{"role": "user", "content": "next"}]})
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "fine"
