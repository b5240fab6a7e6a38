"""Provider-neutral types of the LLM layer: messages, tools, requests, responses and stream events.

Every codec in :mod:`aixpy.llm.codecs` translates between these types and exactly one wire format,
as pure functions (no I/O). Providers (auth, base URL, HTTP) sit on top and never look inside a body.

Why stdlib ``@dataclass(slots=True)`` and not pydantic models
    * Hot path: a streamed reply creates one :class:`StreamEvent` per token. A slots dataclass is
      built in a fraction of a microsecond; a validating pydantic model costs several times more,
      and the data comes from our own codecs, which have already checked it.
    * Import cost: this module imports no pydantic (about 100 ms). Only :func:`tool_from_function`
      and :meth:`ResponseFormat.from_model` load it, lazily.
    * pydantic still understands these classes: ``TypeAdapter(Annotated[Message,
      Field(discriminator="role")])`` validates dicts into the union when data comes from outside.

Messages are a discriminated union on ``role`` (:data:`Message`); content parts on ``type``
(:data:`ContentPart`). Narrow with ``match msg: case UserMessage(): ...`` or ``msg.role``.

Contract every codec follows (so all providers answer alike)
    1. **Usage** — ``input_tokens`` counts *all* prompt tokens, including cache reads and cache
       writes; ``cached_input_tokens`` and ``cache_creation_tokens`` are parts of it.
       ``output_tokens`` counts *all* generated tokens, including reasoning; ``reasoning_tokens``
       is part of it. (Anthropic: input = input + cache_read + cache_creation. Gemini: output =
       candidates + thoughts.) ``usage`` is ``None`` when the provider reported nothing.
    2. **Usage in streams** — every ``usage`` event is a cumulative snapshot; the fold keeps the
       last one. A codec whose API reports usage in pieces merges them before emitting.
    3. **Tool-call deltas** — ``index`` is the dense ordinal (0, 1, 2...) of the call in the reply,
       stable for the whole stream and never derived from a delta's position in a chunk. ``id`` and
       ``name`` come with the first delta of an index (repeats are ignored, never concatenated);
       ``arguments_delta`` strings are JSON text fragments, concatenated per index then parsed.
       A call without an id gets ``"call_{index}"``; empty arguments mean ``{}``.
    4. **One post-processing path** — a codec's ``parse_response`` turns the whole body into the
       same :class:`StreamEvent` s a stream would carry and calls :func:`fold_stream`, so streamed
       and non-streamed replies are equal by construction.
    5. **Finish reason** — :func:`normalize_finish_reason` maps every vendor value; the vendor's
       own string stays in ``raw_finish_reason``. ``"stop"`` with tool calls becomes
       ``"tool_calls"`` (OpenAI says ``stop`` when a tool is forced; Gemini always says ``STOP``).
    6. **Errors** — unparseable bodies and bad tool-call JSON raise
       :class:`~aixpy.errors.ResponseFormatError`; error events inside a stream raise the matching
       :class:`~aixpy.errors.ProviderError` subclass; bad requests raise
       :class:`~aixpy.errors.InvalidInputError` before anything is sent.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar, cast

from aixpy.errors import InvalidInputError, InvalidToolArgumentsError, ResponseFormatError
from aixpy.llm._content import ContentPart, ImagePart, TextPart
from aixpy.llm._json_schema import strict_json_schema

__all__ = [
    "AssistantMessage",
    "ChatRequest",
    "ChatResponse",
    "ContentPart",
    "FinishReason",
    "ImagePart",
    "Message",
    "ResponseFormat",
    "Role",
    "StreamAccumulator",
    "StreamEvent",
    "StreamEventKind",
    "SystemMessage",
    "TextPart",
    "ToolCall",
    "ToolChoice",
    "ToolChoiceMode",
    "ToolMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "fold_stream",
    "normalize_finish_reason",
    "parse_tool_arguments",
    "split_tool_choice",
    "strict_json_schema",
    "tool_from_function",
]

T = TypeVar("T")

# --------------------------------------------------------------------------- tools


@dataclass(slots=True)
class ToolSpec:
    """A tool the model may call. ``parameters`` is a JSON Schema of an object.

    ``strict`` asks providers that support it (OpenAI) to follow the schema exactly.
    Build from a typed Python function with :func:`tool_from_function`.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


@dataclass(slots=True)
class ToolCall:
    """A call the model asked for. ``arguments`` is the parsed JSON object.

    ``raw_arguments`` is the JSON text as the wire carried it (``""`` when built by hand). It is
    left out of equality: Anthropic and Gemini send an object, not text, so only the parsed
    arguments can be compared across providers and between streamed and non-streamed replies.

    ``signature`` is an opaque token the provider attached to the call and wants back with it when
    the call is replayed in the history (Gemini 3's ``thoughtSignature``); ``None`` when there was
    none. Codecs of other providers ignore it. Left out of equality, like ``raw_arguments``.
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str = field(default="", compare=False)
    signature: str | None = field(default=None, compare=False)

    @property
    def arguments_json(self) -> str:
        """JSON text of the arguments: the raw wire text when known, else a fresh encoding."""
        return self.raw_arguments or json.dumps(self.arguments, ensure_ascii=False)


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | str
"""``"auto"``, ``"none"``, ``"required"`` (must call some tool), or the name of one tool to force.
(A tool named ``auto``, ``none`` or ``required`` therefore cannot be forced by name.)"""

ToolChoiceMode: TypeAlias = Literal["auto", "none", "required", "tool"]
_MODES = frozenset({"auto", "none", "required"})


def split_tool_choice(choice: ToolChoice) -> tuple[ToolChoiceMode, str | None]:
    """``"auto"`` -> ``("auto", None)``; ``"get_weather"`` -> ``("tool", "get_weather")``."""
    if choice in _MODES:
        return cast(ToolChoiceMode, choice), None
    return "tool", choice


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                       strict: bool | None = None) -> ToolSpec:
    """Derive a :class:`ToolSpec` from a typed function: its signature and its docstring.

    The first docstring paragraph becomes the description; parameter descriptions come from a
    Google (``Args:``), Sphinx (``:param x:``) or NumPy (``Parameters``) section. Defaults,
    ``Optional``, ``Literal``, ``list[...]``, ``Annotated[..., Field(...)]`` and pydantic models
    all map to JSON Schema through pydantic. Raises InvalidInputError for ``*args``/``**kwargs``.
    """
    from aixpy.llm._tools import spec_from_function

    return spec_from_function(fn, name=name, description=description, strict=strict)


# --------------------------------------------------------------------------- messages

Role: TypeAlias = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class SystemMessage:
    """Instructions for the model. Providers without a system role get them hoisted or prepended."""

    content: str
    role: Literal["system"] = "system"


@dataclass(slots=True)
class UserMessage:
    """What the user says: plain text, or a list of text and image parts."""

    content: str | list[ContentPart]
    role: Literal["user"] = "user"

    def parts(self) -> list[ContentPart]:
        """The content as parts (a plain string becomes one :class:`TextPart`)."""
        return [TextPart(self.content)] if isinstance(self.content, str) else self.content


@dataclass(slots=True)
class AssistantMessage:
    """A previous model turn: text and/or tool calls (sent back so the model sees its own calls)."""

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    role: Literal["assistant"] = "assistant"


@dataclass(slots=True)
class ToolMessage:
    """The result of a tool call. ``name`` is the tool's name (Gemini and Ollama need it);
    ``is_error`` tells providers that support it (Anthropic) that the tool failed."""

    content: str
    tool_call_id: str
    name: str | None = None
    is_error: bool = False
    role: Literal["tool"] = "tool"


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage
"""One chat message, discriminated by ``role``."""

_MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)

# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class ResponseFormat:
    """What shape the reply text must have.

    ``text`` (default, free text), ``json_object`` (any JSON object) or ``json_schema`` (an object
    matching ``schema``; ``name`` labels it, ``strict`` asks for exact adherence where supported).

    ``model_schema`` is set by :meth:`from_model` only, when ``schema`` is the strict form of the
    pydantic model's schema: it is that schema as declared. Codecs of APIs without a strict mode
    (Gemini) send it instead, so optional fields stay optional there, as the vendor SDKs send them.
    Left out of equality.
    """

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    model_schema: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type == "json_schema":
            if not isinstance(self.schema, dict):
                raise InvalidInputError("ResponseFormat json_schema needs a schema dict")
            if not self.name:
                self.name = "response"

    @classmethod
    def json_object(cls) -> ResponseFormat:
        return cls(type="json_object")

    @classmethod
    def json_schema(cls, name: str, schema: dict[str, Any], *, strict: bool | None = True) -> ResponseFormat:
        return cls(type="json_schema", name=name, schema=schema, strict=strict)

    @classmethod
    def from_model(cls, model: builtins.type[Any], *, name: str | None = None,
                   strict: bool | None = True) -> ResponseFormat:
        """A ``json_schema`` format from a pydantic model class (imports pydantic lazily).

        With ``strict`` (the default) the model's schema is put in the form strict mode needs
        (:func:`strict_json_schema`: closed objects, every field required, optional ones nullable), so
        the strict flag OpenAI-compatible APIs receive comes with a schema they accept. pydantic
        validates the reply to such a schema into the model unchanged (an optional field comes back
        as ``null``), and ``model_schema`` keeps pydantic's schema as declared (see the class
        docstring). ``strict=False`` sends pydantic's schema as it is.
        """
        schema = model.model_json_schema()
        if not strict:
            return cls(type="json_schema", name=name or model.__name__, schema=schema, strict=strict)
        return cls(type="json_schema", name=name or model.__name__, schema=strict_json_schema(schema), strict=strict,
                   model_schema=schema)


@dataclass(slots=True)
class ChatRequest:
    """One chat call, independent of the provider.

    ``None`` means "provider default" and is never sent. ``extra`` holds provider-specific body
    fields; codecs merge it last, so it overrides anything they built. Validated on construction
    (raises :class:`~aixpy.errors.InvalidInputError`).
    """

    model: str
    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.messages:
            raise InvalidInputError("a chat request needs at least one message")
        for i, m in enumerate(self.messages):
            if not isinstance(m, _MESSAGE_TYPES):
                raise InvalidInputError(
                    f"messages[{i}] is a {type(m).__name__}, not a message; use UserMessage, SystemMessage, "
                    "AssistantMessage or ToolMessage")
        stop: Any = self.stop
        if isinstance(stop, str):  # lenient: a single stop string
            self.stop = [stop]
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise InvalidInputError(f"max_tokens must be positive, got {self.max_tokens}")
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"tool names must be unique, got {names}")
        if self.tool_choice is not None:
            mode, tool = split_tool_choice(self.tool_choice)
            if mode == "required" and not self.tools:
                raise InvalidInputError("tool_choice='required' needs at least one tool")
            if tool is not None and tool not in names:
                raise InvalidInputError(f"tool_choice names {tool!r}, which is not among the tools {names}")


# --------------------------------------------------------------------------- response

FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]
"""Why generation ended, the same on every provider (vendor string in ``raw_finish_reason``)."""

_FINISH: dict[str, FinishReason] = {
    # OpenAI and compatibles (xAI, vLLM, TGI, llama.cpp, HF router)
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter", "eos_token": "stop", "eos": "stop", "abort": "error", "error": "error",
    # Anthropic
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
    "refusal": "content_filter", "model_context_window_exceeded": "length", "pause_turn": "other",
    # Gemini / Vertex AI (case-insensitive: they are upper case on the wire)
    "safety": "content_filter", "recitation": "content_filter", "blocklist": "content_filter",
    "prohibited_content": "content_filter", "spii": "content_filter", "image_safety": "content_filter",
    "language": "other", "malformed_function_call": "error", "unexpected_tool_call": "error",
    "too_many_tool_calls": "error", "finish_reason_unspecified": "other", "other": "other",
    # Ollama done_reason
    "load": "other", "unload": "other",
}


def normalize_finish_reason(raw: str | None) -> FinishReason | None:
    """Map a vendor finish/stop reason to :data:`FinishReason`; unknown values give ``"other"``."""
    if raw is None or raw == "":
        return None
    return _FINISH.get(raw) or _FINISH.get(raw.lower(), "other")


@dataclass(slots=True)
class Usage:
    """Token counts of one call (see the module docstring for what each count includes)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cached_input_tokens + other.cached_input_tokens,
                     self.cache_creation_tokens + other.cache_creation_tokens,
                     self.reasoning_tokens + other.reasoning_tokens)

    def __radd__(self, other: object) -> Usage:
        if other == 0:  # so that sum(usages) works
            return self
        return NotImplemented


@dataclass(slots=True)
class ChatResponse:
    """The reply of one chat call, identical whether it was streamed or not.

    ``provider``, ``latency_ms`` and ``cost_usd`` are filled by the provider layer, not by codecs.
    ``latency_ms`` is left out of equality (two equal answers rarely take equal time). ``cached`` is
    true when the answer came from a response cache (:class:`~aixpy.llm.policies.CachedModel`): no
    request was sent and ``cost_usd`` is 0; ``usage`` is that of the call that filled the cache.
    """

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage | None = None
    model: str = ""
    provider: str = ""
    id: str | None = None
    raw_finish_reason: str | None = None
    latency_ms: float | None = field(default=None, compare=False)
    cost_usd: float | None = None
    cached: bool = False

    @property
    def message(self) -> AssistantMessage:
        """This reply as an :class:`AssistantMessage`, to append to the conversation."""
        return AssistantMessage(self.text or None, list(self.tool_calls))

    def parse(self, output_type: builtins.type[T]) -> T:
        """The reply text (JSON) validated into ``output_type``: a pydantic model or any type pydantic
        validates (``list[int]``, a dataclass...). Raises ResponseFormatError when it does not validate.

        >>> model.chat("...", response_format=Weather).parse(Weather)    # doctest: +SKIP
        """
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(output_type).validate_json(self.text)
        except ValidationError as e:
            raise ResponseFormatError(f"the reply is not a valid {getattr(output_type, '__name__', output_type)}: "
                                      f"{e.errors(include_url=False)}", provider=self.provider or None,
                                      model=self.model or None, body=self.text) from e


# --------------------------------------------------------------------------- streaming

StreamEventKind: TypeAlias = Literal["text", "tool_call", "usage", "finish"]


@dataclass(slots=True)
class StreamEvent:
    """The one event type of every stream. Which fields matter depends on ``kind``:

    * ``text``: ``text`` is a delta to append.
    * ``tool_call``: ``index`` (stable, dense), ``tool_call_id``/``tool_name`` (first delta of an
      index), ``arguments_delta`` (a JSON text fragment, possibly empty), ``signature`` (the
      provider's opaque token for the call, see :attr:`ToolCall.signature`; the first one per index wins).
    * ``usage``: ``usage`` is a cumulative snapshot (the last one wins).
    * ``finish``: ``finish_reason`` (normalized) and ``raw_finish_reason``.

    ``model`` and ``response_id`` may ride on any event; the fold keeps the first seen.
    Build with the classmethods :meth:`text_delta`, :meth:`tool_call_delta`, :meth:`usage_update`
    and :meth:`finish`.
    """

    kind: StreamEventKind
    text: str = ""
    index: int = 0
    tool_call_id: str | None = None
    tool_name: str | None = None
    arguments_delta: str = ""
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None
    model: str | None = None
    response_id: str | None = None
    signature: str | None = None

    @classmethod
    def text_delta(cls, text: str, *, model: str | None = None, response_id: str | None = None) -> StreamEvent:
        return cls("text", text, model=model, response_id=response_id)

    @classmethod
    def tool_call_delta(cls, index: int, *, id: str | None = None, name: str | None = None,
                        arguments: str = "", model: str | None = None, response_id: str | None = None,
                        signature: str | None = None) -> StreamEvent:
        return cls("tool_call", index=index, tool_call_id=id, tool_name=name, arguments_delta=arguments,
                   model=model, response_id=response_id, signature=signature)

    @classmethod
    def usage_update(cls, usage: Usage, *, model: str | None = None, response_id: str | None = None) -> StreamEvent:
        return cls("usage", usage=usage, model=model, response_id=response_id)

    @classmethod
    def finish(cls, raw: str | None, *, reason: FinishReason | None = None, model: str | None = None,
               response_id: str | None = None) -> StreamEvent:
        """A finish event; ``reason`` defaults to ``normalize_finish_reason(raw)``."""
        return cls("finish", finish_reason=reason or normalize_finish_reason(raw) or "other",
                   raw_finish_reason=raw, model=model, response_id=response_id)


def parse_tool_arguments(raw: str, *, name: str, provider: str | None = None,
                         call_id: str | None = None) -> dict[str, Any]:
    """Parse a tool call's JSON arguments; blank means ``{}``.

    Raises :class:`~aixpy.errors.InvalidToolArgumentsError` (a ResponseFormatError) naming the tool
    (``tool_name``) and, when given, the call (``tool_call_id``).
    """
    if not raw or raw.isspace():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise InvalidToolArgumentsError(f"tool call {name!r} has invalid JSON arguments: {e}", tool_name=name,
                                        tool_call_id=call_id, provider=provider, body=raw) from e
    if not isinstance(value, dict):
        raise InvalidToolArgumentsError(f"tool call {name!r} arguments are a JSON {type(value).__name__}, "
                                        "not an object", tool_name=name, tool_call_id=call_id,
                                        provider=provider, body=raw)
    return value


@dataclass(slots=True)
class _PartialCall:
    id: str | None
    name: str | None
    parts: list[str]
    signature: str | None = None


class StreamAccumulator:
    """Folds :class:`StreamEvent` s into the :class:`ChatResponse` a non-streamed call gives.

    Feed events with :meth:`add` (or :meth:`extend`) as they arrive; read :attr:`text` for the text
    so far; call :meth:`result` at the end. ``finished`` tells whether a finish event was seen (a
    stream that ends without one was cut short; :meth:`result` then reports ``"other"``).
    """

    __slots__ = ("_calls", "_text", "finish_reason", "finished", "model", "provider", "raw_finish_reason",
                 "response_id", "usage")

    def __init__(self, *, provider: str = "") -> None:
        self.provider = provider
        self._text: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.raw_finish_reason: str | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.finished = False

    def add(self, event: StreamEvent) -> None:
        if self.model is None and event.model:
            self.model = event.model
        if self.response_id is None and event.response_id:
            self.response_id = event.response_id
        kind = event.kind
        if kind == "text":
            if event.text:
                self._text.append(event.text)
        elif kind == "tool_call":
            call = self._calls.get(event.index)
            if call is None:
                self._calls[event.index] = _PartialCall(event.tool_call_id, event.tool_name, [event.arguments_delta],
                                                        event.signature or None)
            else:
                if call.id is None:
                    call.id = event.tool_call_id
                if call.name is None:
                    call.name = event.tool_name
                if call.signature is None:
                    call.signature = event.signature or None
                call.parts.append(event.arguments_delta)
        elif kind == "usage":
            if event.usage is not None:
                self.usage = event.usage
        elif kind == "finish":
            self.finished = True
            self.finish_reason = event.finish_reason
            self.raw_finish_reason = event.raw_finish_reason

    def extend(self, events: Iterable[StreamEvent]) -> None:
        for event in events:
            self.add(event)

    @property
    def text(self) -> str:
        return "".join(self._text)

    def result(self, *, latency_ms: float | None = None) -> ChatResponse:
        """The folded response. Raises ResponseFormatError if a tool call has no name or bad JSON."""
        calls: list[ToolCall] = []
        for index in sorted(self._calls):
            part = self._calls[index]
            if not part.name:
                raise ResponseFormatError(f"streamed tool call at index {index} has no name",
                                          provider=self.provider or None)
            raw = "".join(part.parts)
            args = parse_tool_arguments(raw, name=part.name, provider=self.provider or None, call_id=part.id)
            calls.append(ToolCall(part.id or f"call_{index}", part.name, args, raw.strip() or "{}", part.signature))
        reason: FinishReason = self.finish_reason or "other"
        if reason == "stop" and calls:
            reason = "tool_calls"
        return ChatResponse(text="".join(self._text), tool_calls=calls, finish_reason=reason, usage=self.usage,
                            model=self.model or "", provider=self.provider, id=self.response_id,
                            raw_finish_reason=self.raw_finish_reason, latency_ms=latency_ms)


def fold_stream(events: Iterable[StreamEvent], *, provider: str = "", latency_ms: float | None = None) -> ChatResponse:
    """Fold a whole stream into a :class:`ChatResponse` (see :class:`StreamAccumulator`)."""
    acc = StreamAccumulator(provider=provider)
    acc.extend(events)
    return acc.result(latency_ms=latency_ms)
