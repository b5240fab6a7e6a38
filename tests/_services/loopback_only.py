"""Oracle tests point official vendor SDKs at a loopback server: make sure nothing else is reachable.

:func:`loopback_only` makes every outgoing ``socket.connect`` to a non-loopback address fail the test at
once (an SDK must never reach a real vendor, a metadata server or a model hub) and removes the given
environment variables (keys, base URLs, proxies) so every client is configured by the test alone.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import pytest

__all__ = ["is_loopback", "loopback_only"]

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def loopback_only(monkeypatch: pytest.MonkeyPatch, env: Iterable[str]) -> None:
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        if not is_loopback(address):
            raise AssertionError(f"an oracle test tried to reach {address!r}; only the loopback server is allowed")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in (*env, *PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
