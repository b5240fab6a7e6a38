"""``embeddings.new`` / ``vectorstores.new`` with a bad dict: a ConfigError naming the key, never quoting secrets."""

from __future__ import annotations

from typing import Any

import pytest

from aixpy import embeddings, vectorstores
from aixpy.errors import ConfigError

SECRET = "s3cr3t-Pa55word"


@pytest.mark.parametrize(("cfg", "where"), [
    ({"provider": "firestore", "pgvector": {"connection_string": f"postgresql://u:{SECRET}@h/db"}},
     "needs a firestore: block"),
    ({"provider": "pgvector", "pgvector": {"connection_string": f"postgresql://u:{SECRET}@h/db",
                                           "pool_min_size": 5, "pool_max_size": 2}}, "pgvector.pool_max_size"),
    ({"provider": "qdrant", "qdrant": {"url": "http://q:6333", "api_key": SECRET, "path": "/tmp/x"}}, "qdrant"),
])
def test_vectorstore_config_errors_never_quote_secrets(cfg: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        vectorstores.new(cfg)
    assert where in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_embeddings_config_errors_never_quote_secrets() -> None:
    with pytest.raises(ConfigError, match=r"openai\.bogus") as info:
        embeddings.new({"provider": "openai", "openai": {"api_key": SECRET, "bogus": 1}})
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError, match="needs a huggingface_tei: block") as info:
        embeddings.new({"provider": "huggingface_tei", "openai": {"api_key": SECRET}})
    assert SECRET not in str(info.value)


def test_durations_in_embeddings_blocks_accept_the_guides_strings() -> None:
    from aixpy.config import EmbeddingsConfig, load_config_str

    cfg = load_config_str("""
embeddings:
  provider: hash
  hash: {dimensions: 384}
  retry: {max_attempts: 3, initial_backoff: 1s, max_backoff: 10s, max_retry_after: 2m}
  cache: {backend: memory, ttl: 1h}
  timeout: 1500ms
""").embeddings
    assert isinstance(cfg, EmbeddingsConfig)
    assert cfg.retry is not None
    assert (cfg.retry.initial_backoff, cfg.retry.max_backoff, cfg.retry.max_retry_after) == (1.0, 10.0, 120.0)
    assert cfg.cache is not None
    assert (cfg.cache.ttl, cfg.timeout) == (3600.0, 1.5)
    assert embeddings.new(cfg).dimensions() == 384
    with pytest.raises(ConfigError, match="initial_backoff"):
        embeddings.new({"provider": "hash", "retry": {"initial_backoff": "soon"}})
    with pytest.raises(ConfigError, match="timeout"):
        vectorstores.new({"provider": "qdrant", "qdrant": {"local": ":memory:", "timeout": "-1s"}})
