"""Every aixpy YAML snippet of the provider integration guide parses, with the values it shows.

The embeddings guide has no aixpy YAML blocks of its own (only Docker Compose files and Go code);
its embedding settings are the ones of the provider guide's ``embeddings:`` snippets tested here.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from aixpy.config import AixpyConfig, EmbeddingsConfig, VectorStoreConfig, load_config, load_config_str


def emb(cfg: AixpyConfig) -> EmbeddingsConfig:
    assert cfg.embeddings is not None
    return cfg.embeddings


def vs(cfg: AixpyConfig) -> VectorStoreConfig:
    assert cfg.vectorstore is not None
    return cfg.vectorstore


GUIDE = Path(__file__).parent / "fixtures" / "guide"

ENV = {
    "OPENAI_API_KEY": "sk-test-openai-0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-test-0123456789",
    "GCP_PROJECT_ID": "my-project",
    "HUGGINGFACE_API_KEY": "hf_test0123456789",
    "XAI_API_KEY": "xai-test0123456789",
}

FULL_FILES = sorted(p.name for p in GUIDE.glob("*.yaml") if not p.name.startswith("fragment_"))
FRAGMENTS = sorted(p.name for p in GUIDE.glob("fragment_*.yaml"))


def load(name: str) -> AixpyConfig:
    return load_config(GUIDE / name, env=ENV)


def test_fixture_set_is_complete() -> None:
    assert len(FULL_FILES) == 20
    assert len(FRAGMENTS) == 2


@pytest.mark.parametrize("name", FULL_FILES)
def test_every_guide_file_parses(name: str) -> None:
    cfg = load(name)
    assert isinstance(cfg, AixpyConfig)
    # Secrets from the environment never show in repr or in the redacted dump.
    for var, secret in ENV.items():
        if var.endswith("_API_KEY"):
            assert secret not in repr(cfg)
            assert secret not in str(cfg)
            assert secret not in cfg.dump_yaml()


@pytest.mark.parametrize("name", FRAGMENTS)
def test_agent_list_fragments_parse_under_agents(name: str) -> None:
    text = (GUIDE / name).read_text()
    cfg = load_config_str("agents:\n" + textwrap.indent(text, "  "), name, env=ENV)
    assert len(cfg.agents) == 2


def test_openai_agent() -> None:
    agent = load("agent_openai.yaml").agent("analyzer")
    assert (agent.role, agent.model, agent.provider) == ("react", "gpt-4-turbo", "openai")
    assert agent.api_key is not None
    assert agent.api_key.get_secret_value() == ENV["OPENAI_API_KEY"]
    assert (agent.temperature, agent.max_tokens) == (0.7, 1000)


def test_anthropic_agent() -> None:
    agent = load("agent_anthropic.yaml").agents[0]
    assert (agent.name, agent.provider, agent.model) == ("analyst", "anthropic", "claude-3-sonnet")
    assert agent.api_key is not None
    assert agent.api_key.get_secret_value() == ENV["ANTHROPIC_API_KEY"]
    assert (agent.temperature, agent.max_tokens) == (0.5, 2000)


def test_vertexai_agent() -> None:
    agent = load("agent_vertexai.yaml").agents[0]
    assert (agent.provider, agent.project_id, agent.location) == ("vertexai", "my-project", "us-central1")
    assert agent.temperature == 0.8


def test_huggingface_agent() -> None:
    agent = load("agent_huggingface.yaml").agents[0]
    assert agent.model == "meta-llama/Llama-2-70b-chat-hf"
    assert agent.endpoint == "https://api-inference.huggingface.co"


def test_xai_agent() -> None:
    agent = load("agent_xai.yaml").agents[0]
    assert (agent.provider, agent.model) == ("xai", "gpt-4-turbo")


def test_ollama_model_service_and_agent() -> None:
    cfg = load("ollama_quickstart.yaml")
    svc = cfg.model_service("phi-local")
    assert svc is not None
    assert (svc.provider, svc.model, svc.runtime, svc.transport) == (
        "huggingface",
        "phi3.5:3.8b-mini-instruct-q4_K_M",
        "ollama",
        "local",
    )
    assert svc.config.address == "http://localhost:11434"
    assert svc.config.quantization == "int4"
    assert svc.config.timeout == timedelta(minutes=5)
    agent = cfg.agent("local-assistant")
    assert agent.model == "phi-local"
    assert agent.provider is None
    assert agent.prompt == "You are a helpful AI assistant running locally."  # strings are stripped


def test_ollama_service_options() -> None:
    svc = load("ollama_options.yaml").model_services[0]
    assert svc.config.timeout == timedelta(seconds=300)
    assert svc.config.quantization == "int4"


def test_hybrid_fallback_providers() -> None:
    agent = load("hybrid_fallback.yaml").agents[0]
    assert agent.fallback_strategy == "cascade"
    assert agent.providers is not None
    assert [(p.model, p.provider) for p in agent.providers] == [
        ("phi-local", "huggingface"),
        ("gpt-4-turbo", "openai"),
        ("claude-3-haiku", "anthropic"),
    ]
    assert agent.providers[0].runtime == "ollama"
    assert agent.providers[1].api_key is not None
    assert agent.providers[1].api_key.get_secret_value() == ENV["OPENAI_API_KEY"]
    assert agent.provider_entries == agent.providers


def test_fallback_configuration() -> None:
    agent = load("fallback_configuration.yaml").agents[0]
    assert agent.providers is not None
    assert [p.provider for p in agent.providers] == ["openai", "anthropic", "vertexai"]
    assert agent.providers[2].project_id == "my-project"


def test_retry_block() -> None:
    retry = load("retry.yaml").agents[0].retry
    assert retry is not None
    assert retry.max_attempts == 3
    assert retry.initial_backoff == timedelta(seconds=1)
    assert retry.max_backoff == timedelta(seconds=10)
    assert retry.multiplier == 2.0
    assert retry.retry_on == ["rate_limit", "timeout", "server_error"]


def test_timeout_with_inferred_provider() -> None:
    agent = load("timeout.yaml").agents[0]
    assert agent.timeout == timedelta(seconds=60)
    assert agent.provider is None  # gpt-4-turbo: the provider is told by the name
    assert agent.provider_entries[0].timeout == timedelta(seconds=60)


def test_observability_blocks() -> None:
    cost = load("observability_cost.yaml").observability
    assert cost.cost_tracking is True
    assert cost.cost_alert_threshold == 100.0
    tokens = load("observability_tokens.yaml").observability.llm_observability
    assert (tokens.enabled, tokens.track_tokens, tokens.daily_token_limit) == (True, True, 1_000_000)


def test_embeddings_blocks() -> None:
    openai = emb(load("embeddings_openai.yaml"))
    assert openai.provider == "openai"
    assert openai.openai is not None
    assert openai.openai.model == "text-embedding-3-small"
    assert openai.openai.api_key is not None
    hf = emb(load("embeddings_huggingface.yaml")).huggingface
    assert hf is not None
    assert hf.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert hf.wait_for_model
    assert hf.use_cache
    tei = emb(load("embeddings_tei.yaml")).huggingface_tei
    assert tei is not None
    assert (tei.endpoint, tei.model, tei.normalize) == ("http://localhost:8080", "BAAI/bge-large-en-v1.5", True)


def test_vectorstore_blocks() -> None:
    fs = vs(load("vectorstore_firestore.yaml"))
    assert fs.provider == "firestore"
    assert fs.embedding_dimensions == 384
    assert fs.firestore is not None
    assert (fs.firestore.project_id, fs.firestore.collection) == ("my-project", "embeddings")
    assert fs.firestore.credentials_file == "/path/to/key.json"
    mem = vs(load("vectorstore_memory.yaml"))
    assert mem.memory is not None
    assert mem.memory.max_documents == 10000
    qd = vs(load("vectorstore_qdrant.yaml"))
    assert qd.qdrant is not None
    assert (qd.qdrant.host, qd.qdrant.port, qd.qdrant.collection) == ("localhost", 6333, "knowledge_base")
    pg = vs(load("vectorstore_pgvector.yaml"))
    assert pg.pgvector is not None
    assert pg.pgvector.table == "embeddings"
    assert pg.pgvector.connection_string.get_secret_value() == "postgresql://user:pass@localhost/db"


def test_all_guide_blocks_in_one_file() -> None:
    """The snippets combine into one config file (one block of each kind)."""
    names = ["ollama_quickstart.yaml", "observability_cost.yaml", "embeddings_tei.yaml", "vectorstore_memory.yaml"]
    text = "\n".join((GUIDE / n).read_text() for n in names)
    cfg = load_config_str(text, env=ENV)
    assert cfg.agents[0].name == "local-assistant"
    assert emb(cfg).provider == "huggingface_tei"
    assert vs(cfg).provider == "memory"
    assert cfg.observability.cost_tracking


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "aixpy.yaml"
    path.write_text("# nothing configured yet\n")
    cfg = load_config(path)
    assert cfg == AixpyConfig()
    assert cfg.embeddings is None  # absent blocks: the caller picks its default
    assert cfg.vectorstore is None
    assert cfg.agents == []
    assert cfg.model_services == []


def test_empty_blocks_are_like_absent_blocks() -> None:
    cfg = load_config_str("agents:\nmodel_services:\nembeddings:\nvectorstore:\nobservability:\n")
    assert cfg == AixpyConfig()
