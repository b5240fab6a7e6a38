"""Per-call overhead of aixpy's LLM layer vs raw httpx (and LiteLLM, when importable).

Usage: python bench/llm_overhead.py [--calls 2000] [--rounds 5] [--litellm-python PATH]

A fast OpenAI-compatible stub runs in a separate process on loopback (asyncio, keep-alive, canned
replies: one JSON completion, and an SSE stream of 8 deltas + a usage chunk + [DONE]). Each client
makes the same calls one after another; rows are interleaved in rounds so machine noise hits all of
them alike, and the median round is reported. "vs httpx" = client time / raw httpx time (lower is
better; the goal is <= 1.10x). "cpu us" is the CPU time of this (client) process per call: it leaves
out the stub's time and most scheduling noise of a 2-core machine, so it shows the client's own cost.

Raw httpx does the least a correct client must: POST the JSON, check the status, parse the body
(non-stream) or iterate SSE lines and parse each data payload (stream). aixpy additionally builds a
typed request, maps errors, tracks usage/cost/latency and folds the stream into a ChatResponse.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable

from _common import STUB_SERVE, median_rounds, print_relative, stub_server

STUB = textwrap.dedent(r'''
    import asyncio, json, sys
    COMPLETION = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the stub server."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}).encode()
    def chunk(delta, finish=None):
        return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "stub",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w + " "}) for w in "one two three four five six seven eight".split()]
    events += [chunk({}, "stop"), {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "stub",
               "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}]
    SSE = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    def response(body, ctype):
        return (b"HTTP/1.1 200 OK\r\ncontent-type: " + ctype + b"\r\ncontent-length: " + str(len(body)).encode()
                + b"\r\n\r\n" + body)
    R_JSON, R_SSE = response(COMPLETION, b"application/json"), response(SSE, b"text/event-stream")
    def reply(body):
        return R_SSE if b'"stream": true' in body or b'"stream":true' in body else R_JSON
''') + STUB_SERVE

LITELLM_CLIENT = textwrap.dedent(r'''
    import json, sys, time, litellm
    base, calls, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    msgs = [{"role": "user", "content": "Say hello."}]
    def one():
        if stream:
            for _ in litellm.completion(model="openai/stub", api_base=base, api_key="k", messages=msgs,
                                        stream=True, stream_options={"include_usage": True}):
                pass
        else:
            litellm.completion(model="openai/stub", api_base=base, api_key="k", messages=msgs)
    for _ in range(20):
        one()
    t = time.perf_counter()
    for _ in range(calls):
        one()
    print(json.dumps({"seconds": time.perf_counter() - t}))
''')


def raw_httpx(base: str, stream: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    import httpx

    client = httpx.Client(base_url=base, timeout=30)
    body = {"model": "stub", "messages": [{"role": "user", "content": "Say hello."}]}

    def call() -> None:
        if stream:
            with client.stream("POST", "/chat/completions", json={**body, "stream": True,
                                                                  "stream_options": {"include_usage": True}}) as r:
                r.raise_for_status()
                text = []
                for line in r.iter_lines():
                    if line.startswith("data: ") and line != "data: [DONE]":
                        for ch in json.loads(line[6:])["choices"]:
                            text.append(ch["delta"].get("content") or "")
        else:
            r = client.post("/chat/completions", json=body)
            r.raise_for_status()
            r.json()["choices"][0]["message"]["content"]

    return call, client.close


def aixpy_client(base: str, stream: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    from aixpy import llm

    model = llm.new("openai_compatible:stub", endpoint=base, environ={})

    def call() -> None:
        if stream:
            with model.stream("Say hello.") as s:
                for _ in s:
                    pass
            assert s.response.usage is not None
        else:
            model.chat("Say hello.")

    return call, model.close


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="calls per row (split over the rounds)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--litellm-python", default=os.path.expanduser("~/.cache/aixpy/venv-litellm/bin/python"),
                    help="a Python with litellm installed (kept out of aixpy's own venv)")
    args = ap.parse_args()
    with stub_server(STUB) as base:
        per_round = max(1, args.calls // args.rounds)
        print(f"python {sys.version.split()[0]}; stub on loopback; {per_round * args.rounds} calls per row "
              f"in {args.rounds} interleaved rounds; median round reported")
        print(f"{'mode':<8}{'client':<10}{'us/call':>10}{'vs httpx':>10}{'cpu us':>10}{'cpu vs':>10}")
        for stream in (False, True):
            clients = {"httpx": raw_httpx(base, stream), "aixpy": aixpy_client(base, stream)}
            medians = median_rounds(clients, per_round, args.rounds, warmup=50)
            mode = "stream" if stream else "chat"
            print_relative(mode, medians, "httpx", (8, 10))
            base_us = medians["httpx"][0]
            if os.path.exists(args.litellm_python):
                n = per_round
                res = subprocess.run([args.litellm_python, "-c", LITELLM_CLIENT, base, str(n), "1" if stream else "0"],
                                     capture_output=True, text=True, timeout=900)
                if res.returncode == 0:
                    us = json.loads(res.stdout.strip().splitlines()[-1])["seconds"] / n * 1e6
                    print(f"{mode:<8}{'litellm':<10}{us:>10.1f}{us / base_us:>9.2f}x   (one round of {n}, own process)")
                else:
                    print(f"{mode:<8}{'litellm':<10}{'failed':>10}   {res.stderr.strip().splitlines()[-1:]}")
            else:
                print(f"{mode:<8}{'litellm':<10}{'n/a':>10}   (no {args.litellm_python})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
