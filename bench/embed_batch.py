"""Batched + concurrent TEI embedding vs one call per text, against a local TEI-compatible server.

The server is a real loopback HTTP server (threaded, HTTP/1.1 keep-alive) speaking TEI's ``/embed``,
``/info`` and ``/health``, with a fixed latency per request (``--latency-ms``, default 20) and
deterministic vectors (cached per text, so its CPU cost per text is tiny and the same on both paths).
Both paths use the same ``huggingface_tei`` provider object (same pooled connections):

* ``batched``: ``embed_array(texts)``: sub-batches of ``max_client_batch_size`` (128, from ``/info``),
  ``--concurrency`` in flight (sync path: thread pool); ``batched-async``: ``aembed_array`` (tasks);
* ``per-text``: ``for t in texts: embed(t)``, the naive loop (Aixgo's behaviour without EmbedBatch).
  At 20 ms a request it needs ~200 s for 10k texts, so by default it runs on the first
  ``--per-text-sample`` texts (500) and its throughput is compared; ``--per-text-sample 0`` runs all.

Every vector of the batched paths is checked against the server's (order included). Goal: >= 10x.

    .venv/bin/python bench/embed_batch.py                  # 10k texts, 20 ms, concurrency 8
    .venv/bin/python bench/embed_batch.py --endpoints 3    # a pool of 3 servers
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from aixpy.config.embeddings import TEIEmbeddingsConfig
from aixpy.embeddings.tei import TEIEmbeddings


class TEIServer:
    """A TEI-compatible loopback server with a fixed latency per request."""

    def __init__(self, *, latency: float, dims: int, max_batch: int) -> None:
        self.latency, self.dims, self.max_batch = latency, dims, max_batch
        self.requests = 0
        self.texts = 0
        self._rows: dict[str, str] = {}
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms
            # to every response, which would flatter the batched path (fewer responses) unfairly
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/info":
                    self._send(200, json.dumps({"model_id": "bench/tei-model", "max_client_batch_size": owner.max_batch,
                                                "max_batch_tokens": 16384, "version": "bench"}).encode())
                else:
                    self._send(200, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inputs = json.loads(body)["inputs"]
                with owner._lock:
                    owner.requests += 1
                    owner.texts += len(inputs)
                time.sleep(owner.latency)
                self._send(200, ("[" + ",".join(owner.row(t) for t in inputs) + "]").encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self._srv = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._srv.server_address[1]}"
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def row(self, text: str) -> str:
        cached = self._rows.get(text)
        if cached is None:
            cached = json.dumps(vector(text, self.dims).tolist())
            self._rows[text] = cached
        return cached

    def reset(self) -> None:
        with self._lock:
            self.requests = self.texts = 0

    def close(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def vector(text: str, dims: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=10_000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--max-batch", type=int, default=128, help="the server's max_client_batch_size")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--endpoints", type=int, default=1)
    ap.add_argument("--per-text-sample", type=int, default=500, help="texts for the per-text path (0 = all)")
    args = ap.parse_args()

    servers = [TEIServer(latency=args.latency_ms / 1000, dims=args.dims, max_batch=args.max_batch)
               for _ in range(args.endpoints)]
    texts = [f"document {i}: a short passage about topic {i % 113} and detail {i * 7 % 1009}"
             for i in range(args.texts)]
    for s in servers:  # warm the servers' vector caches so both paths pay the same server cost
        for t in texts:
            s.row(t)
    expected = np.stack([vector(t, args.dims) for t in texts])
    cfg = TEIEmbeddingsConfig(endpoint=[s.url for s in servers], max_concurrency=args.concurrency,
                              normalize=False)
    svc = TEIEmbeddings(cfg, environ={})
    svc.embed_array(texts[:256])  # warm-up: connections, thread pool

    def requests() -> int:
        return sum(s.requests for s in servers)

    def reset() -> None:
        for s in servers:
            s.reset()

    rows: list[tuple[str, int, int, float]] = []
    reset()
    t0 = time.perf_counter()
    out = svc.embed_array(texts)
    rows.append(("batched (sync)", len(texts), requests(), time.perf_counter() - t0))
    assert np.allclose(out, expected, atol=1e-6), "batched vectors differ from the server's"

    reset()
    t0 = time.perf_counter()
    out = asyncio.run(svc.aembed_array(texts))
    rows.append(("batched (async)", len(texts), requests(), time.perf_counter() - t0))
    assert np.allclose(out, expected, atol=1e-6), "async batched vectors differ from the server's"

    sample = texts if args.per_text_sample <= 0 else texts[: args.per_text_sample]
    reset()
    t0 = time.perf_counter()
    singles = [svc.embed(t) for t in sample]
    rows.append(("per-text loop", len(sample), requests(), time.perf_counter() - t0))
    assert np.allclose(np.array(singles, dtype=np.float32), expected[: len(sample)], atol=1e-6)
    svc.close()
    for s in servers:
        s.close()

    base = rows[-1][1] / rows[-1][3]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"texts={args.texts}  latency={args.latency_ms:g} ms/request  dims={args.dims}  "
          f"batch={svc.batch_size}  concurrency={args.concurrency}  endpoints={args.endpoints}  "
          f"loadavg={load:.1f}  python={sys.version.split()[0]}")
    print(f"{'path':<18}{'texts':>8}{'requests':>10}{'wall s':>10}{'texts/s':>11}{'ratio':>9}")
    for name, n, reqs, wall in rows:
        rate = n / wall
        print(f"{name:<18}{n:>8}{reqs:>10}{wall:>10.2f}{rate:>11.0f}{rate / base:>8.1f}x")
    best = max(n / w for _, n, _, w in rows[:2]) / base
    print(f"goal >= 10x: {'met' if best >= 10 else 'NOT met'} ({best:.0f}x)")
    return 0 if best >= 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
