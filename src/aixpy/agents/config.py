"""Agents from config: an ``agents:`` item of an aixpy YAML file -> an :class:`~aixpy.agents.Agent`.

::

    from aixpy import agents
    from aixpy.config import load_config

    config = load_config("aixpy.yaml")
    with agents.new("analyzer", config) as agent:    # or Agent.from_config(config.agent("analyzer"), config=config)
        print(agent.run("Summarize the report").text)

What each key becomes:

* ``model``/``provider``/``providers`` + ``fallback_strategy``/``retry``/``timeout``/``endpoint``/
  ``location``/``model_services`` names: the chat model :func:`aixpy.llm.new` builds from the agent;
* ``prompt``: the instructions; ``temperature``/``max_tokens``: every request's;
* ``max_iterations``: :attr:`Limits.max_requests <aixpy.agents.Limits>` (default 10); ``timeout``: also
  the one deadline over the whole run (:attr:`Limits.timeout <aixpy.agents.Limits>`);
* ``output_schema``: the output type (a JSON schema: ``RunResult.output`` is the validated object);
* ``tools``: ``package.module:function`` entries, imported here (not when the config is loaded); the
  built-in ``retrieve``;
* ``retrieval``: the ``retrieve`` tool over the config's ``embeddings:`` and ``vectorstore:``;
* ``mcp_servers``: :class:`~aixpy.agents.mcp.MCPServer` s, connected when the agent is built.

A tool that cannot be imported is a :class:`~aixpy.errors.ConfigError` naming the file and the line of
its entry (when the config was loaded from a file).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aixpy.agents.result import Limits
from aixpy.agents.tools import Tool
from aixpy.config.llm import AgentConfig, RetrievalConfig, ToolConfig
from aixpy.config.loader import where
from aixpy.config.models import AixpyConfig
from aixpy.errors import ConfigError, InvalidInputError
from aixpy.policy.deadline import Clock

if TYPE_CHECKING:
    from aixpy.agents.agent import Agent

__all__ = ["BUILTIN_TOOLS", "build", "import_tool", "new"]

#: Tools named in ``tools:`` without a ``function``.
BUILTIN_TOOLS = ("retrieve",)
DEFAULT_COLLECTION = "knowledge_base"


def new(name: str, config: AixpyConfig, **kw: Any) -> Agent[Any]:
    """The agent called ``name`` in ``config`` (see :func:`build` for the keywords)."""
    try:
        agent_config = config.agent(name)
    except KeyError:
        known = ", ".join(a.name for a in config.agents) or "none are configured"
        raise ConfigError(f"no agent named {name!r} in the config (agents: {known})",
                          file=where(config, "agents")["file"]) from None
    return build(agent_config, config, **kw)


def build(agent_config: AgentConfig, config: AixpyConfig | None = None, *, environ: Mapping[str, str] | None = None,
          clock: Clock | None = None, options: Mapping[str, Any] | None = None, embeddings: Any = None,
          collection: Any = None) -> Agent[Any]:
    """Build the agent ``agent_config`` describes; ``config`` is the whole config it belongs to (its
    ``model_services``, ``embeddings`` and ``vectorstore``, and the file and lines for errors).

    ``environ``/``clock``/``options`` go to :func:`aixpy.llm.new`. ``embeddings``/``collection`` replace
    the ones the ``retrieval:`` block would open from the config. ``config``'s ``sessions:`` block, if
    any, is where ``session=`` runs are kept (else :func:`aixpy.agents.sessions.default_store`'s default).
    """
    from aixpy import llm
    from aixpy.agents.agent import Agent
    from aixpy.agents.sessions import default_store

    at = _path(agent_config, config)
    tools: list[Any] = [_tool(t, agent_config, config, f"{at}.tools[{i}]", embeddings, collection)
                        for i, t in enumerate(agent_config.tools)]
    if agent_config.retrieval is not None and not any(t.tool_name == "retrieve" for t in agent_config.tools):
        tools.append(_retrieve(agent_config.retrieval, config, embeddings, collection))
    if agent_config.mcp_servers:
        from aixpy.agents.mcp import MCPServer

        tools.extend(MCPServer.from_config(s) for s in agent_config.mcp_servers)
    model = llm.new(agent_config, services=config, environ=environ, clock=clock, options=options)
    timeout = agent_config.timeout.total_seconds() if agent_config.timeout is not None else None
    limits = Limits(timeout=timeout) if agent_config.max_iterations is None else \
        Limits(max_requests=agent_config.max_iterations, timeout=timeout)
    sessions = default_store(config.sessions) if config is not None and config.sessions is not None else None
    try:
        agent: Agent[Any] = Agent(agent_config.name, agent_config.prompt or "", model, tools=tools,
                                  output_type=agent_config.output_schema, limits=limits,
                                  temperature=agent_config.temperature, max_tokens=agent_config.max_tokens, clock=clock,
                                  sessions=sessions)
    except BaseException as e:
        model.close()
        if sessions is not None:
            sessions.close()
        if isinstance(e, InvalidInputError):
            raise ConfigError(str(e), **where(config, f"{at}.tools")) from e
        raise
    agent.owns_model = True
    agent.owns_sessions = sessions is not None
    return agent


def _path(agent_config: AgentConfig, config: AixpyConfig | None) -> str:
    for i, a in enumerate(config.agents if config is not None else ()):
        if a is agent_config:
            return f"agents[{i}]"
    return f"agents[{agent_config.name}]"


def import_tool(ref: str) -> Any:
    """The function ``package.module:function`` (or ``module:Class.method``) names; raises ``ImportError``
    or ``AttributeError`` with a message saying what is missing."""
    module_name, _, attr = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ImportError(f"cannot import module {module_name!r}: {e}") from e
    for part in attr.split("."):
        if not hasattr(target, part):
            raise AttributeError(f"module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise AttributeError(f"{ref!r} is a {type(target).__name__}, not a function")
    return target


def _tool(tc: ToolConfig, agent_config: AgentConfig, config: AixpyConfig | None, at: str, embeddings: Any,
          collection: Any) -> Any:
    if tc.function is None:
        if tc.name == "retrieve":
            if agent_config.retrieval is None:
                raise ConfigError("the built-in tool 'retrieve' needs the agent's 'retrieval:' block (its "
                                  "collection)", **where(config, at))
            return _retrieve(agent_config.retrieval, config, embeddings, collection)
        raise ConfigError(f"tool {tc.name!r} has no 'function: package.module:function' and is not a built-in tool "
                          f"({', '.join(BUILTIN_TOOLS)})", **where(config, at))
    if "input_schema" in tc.model_fields_set:
        raise ConfigError(f"tool {tc.function!r}: 'input_schema' cannot be set for a function tool; its signature "
                          "and docstring give the schema", **where(config, f"{at}.input_schema"))
    try:
        fn = import_tool(tc.function)
    except Exception as e:  # any import-time failure of the user's module
        raise ConfigError(f"tool {tc.function!r}: {type(e).__name__}: {e}", **where(config, f"{at}.function")) from e
    try:
        return Tool(fn, name=tc.name, description=tc.description,
                    timeout=tc.timeout.total_seconds() if tc.timeout is not None else None, max_errors=tc.max_errors)
    except InvalidInputError as e:
        raise ConfigError(f"tool {tc.function!r}: {e}", **where(config, f"{at}.function")) from e


def _retrieve(rc: RetrievalConfig, config: AixpyConfig | None, embeddings: Any, collection: Any) -> Any:
    """The ``retrieve`` tool over the configured collection."""
    from aixpy.agents.retrieval import retrieve_tool  # type: ignore[import-not-found,unused-ignore]

    if embeddings is None:
        from aixpy import embeddings as emb

        embeddings = emb.new(config.embeddings if config is not None else None)
    if collection is None:
        from aixpy import vectorstores
        from aixpy.vectorstores.base import CollectionOptions

        vs = config.vectorstore if config is not None else None
        store = vectorstores.new(vs)
        dims = (vs.embedding_dimensions if vs is not None else None) or embeddings.dimensions()
        collection = store.collection(rc.collection or _collection_name(vs), CollectionOptions(dimensions=dims))
    return retrieve_tool(embeddings, collection, limit=rc.limit, min_score=rc.min_score)


def _collection_name(vs: Any) -> str:
    """The collection a vector-store block names (``collection:``/``table:`` of its backend's block)."""
    block = getattr(vs, vs.provider, None) if vs is not None else None
    return str(getattr(block, "collection", None) or getattr(block, "table", None) or DEFAULT_COLLECTION)
