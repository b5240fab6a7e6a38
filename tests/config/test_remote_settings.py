"""``endpoint`` (alias ``base_url``), ``headers:`` and ``allow_auth_override`` in config files.

Header values may use ``${VAR}``; they are secrets in ``repr``, ``str``, ``redacted_dict`` and
``dump_yaml``; a bad header is an error naming the file, the line and the header, never its value.
"""

from __future__ import annotations

import pytest

from aixpy.config import load_config_str
from aixpy.errors import ConfigError

SECRET = "tok-9f8e7d6c5b4a"

FILE = """\
agents:
  - name: gw
    providers:
      - model: my-model
        provider: vllm
        base_url: http://127.0.0.1:8000
        headers:
          X-Gateway-Token: ${GW_TOKEN}
          X-Tenant: team-a
model_services:
  - name: local
    model: llama3.2
    config:
      endpoint: http://127.0.0.1:11434
embeddings:
  provider: ollama
  ollama:
    base_url: http://127.0.0.1:11434
    headers: {X-Gateway-Token: "${GW_TOKEN}"}
  fallback:
    - provider: huggingface_tei
      huggingface_tei:
        base_url: http://127.0.0.1:8080
        headers: {X-Gateway-Token: "${GW_TOKEN}"}
"""


def test_aliases_headers_and_secrets() -> None:
    cfg = load_config_str(FILE, env={"GW_TOKEN": SECRET})
    entry = cfg.agents[0].provider_entries[0]
    assert entry.provider == "openai_compatible"
    assert entry.endpoint == "http://127.0.0.1:8000"
    assert entry.headers is not None
    assert entry.headers["X-Gateway-Token"].get_secret_value() == SECRET
    assert cfg.model_services[0].config.address == "http://127.0.0.1:11434"
    assert cfg.embeddings is not None
    assert cfg.embeddings.ollama is not None
    assert cfg.embeddings.ollama.endpoint == "http://127.0.0.1:11434"
    tei = cfg.embeddings.fallback[0].huggingface_tei
    assert tei is not None
    assert tei.endpoint == "http://127.0.0.1:8080"
    for shown in (repr(cfg), str(cfg), str(cfg.redacted_dict()), cfg.dump_yaml()):
        assert SECRET not in shown
        assert "team-a" not in shown  # every header value is treated as a secret


@pytest.mark.parametrize(("block", "line", "words"), [
    ("    headers:\n      Authorization: Bearer ${GW_TOKEN}\n", 7, ["Authorization", "allow_auth_override"]),
    ("    headers:\n      X-A: \"a\\r\\nX-Injected: ${GW_TOKEN}\"\n", 7, ["X-A", "control character"]),
    ("    headers:\n      Bad Name: v\n", 7, ["Bad Name", "header name"]),
    ("    endpoint: http://127.0.0.1:1\n", 5, ["endpoint", "base_url"]),
])
def test_errors_name_file_line_and_header_never_the_value(block: str, line: int, words: list[str]) -> None:
    text = ("agents:\n  - name: a\n    model: gpt-4o-mini\n    provider: openai\n"
            "    base_url: http://127.0.0.1:8000/v1\n" + block)
    with pytest.raises(ConfigError) as info:
        load_config_str(text, "agents.yaml", env={"GW_TOKEN": SECRET})
    message = str(info.value)
    assert "agents.yaml" in message
    assert info.value.line == line
    for word in words:
        assert word in message
    assert SECRET not in message


def test_allow_auth_override_accepts_a_credential_header() -> None:
    text = ("agents:\n  - name: a\n    model: gpt-4o-mini\n    provider: openai\n    allow_auth_override: true\n"
            "    headers: {Authorization: \"Bearer ${GW_TOKEN}\"}\n")
    cfg = load_config_str(text, env={"GW_TOKEN": SECRET})
    headers = cfg.agents[0].provider_entries[0].headers
    assert headers is not None
    assert headers["Authorization"].get_secret_value() == f"Bearer {SECRET}"
    assert SECRET not in repr(cfg)


def test_headers_cannot_sit_next_to_providers() -> None:
    text = ("agents:\n  - name: a\n    headers: {X-A: b}\n    providers:\n      - model: gpt-4o-mini\n"
            "        provider: openai\n")
    with pytest.raises(ConfigError) as info:
        load_config_str(text)
    assert "headers" in str(info.value)
    assert "providers" in str(info.value)
