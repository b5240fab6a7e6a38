"""The agent framework's own time per agent step vs the same loop written by hand on raw httpx.

Usage: python bench/agent_overhead.py [--runs 1000] [--rounds 5]

One run = the model asks for one tool call (model call 1), the tool runs, its result goes back, the
model answers (model call 2): one agent step plus the final answer. A tiny OpenAI-compatible stub in a
separate process on loopback answers a request without a ``tool`` message with a tool call, and one
with a tool result with the final text. The hand-written loop does what a correct minimal loop must:
POST, check the status, parse JSON, find the call, parse its arguments, run the tool, append the
assistant and tool messages, POST again, read the text. aixpy additionally builds typed requests,
validates the arguments against the tool's signature, records steps, usage and cost, checks the limits
and the deadline. Rows are interleaved in rounds; the median round is reported. Goal: <= 1.15x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

from _common import STUB_SERVE, median_rounds, print_relative, stub_server

STUB = textwrap.dedent(r'''
    import asyncio, json, sys
    def completion(message, finish):
        body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "stub",
                "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}}
        data = json.dumps(body).encode()
        return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(data)).encode() + b"\r\n\r\n" + data)
    CALL = completion({"content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}, "tool_calls")
    FINAL = completion({"content": "It is 18C and cloudy in Paris."}, "stop")
    def reply(body):
        return FINAL if b'"role":"tool"' in body or b'"role": "tool"' in body else CALL
''') + STUB_SERVE

ASK = "What is the weather in Paris?"
SYSTEM = "Be brief."


def get_weather(city: str) -> str:
    """Current weather of a city.

    Args:
        city: City name.
    """
    return f"18C, cloudy in {city}"


TOOL_SPEC = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name."}},
                   "required": ["city"]}}}
TOOLS = {"get_weather": get_weather}


def _hand_messages() -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": ASK}]


def _hand_next(data: dict[str, Any], messages: list[dict[str, Any]]) -> str | None:
    """The hand loop's decision: the final text, or None after appending the tool results."""
    message = data["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    if not calls:
        return str(message["content"])
    messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
    for call in calls:
        fn = call["function"]
        result = TOOLS[fn["name"]](**json.loads(fn["arguments"] or "{}"))
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return None


def hand_sync(base: str) -> tuple[Callable[[], None], Callable[[], None]]:
    import httpx

    client = httpx.Client(base_url=base, timeout=30)

    def run() -> None:
        messages = _hand_messages()
        for _ in range(10):
            r = client.post("/chat/completions", json={"model": "stub", "messages": messages, "tools": [TOOL_SPEC]})
            r.raise_for_status()
            if _hand_next(r.json(), messages) is not None:
                return
        raise RuntimeError("no answer")

    return run, client.close


def aixpy_sync(base: str) -> tuple[Callable[[], None], Callable[[], None]]:
    from aixpy import llm
    from aixpy.agents import Agent

    model = llm.new("openai_compatible:stub", endpoint=base, environ={})
    agent = Agent("bench", SYSTEM, model, tools=[get_weather])

    def run() -> None:
        result = agent.run(ASK)
        assert result.requests == 2
        assert result.text

    return run, model.close


def hand_async(base: str, loop: asyncio.AbstractEventLoop) -> tuple[Callable[[], None], Callable[[], None]]:
    import httpx

    client = httpx.AsyncClient(base_url=base, timeout=30)

    async def run() -> None:
        messages = _hand_messages()
        for _ in range(10):
            r = await client.post("/chat/completions",
                                  json={"model": "stub", "messages": messages, "tools": [TOOL_SPEC]})
            r.raise_for_status()
            if _hand_next(r.json(), messages) is not None:
                return
        raise RuntimeError("no answer")

    return lambda: loop.run_until_complete(run()), lambda: loop.run_until_complete(client.aclose())


def aixpy_async(base: str, loop: asyncio.AbstractEventLoop) -> tuple[Callable[[], None], Callable[[], None]]:
    from aixpy import llm
    from aixpy.agents import Agent

    model = llm.new("openai_compatible:stub", endpoint=base, environ={})
    agent = Agent("bench", SYSTEM, model, tools=[get_weather])

    async def run() -> None:
        result = await agent.arun(ASK)
        assert result.requests == 2
        assert result.text

    return lambda: loop.run_until_complete(run()), lambda: loop.run_until_complete(model.aclose())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000, help="agent runs per row (split over the rounds)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    loop = asyncio.new_event_loop()
    try:
        with stub_server(STUB) as base:
            per_round = max(1, args.runs // args.rounds)
            print(f"python {sys.version.split()[0]}; stub on loopback; one run = 2 model calls + 1 tool call; "
                  f"{per_round * args.rounds} runs per row in {args.rounds} interleaved rounds; median round")
            print(f"{'mode':<7}{'loop':<7}{'us/run':>10}{'vs hand':>10}{'cpu us':>10}{'cpu vs':>10}")
            for mode in ("sync", "async"):
                if mode == "sync":
                    rows = {"hand": hand_sync(base), "aixpy": aixpy_sync(base)}
                else:
                    rows = {"hand": hand_async(base, loop), "aixpy": aixpy_async(base, loop)}
                print_relative(mode, median_rounds(rows, per_round, args.rounds, warmup=30), "hand", (7, 7))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t0:.1f} s)")
    raise SystemExit(code)
