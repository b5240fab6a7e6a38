"""Wire oracle, OpenAI Chat Completions: the official ``openai`` SDK vs our codec and provider.

Allowed differences, request: none. Method, path, query, ``Authorization: Bearer``, content type and
the whole JSON body must be equal (telemetry headers are never compared, see :mod:`._oracle`).
Reply: none beyond our usage contract (see :func:`._openai_like.usage_tuple`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import aixpy.llm as llm
from aixpy.llm.codecs import openai_chat

from ._openai_like import CASES, STREAM_KWARGS, Case, codec_outcome, completion_outcome, sdk_kwargs
from ._oracle import Outcome, WireExpectation, run_case, scenario
from ._server import RecordingServer, Reply

openai = pytest.importorskip("openai")

KEY = "sk-proj-oracle-0123456789abcdefXYZ"
MODEL = "gpt-4o-mini"
WANT = WireExpectation("/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                       absent=("x-api-key", "x-goog-api-key"))


@pytest.fixture(scope="module")
def sdk(_recording_server: RecordingServer) -> Iterator[Any]:
    client = openai.OpenAI(api_key=KEY, base_url=_recording_server.url + "/v1", max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = ours_model(server, MODEL)
    yield model
    model.close()


def sdk_call(client: Any, model: str, kwargs: dict[str, Any], stream: bool) -> Outcome:
    """Non-streamed: ``create``. Streamed: the SDK's own accumulator (``stream()`` + ``get_final_completion``)."""
    if not stream:
        return completion_outcome(client.chat.completions.create(model=model, **kwargs))
    with client.chat.completions.stream(model=model, **kwargs, **STREAM_KWARGS) as s:
        return completion_outcome(s.get_final_completion())


def ours_model(server: RecordingServer, model: str) -> llm.ChatModel:
    return llm.new(f"openai:{model}", api_key=KEY, endpoint=server.url + "/v1", environ={})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_request_and_reading(server: RecordingServer, sdk: Any, provider: llm.ChatModel, case: Case) -> None:
    req = scenario(case.scenario, MODEL)
    run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream,
             sdk_call=lambda: sdk_call(sdk, MODEL, sdk_kwargs(case.scenario), case.stream),
             model=provider,
             codec_body=openai_chat.build_request(req, stream=case.stream),
             codec_parse=lambda raw: codec_outcome(raw, case.stream), want_sdk=WANT)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_reasoning_model_max_completion_tokens(server: RecordingServer, sdk: Any, stream: bool) -> None:
    """o-series/gpt-5 models reject ``max_tokens``: the SDK user passes ``max_completion_tokens``, so do we."""
    model = "o4-mini"
    req = llm.ChatRequest(model, [llm.UserMessage("Hi")], max_tokens=256, seed=7)
    kwargs = {"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 256, "seed": 7}
    result = run_case(server, reply=Reply.fixture("openai_text.sse" if stream else "openai_text.json"), req=req,
                      stream=stream, sdk_call=lambda: sdk_call(sdk, model, kwargs, stream),
                      make_model=lambda: ours_model(server, model),
                      codec_body=openai_chat.build_request(req, stream=stream),
                      codec_parse=lambda raw: codec_outcome(raw, stream), want_sdk=WANT)
    assert "max_tokens" not in result.ours_request.json


ASYNC_CASES = [Case("multi_turn_tools", "openai_tools.json"), Case("tools_auto", "openai_tools.sse", stream=True)]


@pytest.mark.parametrize("case", ASYNC_CASES, ids=lambda c: c.id)
def test_async_provider_sends_and_reads_the_same(server: RecordingServer, sdk: Any, case: Case) -> None:
    """The async half of our provider (``achat``/``astream``) against the same SDK oracle."""
    req = scenario(case.scenario, MODEL)
    run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream, asynchronous=True,
             sdk_call=lambda: sdk_call(sdk, MODEL, sdk_kwargs(case.scenario), case.stream),
             make_model=lambda: ours_model(server, MODEL),
             codec_body=openai_chat.build_request(req, stream=case.stream),
             codec_parse=lambda raw: codec_outcome(raw, case.stream), want_sdk=WANT)


# --------------------------------------------------------------------------- structured outputs from a pydantic model


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


def test_structured_output_from_a_pydantic_model(server: RecordingServer, sdk: Any, provider: llm.ChatModel) -> None:
    """``chat.completions.parse(response_format=Report)`` against ``response_format=ResponseFormat.from_model(Report)``:
    the same logical call ("answer as a Report"), so the same strict schema must go out. One normalisation:
    ``parse()`` always sends ``"stream": false``, the documented default we leave out."""
    req = llm.ChatRequest(MODEL, [llm.UserMessage("Weather in Paris?")],
                          response_format=llm.ResponseFormat.from_model(Report))
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    run_case(server, reply=Reply.fixture("openai_report.json"), req=req, stream=False,
             sdk_call=lambda: completion_outcome(sdk.chat.completions.parse(model=MODEL, messages=messages,
                                                                           response_format=Report)),
             model=provider, codec_body=openai_chat.build_request(req, stream=False),
             codec_parse=lambda raw: codec_outcome(raw, False), want_sdk=WANT,
             normalize_sdk=lambda body: {k: v for k, v in body.items() if (k, v) != ("stream", False)})
