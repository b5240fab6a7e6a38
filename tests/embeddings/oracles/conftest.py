"""Fixtures of the embedding wire-oracle tests: a loopback server per test, no internet, no ambient config.

* ``loopback``: a fresh :class:`~tests.embeddings._servers.LoopbackServer` (127.0.0.1, random port).
* Every outgoing connection is checked: anything but loopback fails the test at once (the official SDKs
  must never reach a real vendor).
* Vendor environment variables (keys, base URLs, hosts, proxies) are removed so that every client is
  configured by the test alone.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from tests.embeddings._servers import loopback  # noqa: F401  (the fixture)

_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OLLAMA_HOST",
        "OLLAMA_ALLOWED_HOSTS", "HF_TOKEN", "HUGGINGFACE_API_KEY", "HUGGING_FACE_HUB_TOKEN", "HF_INFERENCE_ENDPOINT",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise AssertionError(f"an oracle test tried to reach {address!r}; only the loopback server is allowed")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
