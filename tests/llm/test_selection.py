"""Provider selection: detection table, ``provider:model`` strings, configs (agents, cascades, retry,
timeout, model services), the registry and entry points, and a cheap ``import aixpy.llm``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy._registry import Registry
from aixpy.config import AgentConfig, ModelServiceConfig, ProviderEntry, load_config
from aixpy.errors import ConfigError, InvalidInputError, UnknownModelError, UnknownProviderError
from aixpy.llm import FallbackModel, ProviderSettings, RetryModel, TestModel, detect_provider, new, register
from aixpy.llm import registry as registry_module
from aixpy.llm.providers.anthropic import AnthropicModel
from aixpy.llm.providers.gemini import GeminiModel
from aixpy.llm.providers.huggingface import HuggingFaceModel
from aixpy.llm.providers.ollama import OllamaModel
from aixpy.llm.providers.openai import OpenAIModel
from aixpy.llm.providers.openai_compatible import OpenAICompatibleModel
from aixpy.llm.providers.vertexai import VertexAIModel
from aixpy.llm.providers.xai import XAIModel

GUIDE = Path(__file__).parent.parent / "config" / "fixtures" / "guide"
ENV = {"OPENAI_API_KEY": "sk-test-openai-0123456789", "ANTHROPIC_API_KEY": "sk-ant-test-0123456789",
       "GCP_PROJECT_ID": "my-project", "HUGGINGFACE_API_KEY": "hf_test0123456789",
       "XAI_API_KEY": "xai-test0123456789", "GEMINI_API_KEY": "AIza-test-0123456789"}
TOKENS = {"token_provider": lambda: "ya29.test"}


@pytest.mark.parametrize(("model", "provider"), [
    ("gpt-4o", "openai"), ("gpt-4-turbo", "openai"), ("gpt-3.5-turbo", "openai"), ("chatgpt-4o-latest", "openai"),
    ("o1", "openai"), ("o1-mini", "openai"), ("o3", "openai"), ("o3-mini", "openai"), ("o4-mini", "openai"),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "openai"), ("GPT-5", "openai"),
    ("claude-3-5-sonnet-20241022", "anthropic"), ("claude-opus-4-5", "anthropic"),
    ("gemini-2.5-flash", "gemini"), ("gemini-1.5-pro", "gemini"),
    ("grok-4", "xai"), ("grok-3-mini", "xai"),
    ("meta-llama/Llama-3.1-8B-Instruct", "huggingface"), ("mistralai/Mixtral-8x7B-Instruct-v0.1", "huggingface"),
    ("openai/gpt-oss-120b:cerebras", "huggingface"),  # the router's provider suffix
    ("llama3.1:8b", "ollama"), ("phi3.5:3.8b-mini-instruct-q4_K_M", "ollama"), ("gpt-oss:20b", "ollama"),
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "ollama"),
])
def test_detection_table(model: str, provider: str) -> None:
    assert detect_provider(model, environ={}) == provider


@pytest.mark.parametrize("model", ["mistral-large", "llama3", "o1x", "omni", "my-model", "text-bison"])
def test_unknown_names_are_a_clear_error_never_openai(model: str) -> None:
    with pytest.raises(UnknownModelError, match="provider:model"):
        detect_provider(model, environ={})


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "gemini"),
    ({"GEMINI_API_KEY": "k"}, "gemini"),
    ({"GOOGLE_CLOUD_PROJECT": "p"}, "vertexai"),
    ({"GCP_PROJECT_ID": "p", "GOOGLE_API_KEY": "k"}, "gemini"),
    ({"GOOGLE_GENAI_USE_VERTEXAI": "true", "GEMINI_API_KEY": "k"}, "vertexai"),
])
def test_gemini_goes_to_vertex_when_vertex_is_configured(env: dict[str, str], expected: str) -> None:
    assert detect_provider("gemini-2.5-pro", environ=env) == expected
    assert detect_provider("gemini-2.5-pro", vertex=True, environ={}) == "vertexai"


@pytest.mark.parametrize(("spec", "cls", "model"), [
    ("openai:gpt-4o", OpenAIModel, "gpt-4o"),
    ("OpenAI:gpt-4.1", OpenAIModel, "gpt-4.1"),
    ("gpt-4o-mini", OpenAIModel, "gpt-4o-mini"),
    ("openai", OpenAIModel, "gpt-4o-mini"),
    ("anthropic:claude-haiku-4-5", AnthropicModel, "claude-haiku-4-5"),
    ("claude-sonnet-4-5", AnthropicModel, "claude-sonnet-4-5"),
    ("gemini:gemini-2.5-pro", GeminiModel, "gemini-2.5-pro"),
    ("google:gemini-2.5-pro", GeminiModel, "gemini-2.5-pro"),
    ("xai", XAIModel, XAIModel(environ=ENV).model),
    ("grok-3", XAIModel, "grok-3"),
    ("hf:meta-llama/Llama-3.1-8B-Instruct", HuggingFaceModel, "meta-llama/Llama-3.1-8B-Instruct"),
    ("meta-llama/Llama-3.1-8B-Instruct", HuggingFaceModel, "meta-llama/Llama-3.1-8B-Instruct"),
    ("ollama:llama3.1:8b", OllamaModel, "llama3.1:8b"),
    ("llama3.1:8b", OllamaModel, "llama3.1:8b"),
    ("test:anything", TestModel, "anything"),
])
def test_new_from_strings(spec: str, cls: type[Any], model: str) -> None:
    built = new(spec, environ=ENV)
    assert isinstance(built, cls)
    assert built.model == model
    built.close()


def test_new_vertex_and_compatible_from_strings() -> None:
    vertex = new("vertex:gemini-2.5-flash", environ=ENV, options=TOKENS)
    assert isinstance(vertex, VertexAIModel)
    assert vertex.project_id == "my-project"
    compat = new("openai_compatible:qwen2.5", endpoint="http://localhost:8000/v1", timeout=12)
    assert isinstance(compat, OpenAICompatibleModel)
    assert compat.timeout == 12
    assert compat.request_timeout == 12
    with pytest.raises(ConfigError, match="endpoint"):
        new("vllm:qwen2.5")


def test_new_rejects_what_it_cannot_use() -> None:
    with pytest.raises(UnknownModelError):
        new("mistral-large", environ=ENV)
    with pytest.raises(InvalidInputError, match="unknown setting"):
        new("test", bogus=1)
    with pytest.raises(InvalidInputError):
        new(42)
    with pytest.raises(UnknownProviderError):
        llm.registry.create("nope")
    model = TestModel()
    assert new(model) is model


def test_settings_repr_hides_the_key() -> None:
    settings = ProviderSettings(model="m", api_key="sk-secret-0123456789")
    assert "sk-secret" not in repr(settings)


# --------------------------------------------------------------------------- configs


def test_agent_single_model_carries_defaults_and_timeout() -> None:
    agent = AgentConfig(name="a", model="gpt-4-turbo", provider="openai", temperature=0.7, max_tokens=1000,
                        timeout="45s")  # type: ignore[arg-type]
    model = new(agent, environ=ENV)
    assert isinstance(model, OpenAIModel)
    assert (model.temperature, model.max_tokens, model.timeout, model.request_timeout) == (0.7, 1000, 45.0, 45.0)


def test_agent_cascade_and_retry_from_the_guide() -> None:
    cfg = load_config(GUIDE / "fallback_configuration.yaml", env=ENV)
    model = new(cfg.agent("resilient-analyzer"), environ=ENV, options=TOKENS)
    assert isinstance(model, FallbackModel)
    assert [(m.provider, m.model) for m in model.models] == [
        ("openai", "gpt-4-turbo"), ("anthropic", "claude-3-sonnet"), ("vertexai", "gemini-1.5-flash")]
    retry_cfg = load_config(GUIDE / "retry.yaml", env=ENV)
    retried = new(retry_cfg.agent("resilient-agent"), environ=ENV)
    assert isinstance(retried, RetryModel)
    assert isinstance(retried.inner, OpenAIModel)
    assert (retried.policy.max_attempts, retried.policy.max_backoff) == (3, 10.0)
    assert set(retried.policy.retry_on) == {"rate_limit", "timeout", "server_error"}


@pytest.mark.parametrize("name", sorted(p.name for p in GUIDE.glob("agent_*.yaml")))
def test_every_guide_agent_builds(name: str) -> None:
    cfg = load_config(GUIDE / name, env=ENV)
    for agent in cfg.agents:
        model = new(agent, services=cfg, environ=ENV, options=TOKENS)
        assert model.provider == agent.provider
        assert model.model == agent.model
        assert "0123456789" not in repr(model)


def test_guide_huggingface_legacy_endpoint_and_vertex_location() -> None:
    hf = new(load_config(GUIDE / "agent_huggingface.yaml", env=ENV).agents[0], environ=ENV)
    assert isinstance(hf, HuggingFaceModel)
    assert hf.base_url == "https://router.huggingface.co/v1"
    vx = new(load_config(GUIDE / "agent_vertexai.yaml", env=ENV).agents[0], environ=ENV, options=TOKENS)
    assert isinstance(vx, VertexAIModel)
    assert (vx.project_id, vx.location) == ("my-project", "us-central1")
    assert vx.temperature == 0.8


def test_model_service_reference_builds_an_ollama_model() -> None:
    cfg = load_config(GUIDE / "ollama_quickstart.yaml", env=ENV)
    model = new(cfg.agent("local-assistant"), services=cfg, environ={})
    assert isinstance(model, OllamaModel)
    assert model.model == "phi3.5:3.8b-mini-instruct-q4_K_M"
    assert model.base_url == "http://localhost:11434"
    assert (model.temperature, model.max_tokens) == (0.7, 1000)
    by_name = new("phi-local", services=cfg.model_services, environ={})
    assert isinstance(by_name, OllamaModel)
    assert by_name.request_timeout == 300.0


def test_hybrid_fallback_local_first_then_cloud() -> None:
    services = [ModelServiceConfig(name="phi-local", model="phi3.5:3.8b", runtime="ollama",
                                   config={"address": "http://ollama:11434"})]  # type: ignore[arg-type]
    cfg = load_config(GUIDE / "hybrid_fallback.yaml", env=ENV)
    model = new(cfg.agents[0], services=services, environ=ENV)
    assert isinstance(model, FallbackModel)
    assert [m.provider for m in model.models] == ["ollama", "openai", "anthropic"]
    assert model.models[0].model == "phi3.5:3.8b"


def test_vllm_service_and_provider_entry() -> None:
    svc = ModelServiceConfig(name="v", model="Qwen/Qwen2.5-7B", runtime="vllm",
                             config={"address": "http://vllm:8000"})  # type: ignore[arg-type]
    model = new(svc)
    assert isinstance(model, OpenAICompatibleModel)
    assert model.base_url == "http://vllm:8000/v1"
    entry = ProviderEntry(model="claude-3-haiku", api_key="sk-ant-0123456789")  # type: ignore[arg-type]
    assert isinstance(new(entry, environ={}), AnthropicModel)
    gem = ProviderEntry(model="gemini-2.5-flash", project_id="p")
    assert isinstance(new(gem, environ={}, options=TOKENS), VertexAIModel)
    assert isinstance(new({"model": "test:x"}), TestModel)
    assert isinstance(new({"name": "a", "providers": [{"model": "test:a"}, {"model": "test:b"}]}), FallbackModel)


# --------------------------------------------------------------------------- registry


def fresh_registry() -> Registry[Any]:
    return Registry("LLM", "aixpy.llm", registry_module._BUILTINS, registry_module._ALIASES)


def test_register_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_REGISTRY", fresh_registry())
    register("mine", lambda s: TestModel("from mine", model=s.model or "default", provider="mine"))
    model = new("mine:m1")
    assert model.provider == "mine"
    assert model.chat("x").text == "from mine"
    with pytest.raises(InvalidInputError, match="already registered"):
        register("mine", lambda s: TestModel())
    register("mine", "aixpy.llm.testing:create", replace=True)
    assert isinstance(new("mine"), TestModel)
    assert "mine" in llm.provider_names()
    with pytest.raises(InvalidInputError):
        register("Bad Name!", lambda s: TestModel())


def test_entry_points_are_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    class EP:
        name, value = "plugged", "aixpy.llm.testing:create"

    monkeypatch.setattr(registry_module, "_REGISTRY", fresh_registry())
    monkeypatch.setattr(metadata, "entry_points", lambda group: [EP()] if group == "aixpy.llm" else [])
    assert isinstance(new("plugged:x"), TestModel)
    assert "plugged" in llm.provider_names()


def test_builtins_register_by_import_path() -> None:
    assert set(registry_module._BUILTINS) == {"openai", "anthropic", "gemini", "vertexai", "xai", "huggingface",
                                              "ollama", "openai_compatible", "test"}
    assert all(isinstance(v, str) and ":" in v for v in registry_module._BUILTINS.values())


# --------------------------------------------------------------------------- public surface and import cost


def test_public_api_is_curated_and_resolvable() -> None:
    assert llm.__all__ == sorted(llm.__all__, key=lambda n: (not n.isupper(), n))
    for name in llm.__all__:
        assert getattr(llm, name) is not None
    with pytest.raises(AttributeError):
        llm.nope  # noqa: B018


def test_import_is_lazy_and_cheap() -> None:
    """``import aixpy.llm`` pulls no HTTP stack, no pydantic, no types; best of 3 cold runs < 150 ms."""
    code = ("import json, sys, time; t = time.perf_counter(); import aixpy.llm; dt = time.perf_counter() - t; "
            "heavy = [m for m in ('httpx', 'pydantic', 'anyio', 'aixpy.http', 'aixpy.llm.types') if m in sys.modules]; "
            "print(json.dumps([heavy, dt]))")
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout) for _ in range(3)]
    assert all(heavy == [] for heavy, _ in runs)
    assert min(dt for _, dt in runs) < 0.15


def test_string_specs_do_not_need_the_config_package() -> None:
    code = "import sys, aixpy.llm as l; l.new('test').chat('x'); print('aixpy.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_settings_with_a_config_spec_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="string specs only"):
        new(ProviderEntry(model="test:x"), api_key="sk-0123456789")
