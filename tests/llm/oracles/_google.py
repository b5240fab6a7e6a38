"""Google ``generateContent`` as the official ``google-genai`` SDK speaks it (Gemini API and Vertex AI).

:func:`sdk_call` writes each logical call of :func:`~._oracle.scenario` the way a ``google-genai`` user
writes it; :func:`fold` reads what the SDK parsed; :func:`normalize` is the documented normalisation
of request bodies. Every difference it removes, and why:

1. **Field-name spelling.** Proto3 JSON accepts a field's lowerCamelCase name *and* its original
   snake_case name; ``google-genai`` 3.4 emits some fields in snake_case (:data:`SNAKE_CASE_FIELDS`).
   Only those listed names are renamed, never keys of user data (``properties`` names, ``args``,
   ``response``), so an unexpected spelling still shows up as a difference.
2. **``systemInstruction.role``.** The SDK sends ``"role": "user"`` inside ``systemInstruction``; we send
   no role. The API ignores the role of a system instruction (it is not a turn).
3. **Empty ``generationConfig``.** The SDK sends ``{}`` whenever a config object is given; an empty
   config is the default.
4. **Base64 alphabet.** The SDK encodes bytes (``inlineData.data``, a part's ``thoughtSignature``) with the
   URL-safe alphabet; we send images in the standard one and a signature as the API sent it (standard);
   proto3 JSON accepts both. The decoded bytes are compared.

Not a normalisation but the logical call itself: a replayed ``functionCall`` carries the
``thoughtSignature`` it came with (:attr:`ToolCall.signature`); the first one of a model turn that has
none (a history built by hand, as in these scenarios) gets Google's documented placeholder
(``skip_thought_signature_validator``, Gemini 2.5+/3 models), which the SDK user replaying such a
history passes explicitly.

Reading: a ``functionCall`` without ``id`` gets ``call_{index}`` (our contract); finish ``STOP`` with calls
is ``tool_calls``; usage input = ``promptTokenCount + toolUsePromptTokenCount``, output =
``candidatesTokenCount + thoughtsTokenCount``, cached = ``cachedContentTokenCount``; ``thought`` parts are
not text.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable
from typing import Any

from aixpy.llm.codecs import gemini as codec
from aixpy.llm.types import fold_stream

from ._oracle import (
    ASK_WEATHER,
    IMAGE_URL,
    PNG,
    REPORT_SCHEMA,
    SYSTEM,
    TIME_PARAMS,
    TOOL_RESULT,
    WEATHER_PARAMS,
    Outcome,
    calls,
    finish,
    ours,
    sse_events,
)

MODEL = "gemini-2.5-flash"

SNAKE_CASE_FIELDS = {
    "mime_type": "mimeType", "file_uri": "fileUri", "property_ordering": "propertyOrdering",
    "parameters_json_schema": "parametersJsonSchema", "response_json_schema": "responseJsonSchema",
    "allowed_function_names": "allowedFunctionNames",  # Vertex AI only: the Gemini API path camel-cases it
}
"""Proto field names ``google-genai`` 3.4 emits in snake_case (observed on this suite's calls)."""
_USER_DATA = frozenset({"args", "response", "parametersJsonSchema", "responseJsonSchema"})

FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
          "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
          "MALFORMED_FUNCTION_CALL": "error", "OTHER": "other", "FINISH_REASON_UNSPECIFIED": "other"}


# --------------------------------------------------------------------------- requests


def _camel(node: Any, parent: str | None = None) -> Any:
    if isinstance(node, list):
        return [_camel(item, parent) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = key if parent == "properties" else SNAKE_CASE_FIELDS.get(key, key)
        out[name] = value if name in _USER_DATA else _camel(value, name)
    return out


def _std_b64(node: Any) -> Any:
    if isinstance(node, list):
        return [_std_b64(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _std_b64(value) for key, value in node.items()}
    inline = out.get("inlineData")
    if isinstance(inline, dict) and isinstance(inline.get("data"), str):
        out["inlineData"] = {**inline, "data": _standard(inline["data"])}
    if isinstance(out.get("thoughtSignature"), str):
        out["thoughtSignature"] = _standard(out["thoughtSignature"])
    return out


def _standard(text: str) -> str:
    """Base64 ``text`` (either alphabet, padded or not) in the standard alphabet, padded."""
    data = text.replace("-", "+").replace("_", "/")
    return base64.b64encode(base64.b64decode(data + "=" * (-len(data) % 4))).decode("ascii")


def normalize(body: Any) -> Any:
    """The documented normalisation (module docstring, points 1-4), applied to both sides."""
    body = _std_b64(_camel(copy.deepcopy(body)))
    system = body.get("systemInstruction")
    if isinstance(system, dict) and system.get("role") == "user":
        system.pop("role")
    if body.get("generationConfig") == {}:
        body.pop("generationConfig")
    return body


def sdk_request(name: str) -> tuple[Any, Any]:
    """``(contents, config)`` of ``models.generate_content`` for the logical call ``name``."""
    from google.genai import types as gt

    weather = gt.FunctionDeclaration(name="get_weather", description="Current weather of a city.",
                                     parameters=copy.deepcopy(WEATHER_PARAMS))
    local_time = gt.FunctionDeclaration(name="get_time", description="Local time of a timezone.",
                                  parameters=copy.deepcopy(TIME_PARAMS))
    if name == "plain":
        return "Hi", None
    if name == "system":
        return "Hi", gt.GenerateContentConfig(system_instruction=SYSTEM)
    if name == "multi_turn_tools":
        signature = base64.urlsafe_b64decode(codec.SKIP_SIGNATURE)  # re-encoded to the very same text
        return [
            gt.Content(role="user", parts=[gt.Part(text=ASK_WEATHER)]),
            gt.Content(role="model", parts=[
                gt.Part(text="Let me check."),
                gt.Part(function_call=gt.FunctionCall(id="call_1", name="get_weather", args={"city": "Paris"}),
                        thought_signature=signature)]),
            gt.Content(role="user", parts=[gt.Part(function_response=gt.FunctionResponse(
                id="call_1", name="get_weather", response={"output": TOOL_RESULT}))]),
        ], gt.GenerateContentConfig(system_instruction=SYSTEM, tools=[gt.Tool(function_declarations=[weather])])
    if name.startswith("tools_"):
        choice = name.removeprefix("tools_")
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE", "named": "ANY"}[choice]
        calling = gt.FunctionCallingConfig(mode=mode, allowed_function_names=["get_weather"] if choice == "named"
                                           else None)
        return "Weather in Paris, and the time there?", gt.GenerateContentConfig(
            tools=[gt.Tool(function_declarations=[weather, local_time])],
            tool_config=gt.ToolConfig(function_calling_config=calling))
    if name == "json_object":
        return ASK_WEATHER, gt.GenerateContentConfig(system_instruction="Answer in JSON.",
                                                     response_mime_type="application/json")
    if name == "json_schema":
        return ASK_WEATHER, gt.GenerateContentConfig(response_mime_type="application/json",
                                                     response_schema=copy.deepcopy(REPORT_SCHEMA))
    if name == "sampling":
        return "Count to five.", gt.GenerateContentConfig(temperature=0.3, max_output_tokens=64, top_p=0.9,
                                                          stop_sequences=["\n\n", "END"], seed=42)
    if name == "image":
        return [gt.Content(role="user", parts=[
            gt.Part(text="What is in these images?"),
            gt.Part(file_data=gt.FileData(file_uri=IMAGE_URL, mime_type="image/jpeg")),
            gt.Part(inline_data=gt.Blob(mime_type="image/png", data=PNG)),
        ])], None
    raise KeyError(name)


# --------------------------------------------------------------------------- replies


def fold(chunks: Iterable[Any]) -> Outcome:
    """``GenerateContentResponse`` s (one, or a stream's chunks) as the SDK parsed them."""
    text: list[str] = []
    tool_calls: list[tuple[str | None, str, Any]] = []
    reason = usage = model = None
    for chunk in chunks:
        model = model or chunk.model_version
        candidate = chunk.candidates[0] if chunk.candidates else None
        content = candidate.content if candidate is not None else None
        for part in (content.parts if content is not None and content.parts else []):
            if part.thought:
                continue
            if part.text:
                text.append(part.text)
            if part.function_call is not None:
                call = part.function_call
                tool_calls.append((call.id, call.name, call.args or {}))
        if candidate is not None and candidate.finish_reason is not None:
            reason = candidate.finish_reason.value
        usage = chunk.usage_metadata or usage
    u = usage
    counts = None if u is None else ((u.prompt_token_count or 0) + (u.tool_use_prompt_token_count or 0),
                                     (u.candidates_token_count or 0) + (u.thoughts_token_count or 0),
                                     u.cached_content_token_count or 0)
    return Outcome("".join(text), calls(tool_calls), finish(reason, FINISH, bool(tool_calls)), counts, model)


def sdk_call(client: Any, name: str, stream: bool) -> Outcome:
    contents, config = sdk_request(name)
    if not stream:
        return fold([client.models.generate_content(model=MODEL, contents=contents, config=config)])
    return fold(client.models.generate_content_stream(model=MODEL, contents=contents, config=config))


def codec_outcome(raw: bytes, stream: bool) -> Outcome:
    if not stream:
        return ours(codec.parse_response(raw))
    parser = codec.StreamParser()
    return ours(fold_stream(e for _, data in sse_events(raw) for e in parser.feed(data)))


CASES = [  # (scenario, reply, stream)
    ("plain", "gemini_text.json", False),
    ("system", "gemini_text.json", False),
    ("multi_turn_tools", "gemini_text.json", False),
    ("tools_auto", "gemini_tools.json", False),
    ("tools_required", "gemini_tools.json", False),
    ("tools_named", "gemini_tools.json", False),
    ("tools_none", "gemini_text.json", False),
    ("json_object", "gemini_json.json", False),
    ("json_schema", "gemini_json.json", False),
    ("sampling", "gemini_text.json", False),
    ("image", "gemini_text.json", False),
    ("plain", "gemini_text.sse", True),
    ("tools_auto", "gemini_tools.sse", True),
    ("multi_turn_tools", "gemini_text.sse", True),
]


def case_id(case: tuple[str, str, bool]) -> str:
    return f"{case[0]}-{'stream' if case[2] else 'json'}"
