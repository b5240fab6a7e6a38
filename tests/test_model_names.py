"""aixpy._model_names: the provider names and detection rules shared by config validation and aixpy.llm."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from typing import Any

import pytest

import aixpy.llm as llm
from aixpy import _model_names
from aixpy._registry import Registry
from aixpy.config import infer_provider, parse_config
from aixpy.errors import ConfigError, UnknownModelError
from aixpy.llm import registry


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Registry[Any]:
    """The shared name table, restored after the test (names registered in it, plugins read)."""
    table = _model_names.PROVIDERS
    monkeypatch.setattr(table, "_entries", dict(table._entries))
    monkeypatch.setattr(table, "_plugins_read", False)
    return table


def agent(model: str) -> dict[str, object]:
    return {"agents": [{"name": "a", "model": model}]}


def test_llm_registry_and_config_read_one_table() -> None:
    assert registry._REGISTRY is _model_names.PROVIDERS
    assert registry._BUILTINS is _model_names.BUILTINS


@pytest.mark.usefixtures("providers")
def test_a_name_registered_through_llm_is_seen_by_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "entry_points", lambda group: [])
    assert infer_provider("acme:large") == "ollama"            # unknown head: an Ollama name:tag, as before
    parse_config(agent("acme:large"))                          # accepted either way
    llm.register("acme", "aixpy.llm.testing:create")
    assert infer_provider("acme:large") == "acme"
    assert infer_provider("ACME:large") == "acme"
    assert registry.split_spec("acme:large") == ("acme", "large")
    parse_config(agent("acme:large"))


@pytest.mark.usefixtures("providers")
def test_an_entry_point_provider_is_seen_by_config(monkeypatch: pytest.MonkeyPatch) -> None:
    class EP:
        name, value = "plugged", "aixpy.llm.testing:create"

    monkeypatch.setattr(metadata, "entry_points", lambda group: [EP()] if group == "aixpy.llm" else [])
    assert infer_provider("plugged:x") == "plugged"
    assert "plugged" in llm.provider_names()


def test_aliases_and_bare_provider_names() -> None:
    assert infer_provider("claude:claude-3-haiku") == "anthropic"
    assert infer_provider("vllm:my-model") == "openai_compatible"
    assert registry.split_spec("openai") == ("openai", None)
    assert registry.split_spec(" hf:meta-llama/Llama-3.1-8B ") == ("huggingface", "meta-llama/Llama-3.1-8B")
    assert _model_names.split("phi-local", _model_names.PROVIDERS) == (None, "phi-local")


def test_unknown_names_keep_their_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "provider_names", lambda: ["anthropic", "openai"])
    expected = ("cannot tell which provider serves model 'phi-local'; write it as 'provider:model' (providers: "
                "anthropic, openai) or set 'provider:' in the config")
    for call in (lambda: llm.detect_provider("phi-local"), lambda: registry.split_spec("  phi-local ")):
        with pytest.raises(UnknownModelError) as err:
            call()
        assert str(err.value) == expected
    assert infer_provider("phi-local") is None
    with pytest.raises(ConfigError, match="its provider cannot be told from its name"):
        parse_config(agent("phi-local"))


def test_gemini_detection_follows_the_environment() -> None:
    assert _model_names.detect("gemini-2.5-pro", environ={"GOOGLE_CLOUD_PROJECT": "p"}) == "vertexai"
    assert _model_names.detect("gemini-2.5-pro", vertex=False, environ={"GOOGLE_CLOUD_PROJECT": "p"}) == "gemini"
    assert infer_provider("gemini-2.5-pro") == "gemini"        # config never guesses Vertex from the environment


def test_config_validation_does_not_import_the_llm_layer() -> None:
    code = ("import sys; from aixpy.config import parse_config, infer_provider; "
            "parse_config({'agents': [{'name': 'a', 'model': 'gpt-4o'}, {'name': 'b', 'model': 'x:y'}]}); "
            "print(infer_provider('claude-3'), [m for m in sys.modules if m.startswith('aixpy.llm')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "anthropic []"
