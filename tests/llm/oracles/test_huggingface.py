"""Wire oracle, HuggingFace: ``huggingface_hub.InferenceClient`` vs our codecs and provider, both routes.

**Chat** (the OpenAI-compatible route: the router, Inference Endpoints, TGI's ``/v1``): the SDK's
``chat_completion`` against ``{endpoint}/v1``, ours with the same ``endpoint``. Request: ``POST
/v1/chat/completions``, ``Authorization: Bearer <token>``, content type, and the body after one
normalisation: ``huggingface_hub`` 2.4 always sends ``"stream": false`` on non-streamed calls; we omit
it, which is the documented default. Reading: as :mod:`._openai_like`. Our pure body is that of the
endpoint's adapter (:class:`~aixpy.llm.codecs.hf_tgi.TGIChatAPI`): for ``json_schema`` both sides send TGI's
grammar shape ``{"type": "json_object", "value": schema}`` (TGI's chat route reads no other), where the
router gets OpenAI's (``test_router_keeps_openais_response_format``).

**Text generation** (TGI): the SDK's ``text_generation`` with the server URL as model, ours with
``text_generation=True`` and the same ``endpoint``. Allowed differences:

* **Path.** The SDK posts to the server root ``/``; we post to ``/generate`` or ``/generate_stream``.
  TGI's ``/`` (``compat_generate``) dispatches on ``stream`` to exactly those two handlers with the same
  body; it wraps a non-streamed answer in a list, which both sides read (``tgi_generate_list.json``).
* The logical call carries what our codec always asks for: ``details: true`` (finish reason and token
  counts) and ``return_full_text: false``; the SDK user passes both.
* Prompt: one plain user message is sent as-is; anything else is our neutral transcript template
  (``System: ...``/``User: ...``/``Assistant:``), which the SDK user would write by hand (spelled out below).
* Reading: TGI replies name no model; our provider reports the configured one, so ``model`` is not
  compared for this route. Input tokens are ``details.input_length`` (streams) or the length of
  ``details.prefill`` (non-streamed, when the server sends it); output tokens ``details.generated_tokens``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy.llm._http import HttpChatModel
from aixpy.llm.codecs import hf_tgi, openai_chat
from aixpy.llm.codecs.hf_tgi import TGIChatAPI
from aixpy.llm.types import fold_stream

from ._openai_like import CASES, Case, codec_outcome, completion_outcome, fold_chunks, sdk_kwargs
from ._oracle import REPORT_SCHEMA, SYSTEM, Outcome, WireExpectation, finish, ours, run_case, scenario, sse_events
from ._server import RecordingServer, Reply

hub = pytest.importorskip("huggingface_hub")

TOKEN = "hf_oracleToken0123456789abcdefghijklmn"
CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
TGI_MODEL = "meta-llama/Llama-3.1-8B"
BEARER = {"authorization": f"Bearer {TOKEN}"}
TGI_FINISH = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}

# --------------------------------------------------------------------------- chat (OpenAI-compatible route)


@pytest.fixture(scope="module")
def chat_sdk(_recording_server: RecordingServer) -> Any:
    return hub.InferenceClient(base_url=_recording_server.url + "/v1", api_key=TOKEN)


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = llm.new(f"huggingface:{CHAT_MODEL}", api_key=TOKEN, endpoint=server.url, environ={})
    yield model
    model.close()


def chat_call(client: Any, name: str, stream: bool) -> Outcome:
    kwargs = sdk_kwargs(name)
    if not stream:
        return completion_outcome(client.chat_completion(model=CHAT_MODEL, **kwargs))
    return fold_chunks(client.chat_completion(model=CHAT_MODEL, stream=True, stream_options={"include_usage": True},
                                              **kwargs))


def drop_stream_false(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    if body.get("stream") is False:
        body.pop("stream")
    return body


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_chat_same_request_and_reading(server: RecordingServer, chat_sdk: Any, provider: llm.ChatModel,
                                       case: Case) -> None:
    req = scenario(case.scenario, CHAT_MODEL)
    result = run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream,
                      sdk_call=lambda: chat_call(chat_sdk, case.scenario, case.stream),
                      model=provider,
                      codec_body=TGIChatAPI().chat_call(req, stream=case.stream).json,
                      codec_parse=lambda raw: codec_outcome(raw, case.stream),
                      want_sdk=WireExpectation("/v1/chat/completions", headers=BEARER, absent=("x-api-key",)),
                      normalize_sdk=drop_stream_false)
    assert result.response.provider == "huggingface"


def test_router_keeps_openais_response_format() -> None:
    """Without an endpoint (the HF router, which forwards to OpenAI-compatible providers) the body is
    OpenAI's, ``response_format`` included; only an endpoint (TGI's chat route) gets the grammar shape."""
    req = scenario("json_schema", CHAT_MODEL)
    router = llm.new(f"huggingface:{CHAT_MODEL}", api_key=TOKEN, environ={})
    try:
        assert isinstance(router, HttpChatModel)
        assert router.api.chat_call(req, stream=False).json == openai_chat.build_request(req, stream=False)
    finally:
        router.close()
    assert TGIChatAPI().chat_call(req, stream=False).json["response_format"] == {
        "type": "json_object", "value": REPORT_SCHEMA}


# --------------------------------------------------------------------------- text generation (TGI)

TRANSCRIPT = f"System: {SYSTEM}\n\nUser: Hi\n\nAssistant:"
ALWAYS = {"details": True, "return_full_text": False}


def tgi_kwargs(name: str) -> tuple[str, dict[str, Any]]:
    """``(prompt, text_generation keyword arguments)`` for the logical call ``name``."""
    if name == "plain":
        return "Hi", ALWAYS
    if name == "system":
        return TRANSCRIPT, ALWAYS
    if name == "sampling":
        return "Count to five.", {**ALWAYS, "temperature": 0.3, "max_new_tokens": 64, "top_p": 0.9,
                                  "stop": ["\n\n", "END"], "seed": 42}
    if name == "json_object":
        return "What is the weather in Paris?", {**ALWAYS, "grammar": {"type": "json", "value": {"type": "object"}}}
    if name == "json_schema":
        return "What is the weather in Paris?", {**ALWAYS, "grammar": {"type": "json",
                                                                       "value": copy.deepcopy(REPORT_SCHEMA)}}
    raise KeyError(name)


def tgi_request(name: str) -> llm.ChatRequest:
    if name in ("json_object", "json_schema"):  # the shared scenario adds a system message to json_object
        req = scenario(name, TGI_MODEL)
        return replace(req, messages=[m for m in req.messages if m.role == "user"])
    return scenario(name, TGI_MODEL)


def tgi_fold(outputs: Iterable[Any]) -> Outcome:
    """``TextGenerationOutput`` (one) or ``TextGenerationStreamOutput`` s as the SDK parsed them."""
    text: list[str] = []
    reason = counts = None
    for out in outputs:
        token = getattr(out, "token", None)
        if token is None:  # a whole, non-streamed output
            text.append(out.generated_text)
        elif not token.special:
            text.append(token.text)
        details = out.details
        if details is not None:
            reason = details.finish_reason
            prefill = getattr(details, "prefill", None)
            inputs = getattr(details, "input_length", None) or (len(prefill) if prefill else 0)
            counts = (inputs, details.generated_tokens, 0)
    return Outcome("".join(text), (), finish(reason, TGI_FINISH, False), counts)


def tgi_codec_outcome(raw: bytes, stream: bool) -> Outcome:
    if not stream:
        return ours(hf_tgi.parse_response(raw))
    return ours(fold_stream(e for _, data in sse_events(raw) for e in hf_tgi.parse_stream_event(data)))


TGI_CASES = [  # (scenario, reply, stream)
    ("plain", "tgi_generate.json", False),
    ("plain", "tgi_generate_list.json", False),
    ("system", "tgi_generate.json", False),
    ("sampling", "tgi_generate.json", False),
    ("json_object", "tgi_generate.json", False),
    ("json_schema", "tgi_generate.json", False),
    ("plain", "tgi_generate_stream.sse", True),
    ("sampling", "tgi_generate_stream.sse", True),
]


@pytest.fixture(scope="module")
def tgi_sdk(_recording_server: RecordingServer) -> Any:
    return hub.InferenceClient(model=_recording_server.url, token=TOKEN)


@pytest.fixture(scope="module")
def tgi_provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = llm.new(f"huggingface:{TGI_MODEL}", api_key=TOKEN, endpoint=server.url, environ={},
                    options={"text_generation": True})
    yield model
    model.close()


def tgi_call(client: Any, name: str, stream: bool) -> Outcome:
    prompt, kwargs = tgi_kwargs(name)
    if not stream:
        return tgi_fold([client.text_generation(prompt, **kwargs)])
    return tgi_fold(client.text_generation(prompt, stream=True, **kwargs))


def no_model(outcome: Outcome) -> Outcome:
    return replace(outcome, model=None)


@pytest.mark.parametrize("case", TGI_CASES, ids=lambda c: f"{c[0]}-{'stream' if c[2] else 'json'}-{c[1].split('.')[0]}")
def test_text_generation_same_request_and_reading(server: RecordingServer, tgi_sdk: Any, tgi_provider: llm.ChatModel,
                                                  case: tuple[str, str, bool]) -> None:
    name, reply, stream = case
    req = tgi_request(name)
    result = run_case(server, reply=Reply.fixture(reply), req=req, stream=stream,
                      sdk_call=lambda: tgi_call(tgi_sdk, name, stream),
                      model=tgi_provider,
                      codec_body=hf_tgi.build_request(req, stream=stream),
                      codec_parse=lambda raw: tgi_codec_outcome(raw, stream),
                      want_sdk=WireExpectation("/", headers=BEARER),
                      want_ours=WireExpectation(hf_tgi.path(stream), headers=BEARER),
                      comparable=no_model)
    assert result.response.model == TGI_MODEL


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_async_text_generation(server: RecordingServer, tgi_sdk: Any, stream: bool) -> None:
    """The async half of our TGI provider against the same SDK oracle."""
    req = tgi_request("sampling")
    run_case(server, reply=Reply.fixture("tgi_generate_stream.sse" if stream else "tgi_generate.json"), req=req,
             stream=stream, asynchronous=True, sdk_call=lambda: tgi_call(tgi_sdk, "sampling", stream),
             make_model=lambda: llm.new(f"huggingface:{TGI_MODEL}", api_key=TOKEN, endpoint=server.url, environ={},
                                        options={"text_generation": True}),
             codec_body=hf_tgi.build_request(req, stream=stream),
             codec_parse=lambda raw: tgi_codec_outcome(raw, stream), want_sdk=WireExpectation("/", headers=BEARER),
             want_ours=WireExpectation(hf_tgi.path(stream), headers=BEARER), comparable=no_model)


@pytest.mark.parametrize("case", [Case("multi_turn_tools", "openai_tools.json"),
                                  Case("tools_auto", "openai_tools.sse", stream=True)], ids=lambda c: c.id)
def test_async_chat(server: RecordingServer, chat_sdk: Any, case: Case) -> None:
    """The async half of our HuggingFace chat provider against the same SDK oracle."""
    req = scenario(case.scenario, CHAT_MODEL)
    run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream, asynchronous=True,
             sdk_call=lambda: chat_call(chat_sdk, case.scenario, case.stream),
             make_model=lambda: llm.new(f"huggingface:{CHAT_MODEL}", api_key=TOKEN, endpoint=server.url, environ={}),
             codec_body=openai_chat.build_request(req, stream=case.stream),
             codec_parse=lambda raw: codec_outcome(raw, case.stream),
             want_sdk=WireExpectation("/v1/chat/completions", headers=BEARER, absent=("x-api-key",)),
             normalize_sdk=drop_stream_false)
