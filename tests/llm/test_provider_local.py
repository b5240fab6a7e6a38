"""Ollama and HuggingFace text generation (TGI / serverless) on real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aixpy.errors import BlockedURLError, ConfigError, InvalidInputError, InvalidRequestError
from aixpy.llm import ToolSpec
from aixpy.llm.providers.huggingface import HuggingFaceModel
from aixpy.llm.providers.ollama import OllamaModel, base_url

from .test_provider_server import FIXTURES, Reply, ScriptedServer, sse_blocks

CITY = ToolSpec("get_temperature", "Temperature.", {"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def ollama(server: ScriptedServer, model: str = "qwen3:8b", **kw: object) -> OllamaModel:
    return OllamaModel(model, endpoint=server.url, environ={}, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Ollama


def test_ollama_ndjson_stream_with_tools_and_zero_cost(server: ScriptedServer) -> None:
    lines = (FIXTURES / "ollama_chat_tools.ndjson").read_text().splitlines()
    server.push(Reply.ndjson(lines), Reply.raw((FIXTURES / "ollama_chat_tools.json").read_bytes()))
    with ollama(server) as model:
        with model.stream("weather in NY", tools=[CITY]) as s:
            kinds = [e.kind for e in s]
        streamed = s.response
        plain = model.chat("weather in NY", tools=[CITY])
    first = server.requests[0]
    assert (first.method, first.path) == ("POST", "/api/chat")
    assert first.json["stream"] is True
    assert server.requests[1].json["stream"] is False
    assert kinds[-2:] == ["usage", "finish"]
    assert [c.name for c in streamed.tool_calls] == ["get_temperature", "get_conditions"]
    assert streamed.provider == "ollama"
    assert streamed.cost_usd == 0.0
    assert streamed == plain


def test_ollama_options_and_model_not_found(server: ScriptedServer) -> None:
    server.push(Reply.json({"error": "model \"nope:1b\" not found, try pulling it first"}, status=404))
    with ollama(server, "nope:1b", temperature=0.3, max_tokens=64) as model, pytest.raises(InvalidRequestError) as e:
        model.chat("x", stop=["\n\n"])
    assert server.last.json["options"] == {"temperature": 0.3, "num_predict": 64, "stop": ["\n\n"]}
    assert e.value.status_code == 404


def test_ollama_tags_available_and_list_models(server: ScriptedServer) -> None:
    tags = {"models": [{"name": "llama3.1:8b", "size": 4920753328, "details": {"family": "llama"}}]}
    server.push(Reply.raw("Ollama is running", content_type="text/plain"), Reply.json(tags), Reply.json(tags))
    with ollama(server) as model:
        assert model.available()
        assert model.list_models() == ["llama3.1:8b"]
        local = model.local_models()
    assert local[0].size == 4920753328
    assert local[0].family == "llama"
    assert [r.path for r in server.requests] == ["/", "/api/tags", "/api/tags"]


async def test_ollama_unavailable_within_the_short_timeout(refused_port: int) -> None:
    async with OllamaModel(endpoint=f"http://127.0.0.1:{refused_port}", environ={}) as model:
        assert not await model.aavailable(timeout=0.5)
    with OllamaModel(endpoint=f"http://127.0.0.1:{refused_port}", environ={}) as model:
        assert not model.available(timeout=0.5)


@pytest.fixture
def refused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("endpoint", "env", "expected"), [
    (None, {}, "http://localhost:11434"),
    (None, {"OLLAMA_HOST": "0.0.0.0"}, "http://127.0.0.1:11434"),
    (None, {"OLLAMA_HOST": "ollama:8080"}, "http://ollama:8080"),
    (None, {"OLLAMA_HOST": "http://10.1.2.3:11434/"}, "http://10.1.2.3:11434"),
    (None, {"OLLAMA_HOST": "https://ollama.example.com"}, "https://ollama.example.com"),
    ("http://localhost:11434", {"OLLAMA_HOST": "elsewhere"}, "http://localhost:11434"),
])
def test_ollama_base_url(endpoint: str | None, env: dict[str, str], expected: str) -> None:
    assert base_url(endpoint, env) == expected


def test_ollama_policies() -> None:
    local = OllamaModel(environ={})
    assert local.http.config.policy.name == "local"
    assert OllamaModel(endpoint="http://ollama:11434", environ={}).http.config.policy.name == "local"
    remote = OllamaModel(endpoint="https://ollama.example.com", environ={})
    assert remote.http.config.policy.name == "public"
    with pytest.raises(BlockedURLError):
        OllamaModel(endpoint="http://ollama.example.com:11434", environ={})
    with pytest.raises(ConfigError):
        OllamaModel(endpoint="ftp://x", environ={})


# --------------------------------------------------------------------------- HuggingFace text generation


def test_tgi_generate_and_generate_stream(server: ScriptedServer) -> None:
    server.push(Reply.raw((FIXTURES / "tgi_generate.json").read_bytes()),
                Reply.sse(sse_blocks((FIXTURES / "tgi_generate_stream.sse").read_bytes())))
    with HuggingFaceModel("tgi", endpoint=server.url, text_generation=True, environ={}) as model:
        plain = model.chat("What is deep learning?", max_tokens=20)
        with model.stream("What is deep learning?") as s:
            streamed = s.get_response()
    first, second = server.requests
    assert first.path == "/generate"
    assert second.path == "/generate_stream"
    assert first.json["inputs"] == "What is deep learning?"
    assert first.json["parameters"]["max_new_tokens"] == 20
    assert plain.text == streamed.text == " Deep learning is a subset of machine learning."
    assert plain.provider == "huggingface"
    assert plain.finish_reason == "stop"
    assert model.supports_tools is False


def test_tgi_serverless_route_and_no_tools(server: ScriptedServer) -> None:
    server.push(Reply.json([{"generated_text": "hi"}]))
    env = {"HF_TOKEN": "hf_abcdefghijklmnop"}
    model = HuggingFaceModel("gpt2", text_generation=True, environ=env)
    assert model.base_url == "https://router.huggingface.co/hf-inference"
    with HuggingFaceModel("openai-community/gpt2", text_generation=True, endpoint=server.url,
                          environ=env) as local:
        local.chat("x")
        assert server.last.path == "/generate"
        with pytest.raises(InvalidInputError, match="tools"):
            local.chat("x", tools=[CITY])


def test_serverless_text_generation_call_path() -> None:
    from aixpy.llm import ChatRequest, UserMessage
    from aixpy.llm.codecs.hf_tgi import TextGenerationAPI

    call = TextGenerationAPI(serverless=True, wait_for_model=True).chat_call(
        ChatRequest("openai-community/gpt2", [UserMessage("hi")]), stream=True)
    assert call.path == "/models/openai-community/gpt2"
    assert call.json["stream"] is True
    assert call.json["options"] == {"wait_for_model": True}
