"""Codec for HuggingFace text generation: TGI's ``/generate`` and ``/generate_stream`` (SSE) and the
serverless Inference API ``POST {base}/models/{model}``, which takes the same body. Pure, no I/O.

Chat with HuggingFace models goes elsewhere: the OpenAI-compatible router
(``POST https://router.huggingface.co/v1/chat/completions``, :data:`ROUTER_CHAT_URL`, bearer
``hf_...`` token) and TGI's own ``/v1/chat/completions`` speak the OpenAI format, so providers use
:mod:`aixpy.llm.codecs.openai_chat` for them. That route applies the model's real chat template and
supports tools, images and JSON schemas; this codec is for plain text generation (base models,
completion-style prompts, self-hosted TGI without a chat template), where tools are not supported.

Prompt rendering (:func:`render_prompt`)
    A request made of one user message with plain text is sent as-is (text completion). Anything else
    becomes a transcript: ``System: ...``, ``User: ...``, ``Assistant: ...`` blocks separated by a
    blank line, ending with ``Assistant:`` for the model to continue. It is a neutral template, not
    the model's own chat template (use the router for that). ``extra={"inputs": ...}`` sends your own
    prompt instead. Tools, tool messages, assistant tool calls and images raise InvalidInputError.

Request mapping (:func:`build_request`)
    ``parameters``: ``max_new_tokens``, ``temperature`` (``0`` means greedy: sent as ``do_sample:
    false``, since TGI rejects a temperature <= 0), ``top_p`` (left out at ``1.0``, which TGI rejects),
    ``stop``, ``seed``, ``return_full_text: false`` and ``details: true`` (finish reason and token
    counts). JSON mode uses TGI's ``grammar`` ``{"type": "json", "value": schema}``. ``stream: true`` is
    sent for streams (the serverless API and TGI's ``/`` route read it). ``wait_for_model`` adds
    ``options.wait_for_model`` (serverless API). ``req.extra``: TGI parameter names (:data:`PARAMETER_KEYS`)
    and a ``parameters`` dict go into ``parameters``, an ``options`` dict into ``options``, the rest to the
    top level.

Responses
    ``{"generated_text", "details"}`` (TGI) or ``[{"generated_text": ...}]`` (serverless) give one text
    event; ``details.finish_reason`` (``eos_token``, ``length``, ``stop_sequence``) the finish and
    ``details.generated_tokens`` the output tokens. Input tokens are known in streams
    (``details.input_length``) and, without streaming, only when ``decoder_input_details`` was asked
    for (the length of ``details.prefill``). Stream events ``{"token": {"text", "special"},
    "generated_text", "details"}`` give text deltas (special tokens such as ``</s>`` skipped); the last
    one carries ``details``. Errors: ``{"error", "error_type"}`` (TGI) and ``{"error", "estimated_time"}``
    (a model still loading: retryable, see :func:`estimated_time`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aixpy.errors import InvalidInputError, ResponseFormatError
from aixpy.llm.codecs import _common
from aixpy.llm.codecs._common import as_int, canonical_json, error_for_code, load_json, load_json_object
from aixpy.llm.codecs.openai_chat import OpenAIChatAPI
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    Message,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolMessage,
    Usage,
    UserMessage,
    fold_stream,
)

__all__ = [
    "GENERATE_PATH",
    "GENERATE_STREAM_PATH",
    "PARAMETER_KEYS",
    "PROVIDER",
    "ROUTER_CHAT_URL",
    "SERVERLESS_BASE_URL",
    "StreamParser",
    "TGIChatAPI",
    "TextGenerationAPI",
    "build_request",
    "error_code",
    "estimated_time",
    "headers",
    "parse_error",
    "parse_response",
    "parse_stream_event",
    "path",
    "render_prompt",
    "serverless_url",
]

PROVIDER = "huggingface"
ROUTER_CHAT_URL = "https://router.huggingface.co/v1/chat/completions"
SERVERLESS_BASE_URL = "https://router.huggingface.co/hf-inference"
GENERATE_PATH = "/generate"
GENERATE_STREAM_PATH = "/generate_stream"

PARAMETER_KEYS = frozenset({
    "best_of", "decoder_input_details", "details", "do_sample", "frequency_penalty", "grammar", "max_new_tokens",
    "repetition_penalty", "return_full_text", "seed", "stop", "temperature", "top_k", "top_n_tokens", "top_p",
    "truncate", "typical_p", "watermark", "adapter_id",
})
"""Keys of ``req.extra`` that go into ``parameters`` (TGI's ``GenerateParameters``)."""

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_ROUTE_HINT = ("use the OpenAI-compatible chat route instead (https://router.huggingface.co/v1/chat/completions "
               "or TGI's /v1/chat/completions, with the openai_chat codec)")


def path(stream: bool) -> str:
    """TGI's ``/generate_stream`` or ``/generate``."""
    return GENERATE_STREAM_PATH if stream else GENERATE_PATH


def serverless_url(model: str, *, base_url: str = SERVERLESS_BASE_URL) -> str:
    """``{base_url}/models/{model}`` for the serverless Inference API (``model`` like ``org/name``)."""
    if not _MODEL_ID.fullmatch(model) or ".." in model:
        raise InvalidInputError(f"invalid HuggingFace model id {model!r}")
    return f"{base_url.rstrip('/')}/models/{model}"


def headers(token: str | None) -> dict[str, str]:
    """``authorization: Bearer hf_...`` (left out for a local TGI without a token)."""
    out = {"content-type": "application/json"}
    if token:
        out["authorization"] = f"Bearer {token}"
    return out


# --------------------------------------------------------------------------- request


def _text(m: UserMessage) -> str:
    texts: list[str] = []
    for part in m.parts():
        if not isinstance(part, TextPart):
            raise InvalidInputError(f"text generation takes no images; {_ROUTE_HINT}")
        texts.append(part.text)
    return "\n\n".join(texts)


def render_prompt(messages: Sequence[Message]) -> str:
    """The prompt for ``messages`` (see the module docstring for the template)."""
    if len(messages) == 1 and isinstance(messages[0], UserMessage):
        return _text(messages[0])
    blocks: list[str] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            blocks.append(f"System: {m.content}")
        elif isinstance(m, UserMessage):
            blocks.append(f"User: {_text(m)}")
        elif isinstance(m, AssistantMessage) and not m.tool_calls:
            blocks.append(f"Assistant: {m.content or ''}")
        else:
            kind = "tool results" if isinstance(m, ToolMessage) else "assistant tool calls"
            raise InvalidInputError(f"text generation does not support {kind}; {_ROUTE_HINT}")
    blocks.append("Assistant:")
    return "\n\n".join(blocks)


def _parameters(req: ChatRequest, details: bool) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if req.max_tokens is not None:
        params["max_new_tokens"] = req.max_tokens
    if req.temperature is not None and req.temperature <= 0:
        params["do_sample"] = False
    elif req.temperature is not None:
        params["temperature"] = req.temperature
    if req.top_p is not None and req.top_p < 1:
        params["top_p"] = req.top_p
    if req.stop:
        params["stop"] = list(req.stop)
    if req.seed is not None:
        params["seed"] = req.seed
    params["return_full_text"] = False
    if details:
        params["details"] = True
    rf = req.response_format
    if rf is not None and rf.type != "text":
        schema = rf.schema if rf.type == "json_schema" and rf.schema else {"type": "object"}
        params["grammar"] = {"type": "json", "value": schema}
    return params


def build_request(req: ChatRequest, *, stream: bool, wait_for_model: bool | None = None,
                  details: bool = True) -> dict[str, Any]:
    """The JSON body of TGI ``/generate`` / ``/generate_stream`` or the serverless ``POST /models/{model}``.

    ``details=False`` for servers that reject it (non-TGI backends); replies then carry no finish
    reason nor token counts. Raises InvalidInputError for tools (see the module docstring).
    """
    if req.tools:
        raise InvalidInputError(f"text generation does not support tools; {_ROUTE_HINT}")
    params = _parameters(req, details)
    prompt = req.extra["inputs"] if "inputs" in req.extra else render_prompt(req.messages)
    body: dict[str, Any] = {"inputs": prompt, "parameters": params}
    if stream:
        body["stream"] = True
    options: dict[str, Any] = {} if wait_for_model is None else {"wait_for_model": wait_for_model}
    for key, value in req.extra.items():
        if key == "parameters" and isinstance(value, dict):
            params.update(value)
        elif key == "options" and isinstance(value, dict):
            options.update(value)
        elif key in PARAMETER_KEYS:
            params[key] = value
        else:
            body[key] = value
    if options:
        body["options"] = options
    return body


# --------------------------------------------------------------------------- responses


def _raise_body_error(data: dict[str, Any], provider: str) -> None:
    if "error" not in data:
        return
    message, code = _message_and_code(data)
    raise error_for_code(code, message or "generation failed", provider=provider, body=canonical_json(data))


def _details_events(details: Any) -> list[StreamEvent]:
    if not isinstance(details, dict):
        return []
    prefill = details.get("prefill")
    input_tokens = as_int(details.get("input_length")) or (len(prefill) if isinstance(prefill, list) else 0)
    events = [StreamEvent.usage_update(Usage(input_tokens, as_int(details.get("generated_tokens"))))]
    reason = details.get("finish_reason")
    events.append(StreamEvent.finish(reason if isinstance(reason, str) else None))
    return events


def parse_response(body: dict[str, Any] | list[Any] | bytes | str, *, provider: str = PROVIDER) -> ChatResponse:
    """Parse ``{"generated_text", "details"}`` (TGI) or ``[{"generated_text": ...}]`` (serverless).

    Raises ResponseFormatError for invalid JSON or no ``generated_text``; an error body raises the
    matching ProviderError. Without ``details`` the finish reason is ``"other"`` and usage ``None``.
    """
    data = body if isinstance(body, (dict, list)) else load_json(body, provider=provider)
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict):
        raise ResponseFormatError("expected an object with 'generated_text'", provider=provider)
    _raise_body_error(data, provider)
    text = data.get("generated_text")
    if not isinstance(text, str):
        raise ResponseFormatError("response has no 'generated_text'", provider=provider,
                                  body=canonical_json(data)[:500])
    events = [StreamEvent.text_delta(text)] if text else []
    events += _details_events(data.get("details"))
    return fold_stream(events, provider=provider)


def parse_stream_event(data: str | bytes, *, provider: str = PROVIDER) -> list[StreamEvent]:
    """Events for one ``data:`` payload of ``/generate_stream`` (``[DONE]`` and blanks give ``[]``).

    The last payload (``generated_text`` set) adds usage and finish when it has ``details``, else a
    finish of ``"other"``. An ``{"error", "error_type"}`` payload raises the matching ProviderError.
    """
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if data.strip() in ("", "[DONE]"):
        return []
    payload = load_json_object(data, provider=provider)
    _raise_body_error(payload, provider)
    events: list[StreamEvent] = []
    token = payload.get("token")
    if isinstance(token, dict) and not token.get("special") and isinstance(token.get("text"), str) and token["text"]:
        events.append(StreamEvent.text_delta(token["text"]))
    if isinstance(payload.get("details"), dict):
        events += _details_events(payload["details"])
    elif payload.get("generated_text") is not None:
        events.append(StreamEvent.finish(None))
    return events


class StreamParser(_common.StreamParser):
    """:func:`parse_stream_event` for one ``/generate_stream`` stream (no end marker: it ends at EOF)."""

    __slots__ = ()

    def __init__(self, *, provider: str = PROVIDER) -> None:
        super().__init__(provider)

    def feed(self, item: Any) -> list[StreamEvent]:
        return self._noting_finish(parse_stream_event(getattr(item, "data", item), provider=self.provider))


# --------------------------------------------------------------------------- errors

_ERROR_TYPES = {
    "overloaded": "overloaded", "validation": "invalid_request", "generation": "server_error",
    "incomplete_generation": "server_error", "healthcheck": "service_unavailable", "template_error": "invalid_request",
    "tool_error": "invalid_request",
}


def error_code(message: str, error_type: str | None = None, *, loading: bool = False) -> str | None:
    """A code :func:`~aixpy.llm.codecs._common.error_for_code` understands for a HuggingFace error.

    A loading model (``estimated_time`` present, or "currently loading") -> ``service_unavailable``
    (retryable); TGI ``error_type`` s are mapped (``overloaded``, ``validation`` -> ``invalid_request``...);
    otherwise guessed from the text (rate limit, credentials, unknown model).
    """
    lowered = message.lower()
    if loading or "currently loading" in lowered:
        return "service_unavailable"
    if error_type and error_type in _ERROR_TYPES:
        return _ERROR_TYPES[error_type]
    if "rate limit" in lowered or "too many requests" in lowered:
        return "rate_limit"
    if "credentials" in lowered or "authorization" in lowered or "invalid token" in lowered:
        return "unauthorized"
    if "does not exist" in lowered or "not found" in lowered:
        return "model_not_found"
    return error_type or None


def _message_and_code(data: dict[str, Any]) -> tuple[str, str | None]:
    err = data.get("error")
    message = "; ".join(str(e) for e in err) if isinstance(err, list) else str(err or "")
    kind = data.get("error_type")
    return message, error_code(message, kind if isinstance(kind, str) else None,
                               loading=data.get("estimated_time") is not None)


def parse_error(status: int, body: dict[str, Any] | bytes | str | None) -> tuple[str, str | None]:
    """``(message, code)`` from ``{"error": str | [str], "error_type"?, "estimated_time"?}``; text tolerated."""
    fallback = f"HTTP {status}"
    if body is None or body in (b"", ""):
        return fallback, None
    try:
        data = load_json(body, provider=PROVIDER)
    except ResponseFormatError:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return (text.strip()[:500] or fallback), None
    if not isinstance(data, dict) or not data.get("error"):
        return fallback, None
    message, code = _message_and_code(data)
    return message or fallback, code


def estimated_time(body: dict[str, Any] | bytes | str | None) -> float | None:
    """Seconds until a loading model is ready (``estimated_time`` of a 503 body), if given."""
    if body is None or body in (b"", ""):
        return None
    try:
        data = load_json(body, provider=PROVIDER)
    except ResponseFormatError:
        return None
    value = data.get("estimated_time") if isinstance(data, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class TextGenerationAPI(_common.WireAPI):
    """TGI ``POST /generate`` / ``/generate_stream`` or, with ``serverless=True``, the serverless
    Inference API ``POST /models/{model}`` (same body, ``stream: true`` for SSE). No tools."""

    def __init__(self, *, serverless: bool = False, details: bool = True, wait_for_model: bool | None = None) -> None:
        self.serverless = serverless
        self.details = details
        self.wait_for_model = wait_for_model

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        url = serverless_url(req.model, base_url="") if self.serverless else path(stream)
        body = build_request(req, stream=stream, wait_for_model=self.wait_for_model, details=self.details)
        return _common.HttpCall(url, body)

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return parse_response(body, provider=provider)

    def stream_parser(self, req: ChatRequest, *, provider: str) -> StreamParser:
        return StreamParser(provider=provider)


class TGIChatAPI(OpenAIChatAPI):
    """A TGI server's OpenAI-compatible chat route (HuggingFace Inference Endpoints, self-hosted TGI).

    The body is OpenAI's (:class:`OpenAIChatAPI`) except a ``json_schema`` response format: TGI reads
    ``response_format`` as its grammar, ``{"type": "json" | "json_object" | "json_schema", "value": ...}``,
    and ignores OpenAI's ``json_schema`` envelope, so the schema is sent as ``{"type": "json_object",
    "value": schema}``, as ``huggingface_hub`` sends it to an endpoint. A ``response_format`` in
    ``req.extra`` is sent as given.
    """

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        call = super().chat_call(req, stream=stream)
        rf = req.response_format
        if rf is None or rf.type != "json_schema" or rf.schema is None or "response_format" in req.extra:
            return call
        return replace(call, json={**call.json, "response_format": {"type": "json_object", "value": rf.schema}})
