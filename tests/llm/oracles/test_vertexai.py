"""Wire oracle, Vertex AI: ``google-genai`` with ``vertexai=True`` vs our Vertex codec path and provider.

Both sides get injected credentials, so no Application Default Credentials lookup, no token refresh and
no metadata-server call can happen: the SDK a ``google.oauth2.credentials.Credentials`` holding a fixed
access token (valid, no expiry), ours the same object through :class:`GoogleADCTokens`.

Request: method, ``/v1/projects/{project}/locations/{location}/publishers/google/models/{m}:
generateContent`` (``:streamGenerateContent`` + ``alt=sse``), ``Authorization: Bearer <token>`` on both
sides and no API key header, content type, and the body after the normalisation of :mod:`._google`.

Allowed difference: the API version. ``google-genai`` 3.4 defaults to ``v1beta1`` on Vertex; ours uses
the stable ``v1``; the SDK is pinned to ``v1`` (``HttpOptions(api_version="v1")``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy.llm.codecs import gemini as codec

from ._google import CASES, MODEL, case_id, codec_outcome, normalize, sdk_call
from ._oracle import WireExpectation, run_case, scenario
from ._server import RecordingServer, Reply

genai = pytest.importorskip("google.genai")
credentials_mod = pytest.importorskip("google.oauth2.credentials")

TOKEN = "ya29.oracle-access-token-0123456789"
PROJECT = "oracle-project-42"
LOCATION = "europe-west4"


def want(stream: bool, location: str = LOCATION) -> WireExpectation:
    method = "streamGenerateContent" if stream else "generateContent"
    return WireExpectation(
        f"/v1/projects/{PROJECT}/locations/{location}/publishers/google/models/{MODEL}:{method}",
        headers={"authorization": f"Bearer {TOKEN}"}, absent=("x-goog-api-key", "x-api-key"),
        query={"alt": ["sse"]} if stream else {})


def fake_credentials() -> Any:
    creds = credentials_mod.Credentials(token=TOKEN)
    assert creds.valid  # a refresh (network) is never needed
    return creds


def sdk_client(url: str, location: str = LOCATION) -> Any:
    from google.genai import types

    return genai.Client(vertexai=True, project=PROJECT, location=location, credentials=fake_credentials(),
                        http_options=types.HttpOptions(base_url=url, api_version="v1"))


def ours_model(url: str, location: str = LOCATION) -> llm.ChatModel:
    from aixpy.llm.providers.vertexai import GoogleADCTokens

    return llm.new(f"vertexai:{MODEL}", project_id=PROJECT, location=location, endpoint=url, environ={},
                   options={"token_provider": GoogleADCTokens(credentials=fake_credentials())})


@pytest.fixture(scope="module")
def sdk(_recording_server: RecordingServer) -> Iterator[Any]:
    c = sdk_client(_recording_server.url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def provider(_recording_server: RecordingServer) -> Iterator[llm.ChatModel]:
    """Our provider object, shared by the module's synchronous cases (one pooled client, as in use)."""
    server = _recording_server
    model = ours_model(server.url)
    yield model
    model.close()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_same_request_and_reading(server: RecordingServer, sdk: Any, provider: llm.ChatModel,
                                  case: tuple[str, str, bool]) -> None:
    name, reply, stream = case
    req = scenario(name, MODEL)
    result = run_case(server, reply=Reply.fixture(reply), req=req, stream=stream,
                      sdk_call=lambda: sdk_call(sdk, name, stream), model=provider,
                      codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, stream),
                      want_sdk=want(stream), normalize_sdk=normalize, normalize_ours=normalize)
    assert result.response.provider == "vertexai"


def test_global_location(server: RecordingServer) -> None:
    """``location="global"``: same path shape (``locations/global``) on both sides."""
    sdk_global = sdk_client(server.url, "global")
    try:
        req = scenario("plain", MODEL)
        run_case(server, reply=Reply.fixture("gemini_text.json"), req=req, stream=False,
                 sdk_call=lambda: sdk_call(sdk_global, "plain", False),
                 make_model=lambda: ours_model(server.url, "global"), codec_body=codec.build_request(req),
                 codec_parse=lambda raw: codec_outcome(raw, False), want_sdk=want(False, "global"),
                 normalize_sdk=normalize, normalize_ours=normalize)
    finally:
        sdk_global.close()


def test_vertex_url_without_endpoint_matches_the_sdk_default_host() -> None:
    """Without an endpoint both address ``{location}-aiplatform.googleapis.com`` (no request is made)."""
    from google.genai import types

    from aixpy.llm.providers.vertexai import VertexAIModel

    c = genai.Client(vertexai=True, project=PROJECT, location=LOCATION, credentials=fake_credentials(),
                     http_options=types.HttpOptions(api_version="v1"))
    try:
        sdk_base = c._api_client._http_options.base_url
    finally:
        c.close()
    model = VertexAIModel(MODEL, project_id=PROJECT, location=LOCATION, token_provider=lambda: TOKEN, environ={})
    try:
        assert model.base_url.rstrip("/") == sdk_base.rstrip("/") == f"https://{LOCATION}-aiplatform.googleapis.com"
    finally:
        model.close()


ASYNC_CASES = [("multi_turn_tools", "gemini_tools.json", False), ("tools_auto", "gemini_tools.sse", True)]


@pytest.mark.parametrize("case", ASYNC_CASES, ids=case_id)
def test_async_provider_sends_and_reads_the_same(server: RecordingServer, sdk: Any,
                                                 case: tuple[str, str, bool]) -> None:
    """The async half of our provider (``achat``/``astream``) against the same SDK oracle."""
    name, reply, stream = case
    req = scenario(name, MODEL)
    run_case(server, reply=Reply.fixture(reply), req=req, stream=stream, asynchronous=True,
             sdk_call=lambda: sdk_call(sdk, name, stream), make_model=lambda: ours_model(server.url),
             codec_body=codec.build_request(req), codec_parse=lambda raw: codec_outcome(raw, stream),
             want_sdk=want(stream), normalize_sdk=normalize, normalize_ours=normalize)
