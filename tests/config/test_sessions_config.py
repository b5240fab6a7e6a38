"""The ``sessions:`` block: strict keys per backend, durations, and the Redis password masked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aixpy.config import AixpyConfig, SessionsConfig, load_config_str
from aixpy.errors import ConfigError


def test_absent_block_is_none_and_defaults_are_files() -> None:
    assert AixpyConfig().sessions is None
    assert load_config_str("sessions:\n").sessions is None  # an empty block is an absent one
    cfg = SessionsConfig()
    assert (cfg.backend, cfg.path, cfg.url, cfg.ttl, cfg.max_tokens) == ("file", None, None, None, 8000)


def test_redis_block_parses_and_masks_the_password() -> None:
    cfg = load_config_str("sessions:\n  backend: redis\n  url: ${URL}\n  ttl: 2h\n  max_tokens: 500\n"
                          "  prefix: 'app:s:'\n", env={"URL": "redis://:s3cretPass@cache:6379/1"})
    s = cfg.sessions
    assert s is not None
    assert (s.backend, s.url, s.ttl, s.max_tokens, s.prefix) == (
        "redis", "redis://:s3cretPass@cache:6379/1", timedelta(hours=2), 500, "app:s:")
    for text in (repr(cfg), str(s), cfg.dump_yaml()):
        assert "s3cretPass" not in text
    assert "ttl: 2h" in cfg.dump_yaml()


@pytest.mark.parametrize(("body", "needle"), [
    ("backend: redis", "sessions.url: backend: redis needs url"),
    ("backend: redis\n  url: redis://h\n  path: x", "sessions.path: path applies to backend: file"),
    ("url: redis://h", "sessions.url: url applies to backend: redis"),
    ("ttl: 1h", "sessions.ttl: ttl applies to backend: redis"),
    ("prefix: 'x:'", "sessions.prefix: prefix applies to backend: redis"),
    ("backend: sqlite", "sessions.backend"),
    ("backend: redis\n  url: http://h", "expected a redis URL"),
    ("max_tokens: 0", "sessions.max_tokens"),
    ("ttl_s: 5", "unknown key 'ttl_s'"),
])
def test_mistakes_name_the_key(body: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_str(f"sessions:\n  {body}\n")
    assert needle in str(info.value)
