"""Tools from a REAL MCP server (``tests/agents/mcp_server.py``, built with the official SDK), over stdio
and over streamable HTTP on a loopback port, called by an agent whose model is scripted."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aixpy.agents import Agent
from aixpy.agents.mcp import MCPServer
from aixpy.config import load_config_str
from aixpy.errors import ProviderConnectionError
from aixpy.llm.testing import TestModel
from tests.agents._scripts import calls

SERVER = str(Path(__file__).with_name("mcp_server.py"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, SERVER, "http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP HTTP server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def stdio_server(**kw: object) -> MCPServer:
    return MCPServer.stdio(sys.executable, SERVER, "stdio", **kw)  # type: ignore[arg-type]


def script() -> TestModel:
    return TestModel(calls(("c1", "add", {"a": 2, "b": 3}), ("c2", "shout", {"text": "hi"})),
                     calls(("c3", "fail", {"reason": "testing"}), ("c4", "add", {"a": "x"})),
                     "done")


def check_run(agent: Agent[None], model: TestModel, result: object) -> None:
    steps = result.steps  # type: ignore[attr-defined]
    first = {r.call.name: r for r in steps[0].tool_results}
    assert first["add"].value == {"result": 5}
    assert not first["add"].is_error
    assert first["shout"].value == {"result": "HI"}
    second = {r.call.name: r for r in steps[1].tool_results}
    assert second["fail"].is_error
    assert "failed on purpose: testing" in second["fail"].content
    assert second["add"].is_error
    assert "invalid arguments for tool 'add'" in second["add"].content
    assert result.text == "done"  # type: ignore[attr-defined]
    # the server's schemas went to the model as the tools' parameters
    specs = {t.name: t for t in model.requests[0].tools}
    assert sorted(specs) == ["add", "fail", "shout"]
    assert specs["add"].parameters["required"] == ["a", "b"]
    assert specs["add"].parameters["properties"]["a"]["type"] == "integer"
    assert specs["shout"].description == "The text in capitals."


def test_stdio_server_tools_run_sync_and_close() -> None:
    server = stdio_server()
    model = script()
    with Agent("m", "", model, tools=[server]) as agent:
        assert server.connected
        check_run(agent, model, agent.run("go"))
    assert not server.connected


async def test_stdio_server_tools_run_async() -> None:
    model = script()
    async with Agent("m", "", model, tools=[stdio_server()]) as agent:
        check_run(agent, model, await agent.arun("go"))
    assert not agent.toolsets[0].connected  # type: ignore[attr-defined]


def test_http_server_sync_and_async(http_url: str) -> None:
    import asyncio

    server = MCPServer.http(http_url, headers={"X-Test": "1"})
    model = script()
    with Agent("m", "", model, tools=[server]) as agent:
        check_run(agent, model, agent.run("go"))
        model.push(*script()._script)
        result = asyncio.run(agent.arun("again"))
        assert [r.value for r in result.steps[0].tool_results] == [{"result": 5}, {"result": "HI"}]


def test_filter_prefix_and_one_connection_per_agent() -> None:
    server = stdio_server(tools=["add"], prefix="calc_")
    model = TestModel(calls(("c1", "calc_add", {"a": 1, "b": 1})), calls(("c2", "calc_add", {"a": 2, "b": 2})), "4")
    with Agent("m", "", model, tools=[server]) as agent:
        assert [t.name for t in agent.tools] == ["calc_add"]
        client = server._client
        agent.run("go")
        agent.run("again")
        assert server._client is client  # the same connection served both runs


def test_config_declared_servers_build_and_run(http_url: str) -> None:
    cfg = load_config_str(f"""
agents:
  - name: m
    model: gpt-4o
    provider: openai
    api_key: sk-test
    mcp_servers:
      - {sys.executable} {SERVER} stdio
      - url: {http_url}
        prefix: web_
        tools: [shout]
""", "agents.yaml")
    servers = [MCPServer.from_config(s) for s in cfg.agents[0].mcp_servers]
    assert servers[0].command == sys.executable
    assert servers[0].args == [SERVER, "stdio"]
    model = TestModel(calls(("c1", "add", {"a": 4, "b": 5}), ("c2", "web_shout", {"text": "ok"})), "9")
    with Agent("m", "", model, tools=servers) as agent:
        result = agent.run("go")
    assert [r.value for r in result.steps[0].tool_results] == [{"result": 9}, {"result": "OK"}]


def test_unreachable_server_is_a_connection_error() -> None:
    with pytest.raises(ProviderConnectionError, match="cannot connect to MCP server"):
        MCPServer.stdio(sys.executable, "-c", "import sys; sys.exit(3)").tools()
    with pytest.raises(ProviderConnectionError, match="cannot connect to MCP server 'nowhere'"):
        MCPServer.http(f"http://127.0.0.1:{_free_port()}/mcp", name="nowhere").tools()


def test_closed_server_call_is_an_error_result() -> None:
    server = stdio_server()
    model = TestModel(calls(("c1", "add", {"a": 1, "b": 2})), "x")
    agent = Agent("m", "", model, tools=[server])
    server.close()
    result = agent.run("go")
    assert result.steps[0].tool_results[0].is_error
    assert "is closed" in result.steps[0].tool_results[0].content
