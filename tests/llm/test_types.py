"""Provider-neutral LLM types: validation, usage arithmetic, finish reasons, the stream fold, tools."""

from __future__ import annotations

import copy
import enum
import subprocess
import sys
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter

from aixpy.errors import InvalidInputError, InvalidToolArgumentsError, ResponseFormatError
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ContentPart,
    ImagePart,
    Message,
    ResponseFormat,
    StreamAccumulator,
    StreamEvent,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    fold_stream,
    normalize_finish_reason,
    parse_tool_arguments,
    split_tool_choice,
    strict_json_schema,
    tool_from_function,
)

# --------------------------------------------------------------------------- messages and parts


def test_image_part_from_bytes_and_urls() -> None:
    img = ImagePart.from_bytes(b"\x89PNG", "image/png")
    assert img.inline() == ("image/png", "iVBORw==")
    assert img.as_url() == "data:image/png;base64,iVBORw=="
    remote = ImagePart.from_url("https://example.com/cat.jpg", detail="low")
    assert remote.inline() is None
    assert remote.as_url() == "https://example.com/cat.jpg"
    data_url = ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQ")
    assert data_url.inline() == ("image/jpeg", "/9j/4AAQ")


@pytest.mark.parametrize("kwargs", [{}, {"url": "https://x/y.png", "data": b"x", "media_type": "image/png"},
                                    {"data": b"x"}])
def test_image_part_rejects_ambiguous_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        ImagePart(**kwargs)


def test_user_message_parts() -> None:
    assert UserMessage("hi").parts() == [TextPart("hi")]
    parts: list[ContentPart] = [TextPart("look"), ImagePart.from_url("https://x/y.png")]
    assert UserMessage(parts).parts() is parts


def test_messages_are_a_discriminated_union_pydantic_can_validate() -> None:
    adapter: TypeAdapter[list[Message]] = TypeAdapter(list[Annotated[Message, Field(discriminator="role")]])
    msgs = adapter.validate_python([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "name": "f", "arguments": {"a": 1}}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ])
    assert [type(m) for m in msgs] == [SystemMessage, UserMessage, AssistantMessage, ToolMessage]
    assert msgs[1] == UserMessage([TextPart("hi")])
    assert msgs[2] == AssistantMessage(tool_calls=[ToolCall("c1", "f", {"a": 1})])


# --------------------------------------------------------------------------- request validation


def _req(**kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=kw.pop("messages", [UserMessage("hi")]), **kw)


def test_chat_request_defaults_and_lenient_stop() -> None:
    req = _req(stop="END")
    assert req.stop == ["END"]
    assert req.tools == []
    assert req.extra == {}
    assert req.temperature is None


@pytest.mark.parametrize(("kw", "match"), [
    ({"messages": []}, "at least one message"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "not a message"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"tool_choice": "required"}, "needs at least one tool"),
    ({"tools": [ToolSpec("a")], "tool_choice": "b"}, "not among the tools"),
    ({"tools": [ToolSpec("a"), ToolSpec("a")]}, "unique"),
])
def test_chat_request_validation(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        _req(**kw)


def test_split_tool_choice() -> None:
    assert split_tool_choice("auto") == ("auto", None)
    assert split_tool_choice("none") == ("none", None)
    assert split_tool_choice("required") == ("required", None)
    assert split_tool_choice("get_weather") == ("tool", "get_weather")


def test_response_format() -> None:
    rf = ResponseFormat.json_schema("person", {"type": "object"})
    assert (rf.type, rf.name, rf.strict) == ("json_schema", "person", True)
    assert ResponseFormat(type="json_schema", schema={"type": "object"}).name == "response"
    assert ResponseFormat.json_object().type == "json_object"
    with pytest.raises(InvalidInputError):
        ResponseFormat(type="json_schema")

    class Person(BaseModel):
        name: str
        age: int

    from_model = ResponseFormat.from_model(Person)
    assert from_model.name == "Person"
    assert from_model.schema is not None
    assert from_model.schema["required"] == ["name", "age"]


def test_response_format_from_model_is_strict_unless_asked_not_to_be() -> None:
    class Pet(BaseModel):
        name: str
        nickname: str | None = None

    declared = Pet.model_json_schema()
    strict = ResponseFormat.from_model(Pet)
    assert strict.strict is True
    assert strict.schema == strict_json_schema(declared)
    assert strict.schema is not None
    assert (strict.schema["additionalProperties"], strict.schema["required"]) == (False, ["name", "nickname"])
    assert strict.model_schema == declared  # the schema as declared, for APIs without a strict mode
    loose = ResponseFormat.from_model(Pet, strict=False, name="pet")
    assert (loose.name, loose.strict, loose.schema, loose.model_schema) == ("pet", False, declared, None)
    # model_schema is a by-product of from_model: it does not make two equal formats differ
    assert strict == ResponseFormat.json_schema("Pet", strict_json_schema(declared))


# --------------------------------------------------------------------------- usage and finish


def test_usage_arithmetic() -> None:
    a = Usage(10, 5, cached_input_tokens=4, reasoning_tokens=2)
    b = Usage(1, 2, cache_creation_tokens=3)
    assert a + b == Usage(11, 7, 4, 3, 2)
    assert (a + b).total_tokens == 18
    assert sum([a, b]) == a + b
    with pytest.raises(TypeError):
        a + 1  # type: ignore[operator]


@pytest.mark.parametrize(("raw", "expected"), [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
    ("content_filter", "content_filter"),
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "other"), ("model_context_window_exceeded", "length"),
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("FINISH_REASON_UNSPECIFIED", "other"),
    ("eos_token", "stop"), ("abort", "error"), ("load", "other"),
    ("something_new", "other"), (None, None), ("", None),
])
def test_normalize_finish_reason(raw: str | None, expected: str | None) -> None:
    assert normalize_finish_reason(raw) == expected


# --------------------------------------------------------------------------- the fold


def test_fold_text_usage_and_metadata() -> None:
    events = [
        StreamEvent.text_delta("Hel", model="m-1", response_id="r1"),
        StreamEvent.usage_update(Usage(3, 1)),
        StreamEvent.text_delta("lo", model="m-2", response_id="r2"),  # first seen wins
        StreamEvent.finish("stop"),
        StreamEvent.usage_update(Usage(3, 2)),  # cumulative: the last snapshot wins
    ]
    resp = fold_stream(events, provider="p", latency_ms=12.5)
    assert resp == ChatResponse(text="Hello", finish_reason="stop", usage=Usage(3, 2), model="m-1", provider="p",
                                id="r1", raw_finish_reason="stop")
    assert resp.latency_ms == 12.5


def test_fold_interleaved_tool_calls_by_index() -> None:
    events = [
        StreamEvent.tool_call_delta(1, id="b", name="second", arguments='{"y"'),
        StreamEvent.tool_call_delta(0, id="a", name="first", arguments=""),
        StreamEvent.tool_call_delta(0, arguments='{"x": '),
        StreamEvent.tool_call_delta(1, id="b", name="second", arguments=": [1, 2]}"),  # repeats are ignored
        StreamEvent.tool_call_delta(0, arguments="1}"),
        StreamEvent.finish("tool_calls"),
    ]
    resp = fold_stream(events)
    assert resp.tool_calls == [ToolCall("a", "first", {"x": 1}), ToolCall("b", "second", {"y": [1, 2]})]
    assert resp.tool_calls[0].raw_arguments == '{"x": 1}'
    assert resp.finish_reason == "tool_calls"
    assert resp.text == ""


_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                        max_size=3), max_leaves=8)


@settings(deadline=None, max_examples=60)
@given(args=st.lists(st.dictionaries(st.text(max_size=4), _JSON_VALUES, max_size=4), min_size=1, max_size=3),
       data=st.data())
def test_fold_reassembles_any_chunking_and_interleaving(args: list[dict[str, Any]], data: st.DataObject) -> None:
    """However the argument text is cut and however indexes interleave, the fold gives the same calls."""
    import json

    queues: list[list[StreamEvent]] = []
    for i, a in enumerate(args):
        raw = json.dumps(a)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
        pieces = [raw[x:y] for x, y in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        queues.append([StreamEvent.tool_call_delta(i, id=f"id{i}", name=f"t{i}", arguments=pieces[0]),
                       *(StreamEvent.tool_call_delta(i, arguments=p) for p in pieces[1:])])
    events: list[StreamEvent] = []
    while any(queues):
        q = data.draw(st.sampled_from([q for q in queues if q]))
        events.append(q.pop(0))
    resp = fold_stream([*events, StreamEvent.finish("tool_calls")])
    assert resp.tool_calls == [ToolCall(f"id{i}", f"t{i}", a) for i, a in enumerate(args)]


def test_fold_fills_missing_id_and_empty_arguments() -> None:
    resp = fold_stream([StreamEvent.tool_call_delta(0, name="ping"), StreamEvent.finish("stop")])
    assert resp.tool_calls == [ToolCall("call_0", "ping", {})]
    assert resp.tool_calls[0].raw_arguments == "{}"
    assert resp.finish_reason == "tool_calls"  # "stop" with tool calls is reported as tool_calls
    assert resp.raw_finish_reason == "stop"


def test_fold_invalid_tool_json_names_the_tool() -> None:
    events = [StreamEvent.tool_call_delta(0, id="c", name="get_weather", arguments='{"city": "Par'),
              StreamEvent.finish("tool_calls")]
    with pytest.raises(ResponseFormatError, match="get_weather") as info:
        fold_stream(events, provider="openai")
    assert info.value.provider == "openai"


def test_fold_rejects_non_object_arguments_and_nameless_calls() -> None:
    with pytest.raises(ResponseFormatError, match="not an object"):
        fold_stream([StreamEvent.tool_call_delta(0, id="c", name="f", arguments="[1]")])
    with pytest.raises(ResponseFormatError, match="no name"):
        fold_stream([StreamEvent.tool_call_delta(0, id="c", arguments="{}")])


def test_accumulator_incremental_and_truncated_stream() -> None:
    acc = StreamAccumulator(provider="x")
    acc.add(StreamEvent.text_delta("a"))
    acc.extend([StreamEvent.text_delta("b")])
    assert acc.text == "ab"
    assert not acc.finished
    resp = acc.result()
    assert resp.finish_reason == "other"
    assert resp.raw_finish_reason is None
    assert resp.usage is None


def test_fold_keeps_the_first_signature_of_each_call() -> None:
    events = [StreamEvent.tool_call_delta(0, id="a", name="f", arguments="{", signature="sig-0"),
              StreamEvent.tool_call_delta(1, id="b", name="g", arguments="{}"),
              StreamEvent.tool_call_delta(0, arguments="}", signature="later"),
              StreamEvent.tool_call_delta(2, id="c", name="h", signature=""),  # empty means none
              StreamEvent.tool_call_delta(2, arguments="{}", signature="sig-2"),
              StreamEvent.finish("stop")]
    calls = fold_stream(events).tool_calls
    assert [c.signature for c in calls] == ["sig-0", None, "sig-2"]
    assert StreamEvent.tool_call_delta(0).signature is None
    assert ToolCall("i", "n").signature is None


def test_parse_tool_arguments() -> None:
    assert parse_tool_arguments("  ", name="f") == {}
    assert parse_tool_arguments('{"a": 1}', name="f") == {"a": 1}
    with pytest.raises(ResponseFormatError, match="'f'"):
        parse_tool_arguments("{", name="f")


def test_response_equality_ignores_latency_and_raw_arguments() -> None:
    a = ChatResponse(text="x", tool_calls=[ToolCall("i", "n", {"k": 1}, '{"k": 1}', "sig-a")], latency_ms=1.0)
    b = ChatResponse(text="x", tool_calls=[ToolCall("i", "n", {"k": 1}, '{"k":1}')], latency_ms=99.0)
    assert a == b  # and signatures: opaque provider tokens, not part of what was answered
    assert a.message == AssistantMessage("x", [ToolCall("i", "n", {"k": 1})])
    assert ChatResponse().message.content is None
    assert ToolCall("i", "n", {"k": "é"}).arguments_json == '{"k": "é"}'


# --------------------------------------------------------------------------- tool_from_function


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius", days: Optional[int] = None,  # noqa: UP045
                tags: list[str] | None = None, hourly: bool = False,
                limit: Annotated[int, Field(ge=1, description="At most this many rows.")] = 10) -> str:
    """Get the weather forecast for a city.

    Uses the national weather service.

    Args:
        city: Name of the city,
            e.g. "Paris".
        unit (str): Temperature unit.
        days: Number of days to forecast.
        tags: Free labels.

    Returns:
        The forecast as text.
    """
    return ""


def test_tool_from_function_builds_a_json_schema() -> None:
    spec = tool_from_function(get_weather)
    assert spec.name == "get_weather"
    assert spec.description == "Get the weather forecast for a city."
    params = spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    props = params["properties"]
    assert props["city"] == {"type": "string", "description": 'Name of the city, e.g. "Paris".'}
    assert props["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius",
                             "description": "Temperature unit."}
    assert props["days"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None,
                             "description": "Number of days to forecast."}
    assert props["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert props["hourly"] == {"type": "boolean", "default": False}
    assert props["limit"] == {"type": "integer", "minimum": 1, "default": 10, "description": "At most this many rows."}
    assert "title" not in params
    assert all("title" not in p for p in props.values())


class Address(BaseModel):
    street: str
    title: str  # a property named "title" survives the title stripping


def test_tool_from_function_overrides_strict_and_nested_models() -> None:
    def ship(address: Address, express: bool = False) -> None:
        """Ship a parcel.

        :param address: Where to.
        :param express: Faster.
        """

    spec = tool_from_function(ship, name="ship_parcel", description="Ships.", strict=True)
    assert (spec.name, spec.description, spec.strict) == ("ship_parcel", "Ships.", True)
    assert spec.parameters["additionalProperties"] is False
    assert spec.parameters["required"] == ["address", "express"]
    assert spec.parameters["properties"]["express"]["description"] == "Faster."
    assert set(spec.parameters["$defs"]["Address"]["properties"]) == {"street", "title"}
    # strict all the way down: the nested model is closed too, not just the top level
    assert spec.parameters["$defs"]["Address"]["additionalProperties"] is False
    assert spec.parameters == strict_json_schema(tool_from_function(ship).parameters)


def test_tool_from_function_strict_makes_optional_parameters_required_and_nullable() -> None:
    spec = tool_from_function(get_weather, strict=True)
    params = spec.parameters
    assert params["required"] == ["city", "unit", "days", "tags", "hourly", "limit"]
    assert params["additionalProperties"] is False
    assert params["properties"]["days"] == {"anyOf": [{"type": "integer"}, {"type": "null"}],
                                            "description": "Number of days to forecast."}  # default: None dropped
    assert params["properties"]["unit"]["default"] == "celsius"  # other defaults are annotations and stay
    assert tool_from_function(get_weather).parameters["required"] == ["city"]  # not strict: as declared


def test_tool_from_function_numpy_docstring_and_untyped() -> None:
    def f(a: int, b="x"):  # type: ignore[no-untyped-def]
        """Do a thing.

        Parameters
        ----------
        a : int
            The a.
        b : str
            The b,
            continued.

        Returns
        -------
        int
        """

    spec = tool_from_function(f)
    assert spec.description == "Do a thing."
    assert spec.parameters["properties"]["a"] == {"type": "integer", "description": "The a."}
    assert spec.parameters["properties"]["b"] == {"default": "x", "description": "The b, continued."}


def test_tool_from_function_rejects_varargs() -> None:
    def f(*args: int) -> None: ...

    with pytest.raises(InvalidInputError, match=r"\*args"):
        tool_from_function(f)


# --------------------------------------------------------------------------- strict_json_schema


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str
    country: str | None = None


class Reading(BaseModel):
    place: Place = Field(description="Where")  # a $ref with a sibling key
    unit: Unit = Unit.CELSIUS  # an enum, by $ref with a default
    kind: Literal["current", "forecast"]
    near: list[Place] = []  # a list of models
    backup: Place | None = None  # an optional model
    counts: dict[str, int] = {}  # a map: its additionalProperties schema is kept


class Tree(BaseModel):
    label: str
    children: list[Tree] = []
    parent: Tree | None = Field(default=None, description="Up one level")


def _objects(node: Any) -> list[dict[str, Any]]:
    """Every object schema in ``node``, however deep."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


def test_strict_schema_of_nested_models_optional_fields_lists_and_enums() -> None:
    declared = Reading.model_json_schema()
    before = copy.deepcopy(declared)
    strict = strict_json_schema(declared)
    assert declared == before  # pure
    assert strict["required"] == ["place", "unit", "kind", "near", "backup", "counts"]
    props = strict["properties"]
    # the $ref with a description is inlined (and closed); the description wins over the referenced schema's
    assert props["place"] == {"type": "object", "title": "Place", "description": "Where",
                              "properties": {"city": {"type": "string", "title": "City"},
                                             "country": {"anyOf": [{"type": "string"}, {"type": "null"}],
                                                         "title": "Country"}},
                              "required": ["city", "country"], "additionalProperties": False}
    assert props["unit"] == {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string", "default": "celsius"}
    assert props["kind"] == {"enum": ["current", "forecast"], "title": "Kind", "type": "string"}
    assert props["near"]["items"] == {"$ref": "#/$defs/Place"}  # a bare $ref stays
    assert props["backup"] == {"anyOf": [{"$ref": "#/$defs/Place"}, {"type": "null"}]}  # default: None dropped
    assert props["counts"]["additionalProperties"] == {"type": "integer"}
    assert strict["$defs"]["Place"]["required"] == ["city", "country"]
    assert strict["$defs"]["Place"]["additionalProperties"] is False
    for obj in _objects(strict):
        assert "additionalProperties" in obj
        assert obj.get("required", []) == list(obj.get("properties", {}))
    assert strict == strict_json_schema(strict)  # idempotent


def test_strict_schema_of_a_recursive_model() -> None:
    strict = strict_json_schema(Tree.model_json_schema())
    # pydantic's root is {"$defs": ..., "$ref": "#/$defs/Tree"}: a $ref with a sibling, inlined once
    assert "$ref" not in strict
    assert strict["required"] == ["label", "children", "parent"]
    assert strict["additionalProperties"] is False
    assert strict["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    assert strict["properties"]["parent"] == {"anyOf": [{"$ref": "#/$defs/Tree"}, {"type": "null"}],
                                              "description": "Up one level"}
    assert strict["$defs"]["Tree"]["additionalProperties"] is False
    assert strict["$defs"]["Tree"]["required"] == ["label", "children", "parent"]


def test_strict_schema_self_reference_with_siblings_does_not_loop() -> None:
    schema = {"$defs": {"Node": {"type": "object", "properties": {
        "next": {"$ref": "#/$defs/Node", "description": "following node"}}}},
        "type": "object", "properties": {"head": {"$ref": "#/$defs/Node", "description": "first"}}}
    strict = strict_json_schema(schema)
    head = strict["properties"]["head"]
    assert (head["description"], head["additionalProperties"], head["required"]) == ("first", False, ["next"])
    assert head["properties"]["next"] == {"$ref": "#/$defs/Node"}  # inlining it again would never end
    assert strict["$defs"]["Node"]["properties"]["next"] == {"$ref": "#/$defs/Node"}


def test_strict_schema_merges_single_allof_and_walks_every_subschema() -> None:
    schema = {"definitions": {"A": {"type": "object", "properties": {"x": {"type": "integer", "default": None}}}},
              "type": "object", "properties": {
                  "one": {"allOf": [{"$ref": "#/definitions/A"}], "description": "merged"},
                  "both": {"allOf": [{"type": "object", "properties": {"p": {"type": "string"}}},
                                     {"properties": {"q": {"type": "string"}}}]},
                  "either": {"oneOf": [{"type": "object", "properties": {"r": {"type": "string"}}},
                                       {"type": "string"}]},
                  "pair": {"type": "array", "prefixItems": [{"type": "object", "properties": {}}]},
                  "nullable_obj": {"type": ["object", "null"], "properties": {"s": {"type": "string"}}},
              }}
    strict = strict_json_schema(schema)
    props = strict["properties"]
    assert props["one"] == {"type": "object", "description": "merged", "properties": {"x": {"type": "integer"}},
                            "required": ["x"], "additionalProperties": False}
    assert [e["additionalProperties"] for e in props["both"]["allOf"]] == [False, False]
    assert props["both"]["allOf"][1]["required"] == ["q"]
    assert props["either"]["oneOf"][0]["additionalProperties"] is False
    assert props["pair"]["prefixItems"][0] == {"type": "object", "properties": {}, "required": [],
                                               "additionalProperties": False}
    assert props["nullable_obj"]["additionalProperties"] is False
    assert strict["definitions"]["A"]["required"] == ["x"]


def test_strict_schema_keeps_an_explicit_additional_properties() -> None:
    assert strict_json_schema({"type": "object", "additionalProperties": True}) == \
        {"type": "object", "additionalProperties": True}
    assert strict_json_schema({"type": "string"}) == {"type": "string"}


@pytest.mark.parametrize(("schema", "match"), [
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json", "description": "x"}}},
     "only local references"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing", "description": "x"}}}, "points to nothing"),
    ({"$defs": {"A": [1]}, "type": "object", "properties": {"a": {"$ref": "#/$defs/A", "title": "a"}}},
     "not point to a schema object"),
])
def test_strict_schema_rejects_refs_it_cannot_inline(schema: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        strict_json_schema(schema)
    with pytest.raises(InvalidInputError, match="must be a dict"):
        strict_json_schema([])  # type: ignore[arg-type]


def test_strict_schema_resolves_escaped_pointers() -> None:
    schema = {"$defs": {"a/b~c": {"type": "object", "properties": {"v": {"type": "integer"}}}},
              "type": "object", "properties": {"x": {"$ref": "#/$defs/a~1b~0c", "description": "escaped"}}}
    assert strict_json_schema(schema)["properties"]["x"]["required"] == ["v"]


# --------------------------------------------------------------------------- import cost


def test_types_import_is_light_and_aixpy_does_not_import_llm() -> None:
    code = ("import sys, aixpy; assert 'aixpy.llm' not in sys.modules; import aixpy.llm.types, "
            "aixpy.llm.codecs.openai_chat, aixpy.llm.codecs.anthropic_messages; "
            "print(','.join(m for m in ('pydantic', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_parse_tool_arguments_raises_the_typed_error() -> None:
    assert parse_tool_arguments("  ", name="f") == {}
    with pytest.raises(InvalidToolArgumentsError) as info:
        parse_tool_arguments('{"a": ', name="f", provider="p", call_id="c1")
    assert (info.value.tool_name, info.value.tool_call_id, info.value.provider) == ("f", "c1", "p")
    with pytest.raises(InvalidToolArgumentsError) as nameless_id:
        parse_tool_arguments('"text"', name="g")
    assert (nameless_id.value.tool_name, nameless_id.value.tool_call_id) == ("g", None)
