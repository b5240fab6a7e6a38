"""Gemini API and Vertex AI providers on real loopback HTTP: key in a header (never the URL), paths,
OAuth tokens, project/location resolution, the optional google-auth dependency."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from aixpy.errors import ConfigError, InvalidInputError, MissingDependencyError, RateLimitError
from aixpy.llm import ToolSpec
from aixpy.llm.providers.gemini import GeminiModel
from aixpy.llm.providers.vertexai import VertexAIModel

from .test_provider_server import FIXTURES, Reply, ScriptedServer

KEY = "AIzaSyTestKey0123456789abcdefghijk"
WEATHER = ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {"location": {"type": "string"}}})
TIME = ToolSpec("get_time", "Time.", {"type": "object", "properties": {}})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def gemini(server: ScriptedServer) -> GeminiModel:
    return GeminiModel("gemini-2.5-flash", api_key=KEY, endpoint=server.url, environ={})


def test_gemini_key_in_header_never_in_url(server: ScriptedServer) -> None:
    server.push(Reply.raw((FIXTURES / "gemini_text.json").read_bytes()))
    with gemini(server) as model:
        reply = model.chat("Why is the sky blue?", system="Short answers.")
    req = server.last
    assert req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert KEY not in req.path
    assert "key=" not in req.path
    assert req.headers["x-goog-api-key"] == KEY
    assert req.json["systemInstruction"] == {"parts": [{"text": "Short answers."}]}
    assert reply.provider == "gemini"
    assert reply.text.startswith("The sky looks blue")
    usage = reply.usage
    assert usage is not None
    assert usage.output_tokens == 14 + 388
    assert usage.reasoning_tokens == 388
    # reasoning (thought) tokens are billed as output, once
    assert reply.cost_usd == pytest.approx((9 * 0.30 + (14 + 388) * 2.50) / 1e6)


def test_gemini_stream_path_and_tools(server: ScriptedServer) -> None:
    server.push(Reply.sse_file("gemini_tools.sse"), Reply.raw((FIXTURES / "gemini_tools.json").read_bytes()))
    with gemini(server) as model:
        with model.stream("weather?", tools=[WEATHER, TIME]) as s:
            streamed = s.get_response()
        plain = model.chat("weather?", tools=[WEATHER, TIME])
    assert server.requests[0].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert [c.name for c in streamed.tool_calls] == ["get_weather", "get_weather", "get_time"]
    assert streamed.usage is not None
    assert streamed.usage.cached_input_tokens == 1024
    assert streamed == plain


def test_gemini_rate_limit_retry_delay_from_body(server: ScriptedServer) -> None:
    body = {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}
    server.push(Reply.json(body, status=429))
    with gemini(server) as model, pytest.raises(RateLimitError) as info:
        model.chat("x")
    assert info.value.retry_after == 37.0


def test_gemini_list_models(server: ScriptedServer) -> None:
    server.push(Reply.json({"models": [
        {"name": "models/gemini-2.5-pro", "supportedGenerationMethods": ["generateContent", "countTokens"]},
        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}]}))
    with gemini(server) as model:
        assert model.list_models() == ["gemini-2.5-pro"]
    assert server.last.path.startswith("/v1beta/models?")


@pytest.mark.parametrize("var", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_gemini_key_variables(var: str) -> None:
    model = GeminiModel(environ={var: KEY})
    assert model.http.config.secret_headers == {"x-goog-api-key": KEY}
    assert model.base_url == "https://generativelanguage.googleapis.com"
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiModel(environ={})


# --------------------------------------------------------------------------- Vertex AI


class Tokens:
    """An injectable token source that counts refreshes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return f"ya29.token-{self.calls}"


def vertex(server: ScriptedServer, tokens: Tokens, **kw: object) -> VertexAIModel:
    return VertexAIModel("gemini-2.5-flash", project_id="my-proj", endpoint=server.url, token_provider=tokens,
                         environ={}, **kw)  # type: ignore[arg-type]


def test_vertex_path_and_fresh_token_per_request(server: ScriptedServer) -> None:
    tokens = Tokens()
    body = (FIXTURES / "gemini_text.json").read_bytes()
    server.push(Reply.raw(body), Reply.raw(body))
    with vertex(server, tokens) as model:
        reply = model.chat("hi")
        model.chat("again")
    first, second = server.requests
    assert first.path == "/v1/projects/my-proj/locations/us-central1/publishers/google/models/" \
                         "gemini-2.5-flash:generateContent"
    assert first.headers["authorization"] == "Bearer ya29.token-1"
    assert second.headers["authorization"] == "Bearer ya29.token-2"
    assert reply.provider == "vertexai"
    assert reply.cost_usd is not None


async def test_vertex_async_stream(server: ScriptedServer) -> None:
    server.push(Reply.sse_file("gemini_text.sse"))
    async with vertex(server, Tokens(), location="europe-west4") as model, model.astream("hi") as s:
        await s.get_response()
    assert server.last.path == "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/" \
                               "gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert server.last.headers["authorization"].startswith("Bearer ya29.")


def test_vertex_default_host_from_location_and_env() -> None:
    env = {"GOOGLE_CLOUD_PROJECT": "env-proj", "VERTEX_AI_LOCATION": "asia-northeast1"}
    model = VertexAIModel(token_provider=Tokens(), environ=env)
    assert model.base_url == "https://asia-northeast1-aiplatform.googleapis.com"
    assert (model.project_id, model.location) == ("env-proj", "asia-northeast1")
    assert set(model.http.config.policy.allowed_hosts or ()) == {"asia-northeast1-aiplatform.googleapis.com"}
    other = VertexAIModel(token_provider=Tokens(), environ={"GCP_PROJECT_ID": "p2"}, location="global")
    assert other.base_url == "https://aiplatform.googleapis.com"
    assert other.location == "global"
    assert VertexAIModel(token_provider=Tokens(), environ={"GCP_PROJECT_ID": "p"}).location == "us-central1"


def test_vertex_needs_a_project_and_a_sane_location() -> None:
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        VertexAIModel(token_provider=Tokens(), environ={})
    with pytest.raises(InvalidInputError):
        VertexAIModel(token_provider=Tokens(), project_id="p", location="evil.com/x", environ={})


def test_vertex_without_google_auth_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "google.auth" or m.startswith("google.auth.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "google.auth", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'aixpy\[vertex\]'"):
        VertexAIModel(project_id="p", environ={})


def test_vertex_adc_tokens_are_cached_until_expiry() -> None:
    pytest.importorskip("google.auth")
    from aixpy.llm.providers.vertexai import GoogleADCTokens

    class Creds:
        def __init__(self) -> None:
            self.valid, self.token, self.refreshes = False, None, 0

        def refresh(self, request: object) -> None:
            self.refreshes += 1
            self.valid, self.token = True, f"tok{self.refreshes}"

    creds = Creds()
    tokens = GoogleADCTokens(credentials=creds)
    assert not tokens.fresh
    assert tokens() == "tok1"
    assert tokens() == "tok1"
    assert creds.refreshes == 1
    assert tokens.fresh
    creds.valid = False
    assert tokens() == "tok2"
