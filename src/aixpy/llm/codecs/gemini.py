"""Codec for Google's ``generateContent`` wire format: the Gemini API and Vertex AI. Pure, no I/O.

Endpoints
    Gemini API: ``POST https://generativelanguage.googleapis.com`` + :func:`path` (``/v1beta/models/{m}:
    generateContent``, or ``:streamGenerateContent?alt=sse`` for SSE), authenticated by :func:`headers`:
    the API key travels in the ``x-goog-api-key`` header, **never in the URL** (URLs end up in logs).
    Vertex AI: :func:`vertex_url` + :func:`vertex_headers` (OAuth bearer token); the body is the same.

Request mapping (:func:`build_request`; ``req.extra`` merged last, dict values one level deep so
``extra={"generationConfig": {"thinkingConfig": {...}}}`` adds to the generated config)
    * System messages, wherever they are, become ``systemInstruction`` parts, in order.
    * Roles ``user``/``model``; consecutive turns of one role are merged (the API wants alternation),
      with ``functionResponse`` parts first in a merged user turn. Empty text parts are dropped.
    * Images: bytes and ``data:`` URLs as ``inlineData``; other URLs as ``fileData`` (``gs://``, Files API
      or https URIs) with the MIME type guessed from the URL when the part has none (``image/jpeg``).
    * Assistant tool calls become ``functionCall`` parts ``{id, name, args}``; tool results become
      ``functionResponse`` parts ``{id, name, response: {"output": text}}`` (``{"error": text}`` when
      ``is_error``). The name comes from ``ToolMessage.name`` or, failing that, from the earlier
      assistant tool call with that id (:func:`tool_call_names`); InvalidInputError when neither knows it.
    * Thought signatures: Gemini 3 rejects a history whose model turns carry function calls without the
      ``thoughtSignature`` the model sent. The parsers keep it in :attr:`~aixpy.llm.types.ToolCall.signature`
      and each ``functionCall`` part is sent back with its call's signature. When the first
      ``functionCall`` part of a model turn has none (a call built by hand, or from another provider),
      it gets Google's documented placeholder :data:`SKIP_SIGNATURE` instead (not for Gemini 1.x/2.0 or
      non-Gemini models such as Gemma).
    * ``tool_choice``: ``auto``/``none``/``required`` -> ``AUTO``/``NONE``/``ANY``; a name -> ``ANY`` + that name.
    * ``generationConfig``: temperature, topP, maxOutputTokens, stopSequences, seed; JSON mode sets
      ``responseMimeType: application/json`` and, for a schema, ``responseSchema`` (converted, with
      ``propertyOrdering`` to keep the field order): unlike ``responseJsonSchema`` it is accepted by every
      Gemini model on both APIs, and it shares the tools' converter. Gemini has no strict mode: a format
      from :meth:`~aixpy.llm.types.ResponseFormat.from_model` is sent as the model declares it
      (``model_schema``, optional fields not required), not in its strict form. Pass
      ``extra={"generationConfig": {"responseJsonSchema": schema}}`` to send raw JSON Schema instead.

Schema conversion: :func:`to_gemini_schema` (in :mod:`aixpy.llm.codecs._gemini_schema`, re-exported here)
    turns JSON Schema into Gemini's OpenAPI 3.0 subset for tool parameters and ``responseSchema``.

Responses
    Each SSE chunk of a stream is a whole ``GenerateContentResponse``, so :func:`parse_response` feeds the
    body to the same :class:`StreamParser` a stream uses. ``functionCall`` parts arrive whole: one ``tool_call``
    event each with ``canonical_json(args)``, a dense index counted across chunks, the part's ``id`` or
    ``call_{index}`` (never the function name) and the part's ``thoughtSignature``, if any. ``thought``
    parts, code execution and inline media are skipped; Vertex's opt-in streamed ``partialArgs`` are not
    supported. Only candidate 0 is read. Usage
    (cumulative in streams): input = ``promptTokenCount`` (which includes ``cachedContentTokenCount``) +
    ``toolUsePromptTokenCount``; output = ``candidatesTokenCount`` + ``thoughtsTokenCount``. A prompt
    blocked by ``promptFeedback.blockReason`` finishes with ``content_filter`` (raw reason kept).
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aixpy.errors import InvalidInputError, ProviderError, RateLimitError, ResponseFormatError
from aixpy.llm.codecs import _common
from aixpy.llm.codecs._common import as_int, canonical_json, error_for_code, load_json, load_json_object
from aixpy.llm.codecs._gemini_schema import to_gemini_schema
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    fold_stream,
    split_tool_choice,
)

__all__ = [
    "API_VERSION",
    "BASE_URL",
    "PROVIDER",
    "SKIP_SIGNATURE",
    "VERTEX_API_VERSION",
    "GeminiAPI",
    "StreamParser",
    "VertexAPI",
    "build_request",
    "headers",
    "parse_error",
    "parse_models",
    "parse_response",
    "parse_usage",
    "path",
    "retry_after",
    "to_gemini_schema",
    "tool_call_names",
    "vertex_headers",
    "vertex_url",
]

PROVIDER = "gemini"
BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"  # a superset of v1 (preview features); pass version="v1" to path() for the stable one
VERTEX_API_VERSION = "v1"
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in for a thought signature that was not kept (Gemini 3 requires one)."""

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}")
_OLD_MODELS = re.compile(r"gemini-(1\.|2\.0)")

# --------------------------------------------------------------------------- endpoints


def _model_name(model: str, *prefixes: str) -> str:
    name = model
    for prefix in prefixes:
        name = name.removeprefix(prefix)
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidInputError(f"invalid Gemini model name {model!r}")
    return name


def path(model: str, stream: bool, *, version: str = API_VERSION) -> str:
    """``/v1beta/models/{model}:generateContent`` or ``...:streamGenerateContent?alt=sse`` (no key in it).

    ``model`` may carry the ``models/`` prefix; ``tunedModels/{name}`` addresses a tuned model.
    """
    kind = "tunedModels/" if model.startswith("tunedModels/") else "models/"
    return f"/{version}/{kind}{_model_name(model, kind)}:{_method(stream)}"


def _method(stream: bool) -> str:
    return "streamGenerateContent?alt=sse" if stream else "generateContent"


def headers(api_key: str) -> dict[str, str]:
    """Gemini API request headers: the key goes in ``x-goog-api-key``, never in the URL."""
    return {"x-goog-api-key": api_key, "content-type": "application/json"}


def vertex_headers(access_token: str) -> dict[str, str]:
    """Vertex AI request headers for an OAuth access token (from ADC or a service account)."""
    return {"authorization": f"Bearer {access_token}", "content-type": "application/json"}


def vertex_url(project: str, location: str, model: str, stream: bool, *, version: str = VERTEX_API_VERSION) -> str:
    """The Vertex AI URL of a Google publisher model; ``location="global"`` uses the global endpoint.

    ``project`` and ``location`` are validated (the location is part of the host name).
    """
    if not _LOCATION.fullmatch(location):
        raise InvalidInputError(f"invalid Vertex AI location {location!r}")
    if not _PROJECT.fullmatch(project):
        raise InvalidInputError(f"invalid Google Cloud project {project!r}")
    name = _model_name(model, "publishers/google/models/", "models/")
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    return (f"https://{host}/{version}/projects/{project}/locations/{location}/publishers/google/models/"
            f"{name}:{_method(stream)}")


# --------------------------------------------------------------------------- request


def tool_call_names(messages: Sequence[Message]) -> dict[str, str]:
    """``{tool call id: tool name}`` of every assistant tool call in ``messages``."""
    return {c.id: c.name for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls}


def _image(part: ImagePart) -> dict[str, Any]:
    inline = part.inline()
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    url = part.url or ""
    mime = part.media_type or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _parts(m: UserMessage | AssistantMessage | ToolMessage, names: dict[str, str]) -> list[dict[str, Any]]:
    if isinstance(m, UserMessage):
        return [{"text": p.text} if isinstance(p, TextPart) else _image(p) for p in m.parts()]
    if isinstance(m, ToolMessage):
        name = m.name or names.get(m.tool_call_id)
        if not name:
            raise InvalidInputError(f"tool result {m.tool_call_id!r} has no name and matches no earlier tool call; "
                                    "Gemini needs the function name: set ToolMessage.name")
        response = {"error" if m.is_error else "output": m.content}
        return [{"functionResponse": {"id": m.tool_call_id, "name": name, "response": response}}]
    parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
    for call in m.tool_calls:
        fc: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if call.id:
            fc["id"] = call.id
        part: dict[str, Any] = {"functionCall": fc}
        if call.signature:
            part["thoughtSignature"] = call.signature
        parts.append(part)
    return parts


def _contents(req: ChatRequest) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    names = tool_call_names(req.messages)
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for m in req.messages:
        if isinstance(m, SystemMessage):
            if m.content:
                system.append({"text": m.content})
            continue
        role = "model" if isinstance(m, AssistantMessage) else "user"
        parts = [p for p in _parts(m, names) if p.get("text", True) != ""]
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    signatures = _wants_signatures(req.model)
    for turn in turns:
        if turn["role"] == "user":
            turn["parts"].sort(key=lambda p: "functionResponse" not in p)
        elif signatures:
            first_call = next((p for p in turn["parts"] if "functionCall" in p), None)
            if first_call is not None:
                first_call.setdefault("thoughtSignature", SKIP_SIGNATURE)
    return ({"parts": system} if system else None), turns


def _wants_signatures(model: str) -> bool:
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith("gemini") and not _OLD_MODELS.match(name)


def _declaration(t: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name}
    if t.description:
        out["description"] = t.description
    params = to_gemini_schema(t.parameters)
    if params.get("properties"):
        out["parameters"] = params
    return out


def _tool_config(choice: str) -> dict[str, Any]:
    mode, name = split_tool_choice(choice)
    if mode == "tool":
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return {"functionCallingConfig": {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[mode]}}


def _generation_config(req: ChatRequest) -> dict[str, Any]:
    pairs = (("temperature", req.temperature), ("topP", req.top_p), ("maxOutputTokens", req.max_tokens),
             ("stopSequences", list(req.stop) if req.stop else None), ("seed", req.seed))
    config: dict[str, Any] = {key: value for key, value in pairs if value is not None}
    rf = req.response_format
    if rf is not None and rf.type != "text":
        config["responseMimeType"] = "application/json"
        schema = rf.model_schema or rf.schema  # no strict mode here: the model's schema as declared
        if rf.type == "json_schema" and schema:
            config["responseSchema"] = to_gemini_schema(schema, property_ordering=True)
    return config


def build_request(req: ChatRequest) -> dict[str, Any]:
    """The JSON body of ``generateContent`` / ``streamGenerateContent`` (Gemini API and Vertex AI alike)."""
    system, contents = _contents(req)
    if not contents:
        raise InvalidInputError("Gemini needs at least one user or assistant message besides system messages")
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in req.tools]}]
        if req.tool_choice is not None:
            body["toolConfig"] = _tool_config(req.tool_choice)
    config = _generation_config(req)
    if config:
        body["generationConfig"] = config
    for key, value in req.extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    generation = body.get("generationConfig")
    if isinstance(generation, dict) and "responseJsonSchema" in generation:
        generation.pop("responseSchema", None)
    return body


# --------------------------------------------------------------------------- responses

# Values newer than the shared table in aixpy.llm.types.
_EXTRA_FINISH: dict[str, FinishReason] = {
    "IMAGE_PROHIBITED_CONTENT": "content_filter", "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter", "JAILBREAK": "content_filter",
    "MISSING_THOUGHT_SIGNATURE": "error", "MALFORMED_RESPONSE": "error", "NO_IMAGE": "error",
}


def parse_usage(meta: Any) -> Usage | None:
    """Normalize ``usageMetadata`` (see the module docstring; cached and thought tokens are parts)."""
    if not isinstance(meta, dict):
        return None
    thoughts = as_int(meta.get("thoughtsTokenCount"))
    return Usage(as_int(meta.get("promptTokenCount")) + as_int(meta.get("toolUsePromptTokenCount")),
                 as_int(meta.get("candidatesTokenCount")) + thoughts,
                 as_int(meta.get("cachedContentTokenCount")), 0, thoughts)


class StreamParser(_common.StreamParser):
    """Turns ``GenerateContentResponse`` chunks into :class:`StreamEvent` s; one instance per stream.

    Feed each SSE event (or its ``data:`` payload) to :meth:`feed`. Tool-call indexes are counted
    across chunks. An ``error`` payload raises the matching ProviderError. The stream has no end
    marker (``done`` stays false): it ends at EOF.
    """

    __slots__ = ("_next_tool", "model", "response_id")

    def __init__(self, *, provider: str = PROVIDER) -> None:
        super().__init__(provider)
        self.model: str | None = None
        self.response_id: str | None = None
        self._next_tool = 0

    def feed(self, item: Any) -> list[StreamEvent]:
        data = getattr(item, "data", item)
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        if isinstance(data, str) and data.strip() in ("", "[DONE]"):
            return []
        chunk = load_json_object(data, provider=self.provider)
        if "error" in chunk:
            raise _error(chunk, self.provider)
        self.model = self.model or chunk.get("modelVersion") or None
        self.response_id = self.response_id or chunk.get("responseId") or None
        events: list[StreamEvent] = []
        candidates: Any = chunk.get("candidates")
        candidate = next((c for c in candidates if isinstance(c, dict) and c.get("index", 0) == 0), None) \
            if isinstance(candidates, list) else None
        if candidate is not None:
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            for part in parts if isinstance(parts, list) else []:
                if isinstance(part, dict) and not part.get("thought"):
                    events.extend(self._part(part))
        usage = parse_usage(chunk.get("usageMetadata"))
        if usage is not None:
            events.append(StreamEvent.usage_update(usage, model=self.model, response_id=self.response_id))
        feedback = chunk.get("promptFeedback")
        blocked = feedback.get("blockReason") if isinstance(feedback, dict) else None
        raw = candidate.get("finishReason") if candidate is not None else None
        if blocked and candidate is None:
            self.finished = True
            events.append(StreamEvent.finish(str(blocked), reason="content_filter", model=self.model,
                                             response_id=self.response_id))
        elif isinstance(raw, str) and raw:
            self.finished = True
            events.append(StreamEvent.finish(raw, reason=_EXTRA_FINISH.get(raw.upper()), model=self.model,
                                             response_id=self.response_id))
        return events

    def _part(self, part: dict[str, Any]) -> list[StreamEvent]:
        text = part.get("text")
        if isinstance(text, str) and text:
            return [StreamEvent.text_delta(text, model=self.model, response_id=self.response_id)]
        call = part.get("functionCall")
        if not isinstance(call, dict):
            return []  # executableCode, codeExecutionResult, inlineData...
        index = self._next_tool
        self._next_tool += 1
        args = call.get("args")
        signature = part.get("thoughtSignature")
        return [StreamEvent.tool_call_delta(index, id=call.get("id") or f"call_{index}", name=call.get("name"),
                                            arguments=canonical_json(args) if args is not None else "",
                                            model=self.model, response_id=self.response_id,
                                            signature=signature if isinstance(signature, str) and signature else None)]


def parse_response(body: dict[str, Any] | bytes | str, *, provider: str = PROVIDER) -> ChatResponse:
    """Parse a ``generateContent`` body (or the JSON array a non-SSE ``streamGenerateContent`` returns).

    Raises ResponseFormatError for invalid JSON or a body without candidates nor block reason; a
    body carrying an ``error`` object raises the matching ProviderError.
    """
    data = load_json(body, provider=provider)
    chunks = data if isinstance(data, list) else [data]
    parser = StreamParser(provider=provider)
    events: list[StreamEvent] = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            raise ResponseFormatError(f"{provider} sent a JSON {type(chunk).__name__}, expected an object",
                                      provider=provider)
        events.extend(parser.feed(chunk))
    if not any(e.kind == "finish" for e in events) and not any(
            isinstance(c.get("candidates"), list) and c["candidates"] for c in chunks):
        raise ResponseFormatError("response has no candidates", provider=provider,
                                  body=canonical_json(data)[:500])
    return fold_stream(events, provider=provider)


# --------------------------------------------------------------------------- errors and models

_STATUS_CODES = {
    "RESOURCE_EXHAUSTED": "rate_limit", "UNAVAILABLE": "service_unavailable", "INTERNAL": "internal_error",
    "DEADLINE_EXCEEDED": "timeout", "UNAUTHENTICATED": "unauthorized", "PERMISSION_DENIED": "forbidden",
    "INVALID_ARGUMENT": "invalid_request", "FAILED_PRECONDITION": "invalid_request", "NOT_FOUND": "not_found_error",
    "OUT_OF_RANGE": "invalid_request",
}


def _error_object(data: Any) -> dict[str, Any] | None:
    if isinstance(data, list) and data:  # Vertex AI sometimes wraps the error in an array
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def _error(data: dict[str, Any], provider: str) -> ProviderError:
    err = _error_object(data) or {}
    status = err.get("status")
    code = _STATUS_CODES.get(status) if isinstance(status, str) else None
    http = err.get("code") if isinstance(err.get("code"), int) else None
    return error_for_code(code, str(err.get("message") or data.get("error") or "stream error"), provider=provider,
                          status_code=http, body=canonical_json(data))


def _decode(body: dict[str, Any] | list[Any] | bytes | str | None) -> Any:
    """The decoded error body; the stripped text when it is not JSON; ``None`` when empty."""
    if isinstance(body, (dict, list)) or body is None:
        return body
    try:
        return load_json(body, provider=PROVIDER)
    except ResponseFormatError:
        return (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).strip()


def parse_error(status: int, body: dict[str, Any] | list[Any] | bytes | str | None) -> tuple[str, str | None]:
    """``(message, code)`` from ``{"error": {"code", "message", "status", "details"}}``.

    ``code`` is the Google status mapped to a code :func:`~aixpy.llm.codecs._common.error_for_code`
    understands (``RESOURCE_EXHAUSTED`` -> ``rate_limit``, ``INVALID_ARGUMENT`` -> ``invalid_request``...),
    or the lower-cased status when unknown. Plain-text bodies are tolerated.
    """
    fallback = f"HTTP {status}"
    data = _decode(body)
    if isinstance(data, str):
        return (data[:500] or fallback), None
    err = _error_object(data)
    if err is None:
        return fallback, None
    kind = err.get("status")
    code = (_STATUS_CODES.get(kind) or kind.lower()) if isinstance(kind, str) and kind else None
    return str(err.get("message") or fallback), code


def retry_after(body: dict[str, Any] | list[Any] | bytes | str | None) -> float | None:
    """Seconds to wait from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "37s"``), if any."""
    details = (_error_object(_decode(body)) or {}).get("details")
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and re.fullmatch(r"\d+(\.\d+)?s", delay):
            return float(delay[:-1])
    return None


def parse_models(body: dict[str, Any] | bytes | str, *, method: str | None = None) -> list[str]:
    """Model names from ``GET /v1beta/models``, without the ``models/`` prefix.

    ``method`` (e.g. ``"generateContent"``) keeps only models listing it in ``supportedGenerationMethods``.
    """
    data = load_json_object(body, provider=PROVIDER)
    items = data.get("models")
    if not isinstance(items, list):
        raise ResponseFormatError("model list has no 'models' array", provider=PROVIDER)
    names: list[str] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        methods = item.get("supportedGenerationMethods")
        if method is not None and not (isinstance(methods, list) and method in methods):
            continue
        names.append(item["name"].removeprefix("models/"))
    return names



class GeminiAPI(_common.WireAPI):
    """``POST {base}/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``)."""

    def __init__(self, *, version: str = API_VERSION) -> None:
        self.version = version

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        return _common.HttpCall(path(req.model, stream, version=self.version), build_request(req))

    def parse_chat(self, body: bytes, req: ChatRequest, *, provider: str) -> ChatResponse:
        return parse_response(body, provider=provider)

    def stream_parser(self, req: ChatRequest, *, provider: str) -> StreamParser:
        return StreamParser(provider=provider)

    def models_call(self) -> _common.HttpCall:
        return _common.HttpCall(f"/{self.version}/models", method="GET", params={"pageSize": "1000"})

    def parse_models(self, body: bytes) -> list[str]:
        return parse_models(body, method="generateContent")

    def refine_error(self, err: ProviderError) -> ProviderError:
        if isinstance(err, RateLimitError) and err.retry_after is None and err.body:
            err.retry_after = retry_after(err.body)  # google.rpc.RetryInfo "retryDelay"
        return err


class VertexAPI(GeminiAPI):
    """Vertex AI: ``/v1/projects/{project}/locations/{location}/publishers/google/models/{m}:...``."""

    def __init__(self, *, project: str, location: str) -> None:
        super().__init__(version=VERTEX_API_VERSION)
        self.project = project
        self.location = location

    def chat_call(self, req: ChatRequest, *, stream: bool) -> _common.HttpCall:
        parts = urlsplit(vertex_url(self.project, self.location, req.model, stream))
        return _common.HttpCall(parts.path + (f"?{parts.query}" if parts.query else ""), build_request(req))

    def models_call(self) -> _common.HttpCall:
        return _common.HttpCall("/v1beta1/publishers/google/models", method="GET", params={"pageSize": "1000"})

    def parse_models(self, body: bytes) -> list[str]:
        try:
            data = json.loads(body)
        except ValueError as e:
            raise ResponseFormatError(f"Vertex AI sent invalid JSON: {e}", provider="vertexai") from e
        items = data.get("publisherModels") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ResponseFormatError("model list has no 'publisherModels' array", provider="vertexai")
        return [str(m["name"]).rsplit("/", 1)[-1] for m in items if isinstance(m, dict) and m.get("name")]
