"""Wire oracle, xAI (Grok): the official ``openai`` SDK at xAI's base URL vs our xAI codec path and provider.

xAI speaks OpenAI Chat Completions at ``https://api.x.ai/v1`` (here: the recording server's ``/v1``),
so the SDK user's call is the ``openai`` one with ``base_url`` changed.

Allowed differences, request: none (path, bearer key, content type and body equal).
Reply: xAI counts reasoning tokens *outside* ``completion_tokens`` (``total_tokens`` = prompt +
completion + reasoning); our usage contract folds them into output tokens, and the SDK-side
extractor applies the same documented rule (:func:`._openai_like.usage_tuple`), checked below on a
reply shaped like xAI's documented one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy.llm.codecs import openai_chat

from ._openai_like import CASES, STREAM_KWARGS, Case, codec_outcome, completion_outcome, sdk_kwargs
from ._oracle import Outcome, WireExpectation, run_case, scenario
from ._server import RecordingServer, Reply

openai = pytest.importorskip("openai")

KEY = "xai-oracle-0123456789abcdefghijklmnopqrstuvwxyz"
MODEL = "grok-4"
WANT = WireExpectation("/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                       absent=("x-api-key", "x-goog-api-key"))

XAI_CASES = [*CASES, Case("plain", "xai_reasoning.json"), Case("plain", "xai_reasoning.sse", stream=True)]


@pytest.fixture(scope="module")
def sdk(_recording_server: RecordingServer) -> Iterator[Any]:
    client = openai.OpenAI(api_key=KEY, base_url=_recording_server.url + "/v1", max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = llm.new(f"xai:{MODEL}", api_key=KEY, endpoint=server.url + "/v1", environ={})
    yield model
    model.close()


def sdk_call(client: Any, kwargs: dict[str, Any], stream: bool) -> Outcome:
    if not stream:
        return completion_outcome(client.chat.completions.create(model=MODEL, **kwargs))
    with client.chat.completions.stream(model=MODEL, **kwargs, **STREAM_KWARGS) as s:
        return completion_outcome(s.get_final_completion())


@pytest.mark.parametrize("case", XAI_CASES, ids=lambda c: f"{c.id}-{c.reply.split('.')[0]}")
def test_same_request_and_reading(server: RecordingServer, sdk: Any, provider: llm.ChatModel, case: Case) -> None:
    req = scenario(case.scenario, MODEL)
    result = run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream,
                      sdk_call=lambda: sdk_call(sdk, sdk_kwargs(case.scenario), case.stream),
                      model=provider,
                      codec_body=openai_chat.build_request(req, stream=case.stream),
                      codec_parse=lambda raw: codec_outcome(raw, case.stream), want_sdk=WANT)
    assert result.response.provider == "xai"
    if case.reply.startswith("xai_reasoning"):
        # 32 prompt, 9 completion + 94 reasoning billed apart (total 135), 6 cached
        assert result.sdk.usage == (32, 103, 6)
        assert result.response.usage is not None
        assert result.response.usage.reasoning_tokens == 94


ASYNC_CASES = [Case("multi_turn_tools", "openai_tools.json"), Case("tools_auto", "openai_tools.sse", stream=True)]


@pytest.mark.parametrize("case", ASYNC_CASES, ids=lambda c: c.id)
def test_async_provider_sends_and_reads_the_same(server: RecordingServer, sdk: Any, case: Case) -> None:
    """The async half of our provider (``achat``/``astream``) against the same SDK oracle."""
    req = scenario(case.scenario, MODEL)
    run_case(server, reply=Reply.fixture(case.reply), req=req, stream=case.stream, asynchronous=True,
             sdk_call=lambda: sdk_call(sdk, sdk_kwargs(case.scenario), case.stream),
             make_model=lambda: llm.new(f"xai:{MODEL}", api_key=KEY, endpoint=server.url + "/v1",
                                                environ={}),
             codec_body=openai_chat.build_request(req, stream=case.stream),
             codec_parse=lambda raw: codec_outcome(raw, case.stream), want_sdk=WANT)
