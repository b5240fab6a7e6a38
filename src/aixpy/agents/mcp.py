"""Tools from MCP servers, through the official ``mcp`` SDK (``pip install 'aixpy[mcp]'``).

::

    from aixpy.agents import Agent
    from aixpy.agents.mcp import MCPServer

    files = MCPServer.stdio("python", "-m", "my_server")          # a subprocess spoken to over stdio
    search = MCPServer.http("http://127.0.0.1:8000/mcp")           # a streamable HTTP server
    with Agent("helper", "Be brief.", "openai:gpt-4o-mini", tools=[files, search]) as agent:
        print(agent.run("What is in notes.txt?").text)

Lifecycle: a server is connected once, the first time its tools are asked for (when an
:class:`~aixpy.agents.Agent` is built with it), and stays connected until :meth:`MCPServer.close`
(``agent.close()``, or the end of a ``with`` block, closes the servers of an agent; a server still
open when the interpreter exits is closed then). The connection lives in its own thread with its own
event loop, so the same server serves ``run`` (sync, one ``asyncio.run`` per call or none) and ``arun``
(any event loop) alike.

Each tool of the server becomes a :class:`~aixpy.agents.Tool` whose schema is the one the server
lists; arguments are checked against it before the call (a mismatch goes back to the model as an
error result, like any bad call). A result the server marks ``isError``, and a failed call, are
error results too. A result's structured content is what the tool returns when there is one, else its
text blocks joined (other blocks are named, not inlined).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from aixpy.agents._output import check_schema
from aixpy.agents.result import RunContext
from aixpy.agents.tools import Tool
from aixpy.errors import MissingDependencyError, ProviderConnectionError
from aixpy.llm.types import ToolSpec

if TYPE_CHECKING:
    from aixpy.config.llm import MCPServerConfig

__all__ = ["MCPServer", "MCPToolError", "checked_url"]

_INSTALL = "pip install 'aixpy[mcp]'"


class MCPToolError(Exception):
    """An MCP tool answered with ``isError`` (its text is the message the model gets)."""


def _sdk() -> Any:
    try:
        import mcp.client
    except ImportError as e:
        raise MissingDependencyError("the MCP SDK (package mcp)", _INSTALL) from e
    return mcp.client


def checked_url(url: str, key: str = "url") -> str:
    """``url`` when aixpy's endpoint rules allow it, checked before anything connects: no userinfo, no
    backslash (:func:`~aixpy.http.check_endpoint`, a :class:`~aixpy.errors.ConfigError` at ``key``),
    then the SSRF URL policy of a provider endpoint (:func:`~aixpy.http.endpoint_target`,
    :func:`~aixpy.http.check_url`: a loopback or private host may use http, any other host needs https
    and a public address, cloud metadata addresses and names are always refused:
    :class:`~aixpy.http.BlockedURLError`)."""
    from aixpy.http import check_url, endpoint_target

    base, policy = endpoint_target(url, "", (), key=key)
    check_url(base, policy)
    return base


class MCPServer:
    """An MCP server whose tools an agent may call: ``command`` (+ ``args``, ``env``, ``cwd``) for a
    subprocess over stdio, or ``url`` (+ ``headers``) for streamable HTTP.

    ``tools`` keeps only the tools named; ``prefix`` goes before each tool's name; ``timeout`` (seconds)
    bounds each call (default: the agent's ``Limits.tool_timeout``); ``connect_timeout`` bounds the
    listing of the tools (the HTTP transport bounds its own connection: 30 s).

    A ``url`` is checked by :func:`checked_url` when the server is made, so a refused one never connects.
    """

    def __init__(self, command: str | None = None, args: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, url: str | None = None, headers: Mapping[str, str] | None = None,
                 name: str | None = None, tools: Sequence[str] | None = None, prefix: str = "",
                 timeout: float | None = None, connect_timeout: float = 30.0) -> None:
        if (command is None) == (url is None):
            raise ValueError("an MCP server needs either command= (stdio) or url= (streamable HTTP)")
        self.command, self.args, self.env, self.cwd = command, list(args), dict(env or {}), cwd
        self.url = None if url is None else checked_url(url)
        self._headers = dict(headers or {})
        self.name = name or (url if url is not None else " ".join([command or "", *self.args]))
        self.only = None if tools is None else list(tools)
        self.prefix = prefix
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._stack: ExitStack | None = None
        self._portal: Any = None
        self._client: Any = None
        self._tools: list[Tool] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @classmethod
    def stdio(cls, command: str, *args: str, **kw: Any) -> MCPServer:
        """A server started as ``command args...`` and spoken to over its stdin/stdout."""
        return cls(command, args, **kw)

    @classmethod
    def http(cls, url: str, **kw: Any) -> MCPServer:
        """A streamable HTTP server at ``url`` (``http://host:port/mcp``)."""
        return cls(url=url, **kw)

    @classmethod
    def from_config(cls, cfg: MCPServerConfig) -> MCPServer:
        """The server an ``mcp_servers:`` item describes."""
        timeout = cfg.timeout.total_seconds() if cfg.timeout is not None else None
        return cls(cfg.command, cfg.args, env=cfg.env, cwd=cfg.cwd, url=cfg.url,
                   headers={k: v.get_secret_value() for k, v in cfg.headers.items()}, name=cfg.label,
                   tools=cfg.tools, prefix=cfg.prefix, timeout=timeout)

    def __repr__(self) -> str:
        where = "url" if self.url is not None else "command"
        return f"MCPServer({self.name!r}, {where}, connected={self._client is not None})"

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect(self) -> None:
        """Start (or reach) the server and list its tools; done once, on first use."""
        with self._lock:
            if self._client is not None:
                return
            mcp_client = _sdk()
            import anyio.from_thread

            stack = ExitStack()
            try:
                self._portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
                client = mcp_client.Client(self._transport(), read_timeout_seconds=None)
                self._client = stack.enter_context(self._portal.wrap_async_context_manager(client))
                listed = self._portal.call(self._list_all)
            except Exception as e:
                self._client = None
                stack.close()
                raise ProviderConnectionError(f"cannot connect to MCP server {self.name!r}: "
                                              f"{type(e).__name__}: {e}", provider="mcp") from e
            self._stack = stack
            self._tools = [_MCPTool(self, t) for t in listed if self.only is None or t.name in self.only]
            self._finalizer = weakref.finalize(self, stack.close)

    def _transport(self) -> Any:
        if self.url is None:
            from mcp.client.stdio import StdioServerParameters

            assert self.command is not None
            return StdioServerParameters(command=self.command, args=self.args, env=self.env or None, cwd=self.cwd)
        return _http_transport(self.url, self._headers)

    async def _list_all(self) -> list[Any]:
        import anyio

        tools: list[Any] = []
        cursor: str | None = None
        with anyio.fail_after(self.connect_timeout):
            while True:
                page = await self._client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return tools

    def tools(self) -> list[Tool]:
        """The server's tools (connects on the first call)."""
        self.connect()
        assert self._tools is not None
        return list(self._tools)

    def close(self) -> None:
        """Disconnect (a stdio server's process is stopped). Safe to call twice; the server reconnects
        if its tools are used again."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            self._client = self._portal = self._stack = None
            self._tools = None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> MCPServer:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        portal, client = self._portal, self._client
        if portal is None or client is None:
            raise ProviderConnectionError(f"MCP server {self.name!r} is closed", provider="mcp")
        return _result_value(portal.call(client.call_tool, name, arguments))

    async def _acall(self, name: str, arguments: dict[str, Any]) -> Any:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self._call, name, arguments, abandon_on_cancel=True)


@contextlib.asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http, \
            streamable_http_client(url, http_client=http) as streams:
        yield streams


def _result_value(result: Any) -> Any:
    """What the model gets for a ``CallToolResult``; raises :class:`MCPToolError` for ``isError``."""
    texts = [b.text if getattr(b, "type", None) == "text" else f"[{getattr(b, 'type', 'content')} content]"
             for b in result.content]
    if result.is_error:
        raise MCPToolError("\n".join(texts) or "the tool failed")
    if result.structured_content is not None:
        return result.structured_content
    return "\n".join(texts)


class _MCPTool(Tool):
    """One tool of an :class:`MCPServer`: the server's schema, arguments checked against it."""

    def __init__(self, server: MCPServer, listed: Any) -> None:
        self.server = server
        self.remote_name: str = listed.name
        self.fn = server._call
        self.timeout = server.timeout
        self.max_errors = None
        self.is_async = False
        self.takes_context = False
        schema = dict(listed.input_schema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        self.spec = ToolSpec(server.prefix + listed.name, listed.description or "", schema)
        self.name = self.spec.name

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, mcp={self.server.name!r})"

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        problems = check_schema(arguments, self.spec.parameters)
        if problems:
            raise ValueError(f"invalid arguments for tool {self.name!r}: {'; '.join(problems[:10])}")
        return dict(arguments)

    def call(self, ctx: RunContext[Any], kwargs: dict[str, Any]) -> Any:
        return self.server._call(self.remote_name, kwargs)

    async def acall(self, ctx: RunContext[Any], kwargs: dict[str, Any]) -> Any:
        return await self.server._acall(self.remote_name, kwargs)
