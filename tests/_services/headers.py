"""What the ``headers:`` and endpoint tests of the LLM and embeddings providers share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aixpy.errors import ConfigError
from tests._services.loopback_http import LoopbackHTTPServer

SECRET = "gw-s3cret-token-value"
HEADERS = {"X-Gateway-Token": SECRET, "X-Tenant": "tenant-7"}
CREDENTIAL_HEADERS = ["Authorization", "x-api-key", "X-Goog-Api-Key", "api-key"]


def assert_refused(build: Callable[[], object], name: str, server: LoopbackHTTPServer) -> None:
    """``build()`` raises a ConfigError naming header ``name`` and ``allow_auth_override``, quoting no
    value, before any request reaches ``server``."""
    with pytest.raises(ConfigError) as info:
        build()
    assert name in str(info.value)
    assert "allow_auth_override" in str(info.value)
    assert "Bearer other" not in str(info.value)
    assert server.take() == []


OPENAI_BASE_CASES = [
    ("", "/v1"),
    ("/", "/v1"),
    ("/v1", "/v1"),
    ("/v1/", "/v1"),
    ("/openai/v1", "/openai/v1"),  # a deliberate prefix is kept as given
    ("/api", "/api"),
    ("/api/", "/api"),
]
"""``(what follows the server's origin in the configured endpoint, the base path requests go under)``:
OpenAI-style base URLs work with or without ``/v1``."""
