"""What every wire-oracle test shares: the logical calls, the comparable outcome, and wire checks.

A *scenario* is one logical call, written once as our :class:`ChatRequest`; each provider's test module
writes the same call with the vendor's official SDK. Both go to the :class:`RecordingServer`; the tests
then compare

* the request: method, path, query, the headers that matter (auth, version, content type) and the JSON
  body, after the provider's documented normalisation (each module lists every difference it allows);
* the reply: the same scripted bytes go to the SDK, to our codec (pure functions) and to our provider
  object, and all three must give the same :class:`Outcome` (text, tool calls, finish reason, usage).

Headers never compared, for every provider (transport or telemetry, not semantics): ``host``,
``content-length``, ``connection``, ``accept-encoding``, ``user-agent``, ``accept`` (the SDKs send
``application/json`` or ``*/*`` even for streams; no vendor API negotiates on it), the SDKs' own
telemetry (``x-stainless-*``, ``x-goog-api-client``, ``x-amzn-trace-id``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aixpy.llm import (
    AssistantMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    ImagePart,
    ResponseFormat,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    ToolSpec,
    UserMessage,
)

from ._server import Recorded, RecordingServer, Reply

# --------------------------------------------------------------------------- shared inputs

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==")
"""A 1x1 PNG. Its standard base64 has ``+`` and ``/``, so a urlsafe-vs-standard encoding shows."""
PNG_B64 = base64.b64encode(PNG).decode("ascii")
IMAGE_URL = "https://example.com/images/cat.jpg"

WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
TIME_PARAMS: dict[str, Any] = {"type": "object", "properties": {"timezone": {"type": "string"}},
                               "required": ["timezone"]}
WEATHER = ToolSpec("get_weather", "Current weather of a city.", WEATHER_PARAMS)
TIME = ToolSpec("get_time", "Local time of a timezone.", TIME_PARAMS)

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature_c": {"type": "number"},
                   "conditions": {"type": "array", "items": {"type": "string"}}},
    "required": ["city", "temperature_c", "conditions"],
}

SYSTEM = "Be brief."
ASK_WEATHER = "What is the weather in Paris?"
TOOL_RESULT = "18°C, cloudy"
PREVIOUS_CALL = ToolCall("call_1", "get_weather", {"city": "Paris"})


def scenario(name: str, model: str) -> ChatRequest:
    """The logical call ``name`` as our request (each SDK module writes the same call its own way)."""
    if name == "plain":
        return ChatRequest(model, [UserMessage("Hi")])
    if name == "system":
        return ChatRequest(model, [SystemMessage(SYSTEM), UserMessage("Hi")])
    if name == "multi_turn_tools":
        return ChatRequest(model, [
            SystemMessage(SYSTEM), UserMessage(ASK_WEATHER),
            AssistantMessage("Let me check.", [PREVIOUS_CALL]),
            ToolMessage(TOOL_RESULT, "call_1"),
        ], tools=[WEATHER])
    if name.startswith("tools_"):  # tools_auto, tools_required, tools_none, tools_named
        choice = name.removeprefix("tools_")
        return ChatRequest(model, [UserMessage("Weather in Paris, and the time there?")], tools=[WEATHER, TIME],
                           tool_choice="get_weather" if choice == "named" else choice)
    if name == "json_object":
        return ChatRequest(model, [SystemMessage("Answer in JSON."), UserMessage(ASK_WEATHER)],
                           response_format=ResponseFormat.json_object())
    if name == "json_schema":
        return ChatRequest(model, [UserMessage(ASK_WEATHER)],
                           response_format=ResponseFormat.json_schema("weather_report", REPORT_SCHEMA, strict=True))
    if name == "sampling":
        return ChatRequest(model, [UserMessage("Count to five.")], temperature=0.3, max_tokens=64, top_p=0.9,
                           stop=["\n\n", "END"], seed=42)
    if name == "image":
        return ChatRequest(model, [UserMessage([TextPart("What is in these images?"), ImagePart.from_url(IMAGE_URL),
                                                ImagePart.from_bytes(PNG, "image/png")])])
    if name == "image_bytes":
        return ChatRequest(model, [UserMessage([TextPart("What is in this image?"),
                                                ImagePart.from_bytes(PNG, "image/png")])])
    raise KeyError(name)


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """What a reply means, in a form every side can produce: ours and each SDK's.

    ``tool_calls``: ``(id, name, arguments)`` with arguments as canonical JSON (sorted keys) so that
    dict order does not matter. ``usage``: ``(input, output, cached input)`` under our usage contract
    (see :mod:`aixpy.llm.types`); each SDK-side extractor states the mapping it applies.
    """

    text: str
    tool_calls: tuple[tuple[str, str, str], ...] = ()
    finish_reason: str = "stop"
    usage: tuple[int, int, int] | None = None
    model: str | None = None


def args_json(args: Any) -> str:
    if isinstance(args, str):
        args = json.loads(args) if args.strip() else {}
    return json.dumps(args, sort_keys=True, ensure_ascii=False)


def calls(items: Iterable[tuple[str | None, str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """Tool calls as compared. A call without an id gets ``call_{index}`` (our documented contract)."""
    return tuple((ident or f"call_{i}", name, args_json(args)) for i, (ident, name, args) in enumerate(items))


def finish(raw: str | None, mapping: Mapping[str, str], has_calls: bool) -> str:
    """A vendor finish reason through the test's explicit ``mapping``; ``stop`` with tool calls is
    ``tool_calls`` (our contract: OpenAI says ``stop`` for a forced tool, Gemini/Ollama always do)."""
    reason = mapping[raw] if raw is not None else "other"
    return "tool_calls" if reason == "stop" and has_calls else reason


def ours(resp: ChatResponse) -> Outcome:
    """The outcome of one of our responses (codec or provider)."""
    usage = resp.usage
    return Outcome(resp.text, calls((c.id, c.name, c.arguments) for c in resp.tool_calls), resp.finish_reason,
                   None if usage is None else (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens),
                   resp.model or None)


def run_ours(model: ChatModel, req: ChatRequest, stream: bool) -> ChatResponse:
    """One call through our provider object, streamed or not."""
    if not stream:
        return model.chat(req)
    with model.stream(req) as s:
        return s.get_response()


async def _arun(make_model: Callable[[], ChatModel], req: ChatRequest, stream: bool) -> ChatResponse:
    model = make_model()
    try:
        if not stream:
            return await model.achat(req)
        async with model.astream(req) as s:
            return await s.get_response()
    finally:
        await model.aclose()


def run_ours_async(make_model: Callable[[], ChatModel], req: ChatRequest, stream: bool) -> ChatResponse:
    """One call through the async half of our provider object (its own event loop, closed after)."""
    return asyncio.run(_arun(make_model, req, stream))


# --------------------------------------------------------------------------- stream framing for the codecs


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """``(event, data)`` pairs of an SSE body, as an SSE client hands them over."""
    out: list[tuple[str | None, str]] = []
    for block in raw.replace(b"\r\n", b"\n").decode("utf-8").split("\n\n"):
        event: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            out.append((event, "\n".join(data)))
    return out


# --------------------------------------------------------------------------- requests


@dataclass
class WireExpectation:
    """What one side's request must carry besides the JSON body."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)  # exact values (names lower case)
    absent: tuple[str, ...] = ()  # headers that must not be sent
    query: dict[str, list[str]] = field(default_factory=dict)
    method: str = "POST"


def check_wire(rec: Recorded, want: WireExpectation, *, side: str) -> None:
    assert (rec.method, rec.path) == (want.method, want.path), f"{side}: {rec.method} {rec.target}"
    assert rec.query == want.query, f"{side}: query {rec.query} != {want.query}"
    assert rec.media_type == "application/json", f"{side}: content-type {rec.headers.get('content-type')!r}"
    for name, value in want.headers.items():
        assert rec.headers.get(name) == value, f"{side}: header {name}={rec.headers.get(name)!r}, want {value!r}"
    for name in want.absent:
        assert name not in rec.headers, f"{side}: must not send {name}"


def same_body(sdk: Any, ours_body: Any, normalize: Callable[[Any], Any] = lambda b: b) -> None:
    """The SDK's body and ours are equal after ``normalize`` (JSON equality: key order never matters)."""
    left, right = normalize(json.loads(json.dumps(sdk))), normalize(json.loads(json.dumps(ours_body)))
    assert left == right, "bodies differ:\nSDK : " + json.dumps(left, sort_keys=True) + "\nours: " + json.dumps(
        right, sort_keys=True)


# --------------------------------------------------------------------------- one oracle case


@dataclass
class CaseResult:
    sdk_request: Recorded
    ours_request: Recorded
    sdk: Outcome
    codec: Outcome
    ours: Outcome
    response: ChatResponse


def run_case(
    server: RecordingServer,
    *,
    reply: Reply,
    req: ChatRequest,
    stream: bool,
    sdk_call: Callable[[], Outcome],
    codec_body: Any,
    codec_parse: Callable[[bytes], Outcome],
    want_sdk: WireExpectation,
    want_ours: WireExpectation | None = None,
    normalize_sdk: Callable[[Any], Any] = lambda b: b,
    normalize_ours: Callable[[Any], Any] = lambda b: b,
    comparable: Callable[[Outcome], Any] = lambda o: o,
    model: ChatModel | None = None,
    make_model: Callable[[], ChatModel] | None = None,
    asynchronous: bool = False,
) -> CaseResult:
    """The whole oracle for one logical call:

    1. the SDK makes the call; its request is recorded and checked against ``want_sdk``;
    2. our codec's body (``codec_body``, pure) equals the SDK's after normalisation;
    3. our provider object (``model``, shared by the module's tests, or a fresh ``make_model()``; its
       async half, on a fresh object and event loop, when ``asynchronous``) makes the call;
       its request is checked against ``want_ours`` (default ``want_sdk``) and its body equals the
       SDK's after normalisation;
    4. the SDK, our codec and our provider read the same reply bytes to the same :class:`Outcome`
       (through ``comparable`` when a side cannot see everything, e.g. ids an SDK drops).
    """
    server.reply = reply
    sdk_outcome = sdk_call()
    sdk_rec = server.take_one()
    check_wire(sdk_rec, want_sdk, side="SDK")
    same_body(normalize_sdk(sdk_rec.json), normalize_ours(codec_body))
    if asynchronous:
        assert make_model is not None
        response = run_ours_async(make_model, req, stream)
    elif model is not None:
        response = run_ours(model, req, stream)
    else:
        assert make_model is not None
        fresh = make_model()
        try:
            response = run_ours(fresh, req, stream)
        finally:
            fresh.close()
    ours_rec = server.take_one()
    check_wire(ours_rec, want_ours or want_sdk, side="ours")
    same_body(normalize_sdk(sdk_rec.json), normalize_ours(ours_rec.json))
    codec_outcome = codec_parse(reply.raw)
    ours_outcome = ours(response)
    assert comparable(codec_outcome) == comparable(sdk_outcome), "codec reads the reply differently from the SDK"
    assert comparable(ours_outcome) == comparable(sdk_outcome), "provider reads the reply differently from the SDK"
    return CaseResult(sdk_rec, ours_rec, sdk_outcome, codec_outcome, ours_outcome, response)
