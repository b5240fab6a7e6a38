"""An MCP server's URL goes through aixpy's endpoint rules before the SDK connects: no userinfo, no
backslash, the provider endpoints' SSRF policy (loopback/private hosts on http, public ones on https,
metadata addresses always refused). A refused URL never reaches the SDK nor the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from aixpy import agents
from aixpy.agents import mcp
from aixpy.agents.mcp import MCPServer, checked_url
from aixpy.config import load_config_str
from aixpy.errors import BlockedURLError, ConfigError


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket that would see any connection attempt."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.setblocking(False)
        yield s


@pytest.fixture
def no_sdk(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reached: list[str] = []

    def sdk() -> Any:
        reached.append("sdk")
        raise AssertionError("the MCP SDK was reached")

    def transport(url: str, headers: dict[str, str]) -> Any:
        reached.append(url)
        raise AssertionError("the HTTP transport was built")

    monkeypatch.setattr(mcp, "_sdk", sdk)
    monkeypatch.setattr(mcp, "_http_transport", transport)
    return reached


def connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


@pytest.mark.parametrize(("url", "error", "why"), [
    ("http://user:secret@127.0.0.1:{port}/mcp", ConfigError, "credentials"),
    ("http://127.0.0.1:{port}\\@evil.example.com/mcp", ConfigError, "backslash"),
    ("http://169.254.169.254/mcp", BlockedURLError, "scheme 'http'"),
    ("https://169.254.169.254/mcp", BlockedURLError, "cloud metadata address"),
    ("http://metadata.google.internal/mcp", BlockedURLError, "cloud metadata host"),
    ("http://mcp.example.com/mcp", BlockedURLError, "allowed schemes are ['https']"),
    ("ftp://127.0.0.1:{port}/mcp", BlockedURLError, "scheme 'ftp'"),
])
def test_a_refused_url_never_connects(url: str, error: type[Exception], why: str, listener: socket.socket,
                                      no_sdk: list[str]) -> None:
    url = url.format(port=listener.getsockname()[1])
    with pytest.raises(error) as caught:
        agents.Agent("a", "", "test:x", tools=[MCPServer.http(url)])
    assert why in str(caught.value)
    assert "secret" not in str(caught.value)
    assert no_sdk == []
    assert not connected(listener)


def test_a_refused_config_url_fails_when_the_agent_is_built(listener: socket.socket, no_sdk: list[str]) -> None:
    cfg = load_config_str("""\
agents:
  - name: m
    model: test:x
    mcp_servers:
      - url: https://169.254.169.254/mcp
""", "agents.yaml")
    with pytest.raises(BlockedURLError, match="cloud metadata address"):
        agents.new("m", cfg)
    assert no_sdk == []


def test_loopback_private_and_public_https_urls_are_allowed() -> None:
    assert checked_url("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:8000/mcp"
    assert checked_url("http://10.0.0.5:8000/mcp/") == "http://10.0.0.5:8000/mcp"
    assert checked_url("http://mcp-server:8000/mcp") == "http://mcp-server:8000/mcp"      # a container name
    assert checked_url("https://mcp.example.com/mcp") == "https://mcp.example.com/mcp"
    server = MCPServer.http("http://127.0.0.1:1/mcp")
    assert (server.url, server.connected) == ("http://127.0.0.1:1/mcp", False)
