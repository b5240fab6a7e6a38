"""Fixtures of the embedding wire-oracle tests: a loopback server per test, no internet, no ambient config.

* ``loopback``: a fresh :class:`~tests.embeddings._servers.LoopbackServer` (127.0.0.1, random port).
* Every outgoing connection is checked: anything but loopback fails the test at once (the official SDKs
  must never reach a real vendor).
* Vendor environment variables (keys, base URLs, hosts, proxies) are removed so that every client is
  configured by the test alone.
"""

from __future__ import annotations

import pytest

from tests._services.loopback_only import loopback_only
from tests.embeddings._servers import loopback  # noqa: F401  (the fixture)

_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OLLAMA_HOST",
        "OLLAMA_ALLOWED_HOSTS", "HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGING_FACE_HUB_TOKEN", "HF_INFERENCE_ENDPOINT")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch, _ENV)
