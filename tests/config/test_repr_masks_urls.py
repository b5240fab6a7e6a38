"""Issue 13 item 3: a password inside a URL never shows in ``repr``/``str`` of any config model.

Every config model class is walked; every string field (lists and dicts of strings included) that
accepts a URL is given one with a password, and the password must appear in neither ``repr`` nor
``str`` of the model nor of an :class:`AixpyConfig` holding it.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from aixpy.config import AixpyConfig, load_config_str

PASSWORD = "Pa55w0rdSecretValue"
URL = f"https://user:{PASSWORD}@db.example.com:6333/path"
MODULES = ("aixpy.config._base", "aixpy.config.embeddings", "aixpy.config.stores", "aixpy.config.llm",
           "aixpy.config.models", "aixpy.config.serve", "aixpy.config.sessions")

# the fewest keys that make each model valid; the test fails for a model missing here
MINIMAL: dict[str, dict[str, Any]] = {
    "AgentConfig": {"name": "a", "model": "gpt-4o"},
    "AgentInput": {"source": "s"},
    "AgentOutput": {"target": "t"},
    "AixpyConfig": {},
    "EmbeddingsCacheConfig": {},
    "EmbeddingsConfig": {},
    "EmbeddingsRateLimitConfig": {},
    "EmbeddingsRetryConfig": {},
    "FirestoreStoreConfig": {"project_id": "p"},
    "HashEmbeddingsConfig": {},
    "HuggingFaceEmbeddingsConfig": {"model": "org/m"},
    "LLMCacheConfig": {},
    "LLMObservabilityConfig": {},
    "LLMRateLimitConfig": {"requests_per_minute": 60},
    "LedgerConfig": {},
    "LocalEmbeddingsConfig": {},
    "MCPServerConfig": {"url": "https://mcp.example/mcp"},
    "MemoryStoreConfig": {},
    "MetricsConfig": {},
    "OTelConfig": {"service_name": "svc"},
    "ModelServiceConfig": {"name": "svc", "model": "org/m"},
    "ModelServiceOptions": {},
    "ObservabilityConfig": {},
    "OllamaEmbeddingsConfig": {},
    "OpenAIEmbeddingsConfig": {},
    "PgvectorStoreConfig": {"connection_string": "postgresql://u@h/db"},
    "ProviderEntry": {"model": "gpt-4o"},
    "QdrantStoreConfig": {},
    "RetrievalConfig": {},
    "RetryConfig": {},
    "ServeConfig": {},
    "ServeKeyConfig": {"name": "k", "sha256": "0" * 64},
    "SessionsConfig": {"backend": "redis", "url": "redis://localhost:6379/0"},
    "TEIEmbeddingsConfig": {"endpoint": "http://tei:8080"},
    "ToolConfig": {"name": "t"},
    "VectorStoreConfig": {},
}


def config_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__.startswith("aixpy.config")
                    and not attr.startswith("_") and obj.__name__ not in ("StrictModel", "RemoteSettings")):  # bases
                found[obj.__name__] = obj
    return [found[k] for k in sorted(found)]


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(a, target) for a in typing.get_args(annotation))


REDIS_URL = URL.replace("https://", "redis://", 1)  # fields that take only a Redis URL


def url_values(annotation: Any) -> list[Any]:
    """The shapes a URL can take in a field of this annotation (str, list of str, dict of str)."""
    out: list[Any] = []
    if _mentions(annotation, SecretStr):
        return out  # SecretStr is masked whole; covered by test_secrets
    if _mentions(annotation, str):
        out += [URL, REDIS_URL]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) or any(typing.get_origin(a) in (list, tuple) for a in args):
        out.append([URL])
    if origin is dict or any(typing.get_origin(a) is dict for a in args):
        out.append({"url": URL})
    return out


def test_every_config_model_is_covered() -> None:
    names = {m.__name__ for m in config_models()}
    assert names == set(MINIMAL), "add the new config model to MINIMAL"


def _assert_masked(obj: Any, where: str) -> None:
    assert PASSWORD not in repr(obj), where
    assert PASSWORD not in str(obj), where


@pytest.mark.parametrize("model", config_models(), ids=lambda m: m.__name__)
def test_url_passwords_are_masked_in_repr_and_str(model: type[BaseModel]) -> None:
    tried = 0
    for field_name, info in model.model_fields.items():
        for value in url_values(info.annotation):
            data = {**MINIMAL[model.__name__], (info.alias or field_name): value}
            try:
                built = model.model_validate(data)
            except ValidationError:
                continue  # the field does not take a URL (a name pattern, a path that must start with /)
            tried += 1
            _assert_masked(built, f"{model.__name__}.{field_name}={value!r}")
            # the password is still there as data
            assert PASSWORD in built.model_dump_json()
    if any(_mentions(i.annotation, str) for i in model.model_fields.values()):
        assert tried, f"no string field of {model.__name__} took a URL"


def test_the_issues_examples_in_a_loaded_file() -> None:
    env = {"SECRET": PASSWORD}
    text = """
embeddings:
  provider: openai
  openai: {base_url: "https://u:${SECRET}@gw.example/v1", api_key: k}
  huggingface_tei: {endpoint: ["https://u:${SECRET}@tei-1", "http://tei-2"]}
  huggingface: {model: org/m, endpoint: "https://u:${SECRET}@hf.example/models/org/m"}
  ollama: {base_url: "http://u:${SECRET}@ollama:11434"}
vectorstore:
  provider: qdrant
  qdrant: {url: "https://u:${SECRET}@host"}
  firestore: {project_id: p, emulator_host: "http://u:${SECRET}@emu:8080"}
"""
    cfg = load_config_str(text, env=env)
    assert isinstance(cfg, AixpyConfig)
    _assert_masked(cfg, "whole config")
    assert cfg.embeddings is not None
    assert cfg.vectorstore is not None
    for block in (cfg.embeddings.openai, cfg.embeddings.huggingface_tei, cfg.embeddings.huggingface,
                  cfg.embeddings.ollama, cfg.vectorstore.qdrant, cfg.vectorstore.firestore):
        _assert_masked(block, type(block).__name__)
    assert "u:***@host" in repr(cfg.vectorstore.qdrant)   # still says which URL it is
    assert PASSWORD not in cfg.dump_yaml()


def test_a_password_containing_at_and_a_bare_userinfo_url_are_masked() -> None:
    from aixpy.config import QdrantStoreConfig

    tricky = QdrantStoreConfig(url=f"https://user:{PASSWORD}@x@host:6333")
    assert PASSWORD not in repr(tricky)
    assert "@x@" not in repr(tricky)


def test_the_redacted_dump_masks_a_password_containing_at() -> None:
    cfg = load_config_str("vectorstore:\n  provider: qdrant\n  qdrant: {url: '${U}'}\n",
                          env={"U": f"https://user:{PASSWORD}@x@host:6333"})
    assert PASSWORD not in cfg.dump_yaml()
    assert "@x@" not in cfg.dump_yaml()
