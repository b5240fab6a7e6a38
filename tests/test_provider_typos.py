"""Issue 13 item 9: a mistyped provider is an error with a did-you-mean, never an Ollama model.

``antropic:claude-3-5-haiku-latest`` used to be read as the Ollama model ``antropic`` with tag
``claude-3-5-haiku-latest`` (and tried localhost:11434); ``aixpy models --provider antropic`` printed an
empty table and exited 0.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aixpy import llm
from aixpy.config import infer_provider, load_config_str
from aixpy.errors import ConfigError, UnknownProviderError
from aixpy.llm.pricing import PRICES
from aixpy.llm.registry import split_spec

TYPOS = [
    ("antropic:claude-3-5-haiku-latest", "anthropic:claude-3-5-haiku-latest"),
    ("anthorpic:claude-3-haiku", "anthropic:claude-3-haiku"),
    ("opneai:gpt-4o-mini", "openai:gpt-4o-mini"),
    ("openia:gpt-4o", "openai:gpt-4o"),
    ("gemnii:gemini-2.0-flash", "gemini:gemini-2.0-flash"),
    ("ollam:llama3.1:8b", "ollama:llama3.1:8b"),
    ("huggingfce:org/model", "huggingface:org/model"),
    ("claud:claude-3-haiku", "anthropic:claude-3-haiku"),
    # not near any provider name, but the model after ':' is a hosted provider's
    ("acme:claude-3-5-haiku-latest", "anthropic:claude-3-5-haiku-latest"),
    ("mistral:gpt-4o", "openai:gpt-4o"),
    ("x:grok-3", "xai:grok-3"),
    ("foo:o3-mini", "openai:o3-mini"),
    # a bare near miss of a provider name
    ("antropic", "anthropic"),
]

# names from the Ollama library and Hugging Face GGUF repos: all still go to Ollama
OLLAMA = [
    "llama3.1:8b", "llama3.2:1b", "llama3:8b", "llama2:7b", "llama4:scout", "qwen2.5:7b", "qwen3:0.6b",
    "qwen2.5-coder:7b", "gpt-oss:20b", "mistral:7b", "mistral-nemo:12b", "gemma:7b", "gemma2:2b", "gemma3:4b",
    "llava:13b", "phi3:mini", "phi4:14b", "deepseek-r1:8b", "codellama:7b", "nomic-embed-text:latest",
    "mxbai-embed-large:latest", "all-minilm:latest", "olmo2:7b", "openchat:7b", "openhermes:latest",
    "granite3.1-dense:2b", "smollm2:135m", "tinyllama:latest", "orca-mini:3b", "vicuna:7b", "zephyr:7b",
    "neural-chat:7b", "falcon3:7b", "command-r:35b", "aya:8b", "yi:6b", "solar:10.7b", "wizardlm2:7b",
    "llama-guard3:1b", "hermes3:8b", "dolphin-mistral:7b", "nemotron-mini:4b", "moondream:1.8b",
    "minicpm-v:8b", "starcoder2:3b", "exaone3.5:2.4b", "cogito:8b", "magistral:24b", "devstral:24b",
    "hf.co/x/y:Q4", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
    "huggingface.co/TheBloke/Mistral-7B-Instruct-v0.2-GGUF:Q5_K_M", "registry.ollama.ai/library/llama3:8b",
]


@pytest.mark.parametrize(("spec", "fix"), TYPOS)
def test_a_mistyped_provider_is_refused_with_a_did_you_mean(spec: str, fix: str) -> None:
    with pytest.raises(UnknownProviderError) as info:
        split_spec(spec)
    assert f"did you mean '{fix}'?" in str(info.value)
    with pytest.raises(UnknownProviderError):
        llm.new(spec)   # nothing is built, nothing connects to localhost:11434


@pytest.mark.parametrize("spec", OLLAMA)
def test_real_ollama_names_still_go_to_ollama(spec: str) -> None:
    assert split_spec(spec) == ("ollama", spec)
    assert infer_provider(spec) == "ollama"


def test_every_priced_model_is_a_hosted_providers_model() -> None:
    # the check above relies on the detection rules knowing every model the pricing table knows
    for name in PRICES:
        with pytest.raises(UnknownProviderError):
            split_spec(f"acme:{name}")


def test_close_provider_is_strict() -> None:
    from aixpy._model_names import PROVIDERS, close_provider

    assert close_provider("antropic", PROVIDERS) == "anthropic"
    assert close_provider("opneai", PROVIDERS) == "openai"
    for name in ("llama2", "llama3", "gemma", "gemma2", "olmo", "openchat", "xia", "tes", "anthropic"):
        assert close_provider(name, PROVIDERS) is None, name


def test_a_config_model_with_a_mistyped_provider_names_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str("agents:\n  - name: a\n    model: antropic:claude-3-5-haiku-latest\n", "cfg.yaml")
    assert (info.value.path, info.value.line) == ("agents[0].model", 3)
    assert "did you mean 'anthropic:claude-3-5-haiku-latest'?" in str(info.value)
    assert infer_provider("antropic:claude-3-5-haiku-latest") is None


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("AIXPY_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setenv("NO_COLOR", "1")
    return CliRunner()


def test_chat_with_a_mistyped_provider_exits_2_with_one_line(cli: CliRunner, tmp_path: object,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(str(tmp_path))
    from aixpy.cli import app

    res = cli.invoke(app, ["chat", "-m", "antropic:claude-3-5-haiku-latest", "hello"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert lines == ["error: unknown LLM provider 'antropic'; did you mean 'anthropic:claude-3-5-haiku-latest'?"]


@pytest.mark.parametrize(("name", "hint"), [("antropic", "did you mean 'anthropic'?"), ("nosuch", "known: anthropic")])
def test_models_with_an_unknown_provider_exits_2(cli: CliRunner, name: str, hint: str) -> None:
    from aixpy.cli import app

    res = cli.invoke(app, ["models", "--provider", name])
    assert res.exit_code == 2, res.output
    assert hint in res.output
    assert "┏" not in res.output   # no (empty) table


def test_models_with_an_alias_lists_that_providers_models(cli: CliRunner) -> None:
    from aixpy.cli import app

    res = cli.invoke(app, ["models", "--provider", "claude", "--json"])
    assert res.exit_code == 0, res.output
    assert "claude-3-5-haiku" in res.output
    assert "gpt-4o" not in res.output
