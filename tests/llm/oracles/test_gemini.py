"""Wire oracle, Gemini API: the official ``google-genai`` SDK vs our codec and provider.

Request: method, path (``/v1beta/models/{m}:generateContent``, or ``:streamGenerateContent`` with
query ``alt=sse`` and nothing else), ``x-goog-api-key`` on both sides and **never** a key in the URL,
content type, and the body after the normalisation documented in :mod:`._google`.

Allowed difference: the API version. ``google-genai`` 3.4 defaults to ``v1``; ours to ``v1beta`` (a
superset with preview features). The SDK is pinned to ``v1beta`` for the scenario matrix, and
:func:`test_stable_v1_surface` checks our ``version="v1"`` against the SDK's default.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import aixpy.llm as llm
from aixpy.llm.codecs import gemini as codec

from ._google import CASES, MODEL, case_id, codec_outcome, fold, normalize, sdk_call
from ._oracle import ASK_WEATHER, WEATHER, WEATHER_PARAMS, WireExpectation, run_case, scenario
from ._server import RecordingServer, Reply

genai = pytest.importorskip("google.genai")

KEY = "AIzaSyOracle-0123456789abcdefghijklmno"


def want(stream: bool, version: str = "v1beta") -> WireExpectation:
    method = "streamGenerateContent" if stream else "generateContent"
    return WireExpectation(f"/{version}/models/{MODEL}:{method}", headers={"x-goog-api-key": KEY},
                           absent=("authorization", "x-api-key"), query={"alt": ["sse"]} if stream else {})


def client(url: str, version: str | None) -> Any:
    from google.genai import types

    options = types.HttpOptions(base_url=url, api_version=version) if version else types.HttpOptions(base_url=url)
    return genai.Client(api_key=KEY, http_options=options)


@pytest.fixture(scope="module")
def sdk(_recording_server: RecordingServer) -> Iterator[Any]:
    c = client(_recording_server.url, "v1beta")
    yield c
    c.close()


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = llm.new(f"gemini:{MODEL}", api_key=KEY, endpoint=server.url, environ={})
    yield model
    model.close()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_same_request_and_reading(server: RecordingServer, sdk: Any, provider: llm.ChatModel,
                                  case: tuple[str, str, bool]) -> None:
    name, reply, stream = case
    req = scenario(name, MODEL)
    result = run_case(server, reply=Reply.fixture(reply), req=req, stream=stream,
                      sdk_call=lambda: sdk_call(sdk, name, stream),
                      model=provider,
                      codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, stream),
                      want_sdk=want(stream), normalize_sdk=normalize, normalize_ours=normalize)
    for rec in (result.sdk_request, result.ours_request):
        assert KEY not in rec.target  # the key travels in the header only, never in the URL


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_stable_v1_surface(server: RecordingServer, stream: bool) -> None:
    """The SDK's default API version (``v1``) against ours configured with ``version="v1"``."""
    sdk_default = client(server.url, None)
    try:
        req = scenario("system", MODEL)
        run_case(server, reply=Reply.fixture("gemini_text.sse" if stream else "gemini_text.json"), req=req,
                 stream=stream, sdk_call=lambda: sdk_call(sdk_default, "system", stream),
                 make_model=lambda: llm.new(f"gemini:{MODEL}", api_key=KEY, endpoint=server.url, environ={},
                                            options={"version": "v1"}),
                 codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, stream),
                 want_sdk=want(stream, "v1"), normalize_sdk=normalize, normalize_ours=normalize)
    finally:
        sdk_default.close()


ASYNC_CASES = [("multi_turn_tools", "gemini_tools.json", False), ("tools_auto", "gemini_tools.sse", True)]


@pytest.mark.parametrize("case", ASYNC_CASES, ids=case_id)
def test_async_provider_sends_and_reads_the_same(server: RecordingServer, sdk: Any,
                                                 case: tuple[str, str, bool]) -> None:
    """The async half of our provider (``achat``/``astream``) against the same SDK oracle."""
    name, reply, stream = case
    req = scenario(name, MODEL)
    run_case(server, reply=Reply.fixture(reply), req=req, stream=stream, asynchronous=True,
             sdk_call=lambda: sdk_call(sdk, name, stream),
             make_model=lambda: llm.new(f"gemini:{MODEL}", api_key=KEY, endpoint=server.url, environ={}),
             codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, stream),
             want_sdk=want(stream), normalize_sdk=normalize, normalize_ours=normalize)


# --------------------------------------------------------------------------- thought signatures


def test_thought_signatures_go_back_as_the_sdk_sends_them(server: RecordingServer, sdk: Any,
                                                          provider: llm.ChatModel) -> None:
    """A reply with parallel calls, the first signed (as Gemini 2.5+/3 sign them), replayed with the tool
    results. The SDK user appends the reply's ``Content`` as received; ours appends ``reply.message``. The
    second requests must agree: the signature back on its call (no placeholder there) and none on the other."""
    from google.genai import types as gt

    weather = gt.FunctionDeclaration(name="get_weather", description=WEATHER.description,
                                     parameters=copy.deepcopy(WEATHER_PARAMS))
    config = gt.GenerateContentConfig(tools=[gt.Tool(function_declarations=[weather])])
    ask = [gt.Content(role="user", parts=[gt.Part(text=ASK_WEATHER)])]
    server.reply = Reply.fixture("gemini_signed_calls.json")
    first = sdk.models.generate_content(model=MODEL, contents=ask, config=config)
    server.take_one()
    reply = provider.chat(llm.ChatRequest(MODEL, [llm.UserMessage(ASK_WEATHER)], tools=[WEATHER]))
    server.take_one()
    signature = "EjQKMgEe+/8/vu/6yMnKy8zNzs/Q0dLT1NXW19jZ2tvc3d7f4OHi4+Tl5ufo6err"
    assert [c.signature for c in reply.tool_calls] == [signature, None]

    results = {"fc_paris": "21°C, sunny", "fc_oslo": "9°C, rain"}
    sdk_contents = [*ask, first.candidates[0].content, gt.Content(role="user", parts=[
        gt.Part(function_response=gt.FunctionResponse(id=call.id, name=call.name,
                                                      response={"output": results[call.id or ""]}))
        for call in first.function_calls or []])]
    req = llm.ChatRequest(MODEL, [llm.UserMessage(ASK_WEATHER), reply.message,
                                  *(llm.ToolMessage(results[c.id], c.id) for c in reply.tool_calls)], tools=[WEATHER])
    result = run_case(server, reply=Reply.fixture("gemini_text.json"), req=req, stream=False,
                      sdk_call=lambda: fold([sdk.models.generate_content(model=MODEL, contents=sdk_contents,
                                                                         config=config)]),
                      model=provider, codec_body=codec.build_request(req),
                      codec_parse=lambda raw: codec_outcome(raw, False), want_sdk=want(False),
                      normalize_sdk=normalize, normalize_ours=normalize)
    model_turn = result.ours_request.json["contents"][1]
    assert [p.get("thoughtSignature") for p in model_turn["parts"]] == [None, signature, None]


# --------------------------------------------------------------------------- schemas derived from Python types


class Unit(enum.StrEnum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str = Field(description="City name")
    country: str | None = None


class Report(BaseModel):
    place: Place
    temperature: float
    unit: Unit
    kind: Literal["current", "forecast"]
    tags: list[str] = []
    alerts: list[Place] | None = None


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius", days: int = 1,
                hourly: bool | None = None) -> str:
    """Current weather of a city.

    Args:
        city: City name.
        unit: Temperature unit.
        days: How many days.
        hourly: Hour by hour.
    """
    return ""


def _without(key: str, node: Any, parent: str | None = None) -> Any:
    """``node`` without schema keyword ``key`` (property *names* under ``properties`` are kept)."""
    if isinstance(node, list):
        return [_without(key, item, parent) for item in node]
    if not isinstance(node, dict):
        return node
    return {k: _without(key, v, k) for k, v in node.items() if parent == "properties" or k != key}


def test_pydantic_response_schema_matches_the_sdk(server: RecordingServer, sdk: Any, provider: llm.ChatModel) -> None:
    """``response_schema=Report`` (the SDK converts the pydantic model) against our
    ``ResponseFormat.from_model(Report)``: ``$defs`` inlined, enums, ``Literal``, ``Optional`` -> ``nullable``,
    defaults, ``required`` and ``propertyOrdering`` must all agree. One difference allowed: the SDK keeps
    ``title`` annotations, our converter drops them (documented in the codec; titles do not constrain)."""
    from google.genai import types

    req = llm.ChatRequest(MODEL, [llm.UserMessage(ASK_WEATHER)], response_format=llm.ResponseFormat.from_model(Report))
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Report)
    run_case(server, reply=Reply.fixture("gemini_json.json"), req=req, stream=False,
             sdk_call=lambda: fold([sdk.models.generate_content(model=MODEL, contents=ASK_WEATHER, config=config)]),
             model=provider, codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, False),
             want_sdk=want(False), normalize_sdk=lambda b: _without("title", normalize(b)), normalize_ours=normalize)


def test_tool_from_a_python_function_matches_the_sdk(server: RecordingServer, sdk: Any,
                                                     provider: llm.ChatModel) -> None:
    """A typed Python function as a tool: the SDK's own conversion to a ``parameters`` Schema
    (``FunctionDeclaration.from_callable_with_api_option``) against our ``tool_from_function``. Types,
    ``Literal`` enums, defaults, ``Optional`` -> ``nullable`` and ``required`` must agree. One difference
    allowed, by design: we split the docstring's ``Args:`` section into per-parameter descriptions and keep
    its first paragraph as the tool description; the SDK sends the whole docstring as the tool
    description. Descriptions are therefore left out of the comparison.

    (Given the bare function, ``tools=[get_weather]``, google-genai 3.4 sends ``parametersJsonSchema``,
    raw JSON Schema, instead; the API accepts either field.)"""
    from google.genai import types

    req = llm.ChatRequest(MODEL, [llm.UserMessage(ASK_WEATHER)], tools=[llm.tool_from_function(get_weather)])
    declaration = types.FunctionDeclaration.from_callable_with_api_option(callable=get_weather,
                                                                          api_option="GEMINI_API")
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])])
    result = run_case(
        server, reply=Reply.fixture("gemini_text.json"), req=req, stream=False,
        sdk_call=lambda: fold([sdk.models.generate_content(model=MODEL, contents=ASK_WEATHER, config=config)]),
        model=provider, codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, False),
        want_sdk=want(False), normalize_sdk=lambda b: _without("description", normalize(b)),
        normalize_ours=lambda b: _without("description", normalize(b)))
    ours_declaration = result.ours_request.json["tools"][0]["functionDeclarations"][0]
    assert ours_declaration["description"] == "Current weather of a city."
    assert ours_declaration["parameters"]["properties"]["city"]["description"] == "City name."
