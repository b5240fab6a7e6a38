"""``Agent``: instructions, a chat model, tools, an optional output type and limits.

::

    from aixpy.agents import Agent, RunContext

    def get_weather(city: str) -> str:
        \"\"\"Current weather of a city.\"\"\"
        return "18°C, cloudy"

    agent = Agent("weather", "Answer briefly.", "openai:gpt-4o-mini", tools=[get_weather])
    result = agent.run("Weather in Paris?")
    print(result.text, result.usage, result.cost_usd)

    for event in agent.stream("And in Rome?"):          # async: ``async for event in agent.astream(...)``
        ...

Models with native tool calling (``model.capabilities.tools``) get the tools as tool specs; the others
(HuggingFace text generation) get the text ReAct protocol (:mod:`aixpy.agents._react`), chosen per model.
The loop itself is written once (:mod:`aixpy.agents._loop`) and driven by a sync and an async driver
(:mod:`aixpy.agents._drive`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from aixpy.agents._drive import adrive, drive
from aixpy.agents._loop import plan, start_messages
from aixpy.agents.result import FinalResult, Limits, RunEvent, RunResult
from aixpy.agents.sessions import SessionStore, default_store, session_plan
from aixpy.agents.tools import Tool, as_tool
from aixpy.errors import InvalidInputError
from aixpy.llm.model import ChatModel
from aixpy.llm.types import Message
from aixpy.policy.deadline import Clock

if TYPE_CHECKING:
    from aixpy.config.llm import AgentConfig
    from aixpy.config.models import AixpyConfig

__all__ = ["Agent", "Toolset"]

Deps = TypeVar("Deps")


@runtime_checkable
class Toolset(Protocol):
    """Something that provides several tools and holds a connection: an MCP server."""

    def tools(self) -> list[Tool]: ...

    def close(self) -> None: ...


class Agent(Generic[Deps]):
    """An agent: ``run``/``arun`` return a :class:`RunResult`; ``stream``/``astream`` yield
    :data:`RunEvent` s (text deltas, tool calls started, tool results, steps finished), ending with
    :class:`FinalResult`.

    Args:
        name: the agent's name (logs, errors).
        instructions: the system prompt.
        model: a :class:`~aixpy.llm.ChatModel` (a provider, or the retry/cascade wrappers) or a spec for
            :func:`aixpy.llm.new` (``"anthropic:claude-sonnet-4-5"``).
        tools: typed Python functions (sync or async), :class:`Tool` s, or :class:`Toolset` s
            (:class:`~aixpy.agents.mcp.MCPServer`: connected now, closed by :meth:`close`).
        output_type: a pydantic model (or any type pydantic validates) or a JSON schema dict;
            ``RunResult.output`` is then the parsed answer.
        limits: :class:`Limits` of each run.
        clock: where the run's deadline reads time (default: the model's clock).
        sessions: where ``session=`` conversations are kept (default:
            :func:`aixpy.agents.sessions.default_store`: Redis at ``$AIXPY_SESSIONS_REDIS_URL`` when set,
            else files under ``./.aixpy/sessions``; an agent built from a config uses its ``sessions:`` block).
    """

    def __init__(self, name: str, instructions: str = "", model: ChatModel | str = "", *,
                 tools: Sequence[Tool | Toolset | Callable[..., Any]] = (), output_type: Any = None,
                 limits: Limits | None = None, temperature: float | None = None, max_tokens: int | None = None,
                 clock: Clock | None = None, sessions: SessionStore | None = None) -> None:
        #: whether :meth:`close` closes the model too (the agent built it: a spec string, or from config)
        self.owns_model = isinstance(model, str)
        if isinstance(model, str):
            if not model:
                raise InvalidInputError(f"agent {name!r} needs a model")
            from aixpy.llm import new

            model = new(model)
        self.name = name
        self.instructions = instructions
        self.model: ChatModel = model
        self.toolsets: list[Toolset] = []
        self.tools: list[Tool] = []
        try:
            for t in tools:
                if isinstance(t, Toolset):
                    self.toolsets.append(t)
                    self.tools.extend(t.tools())
                else:
                    self.tools.append(as_tool(t))
        except BaseException:
            self.close()
            raise
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            self.close()
            raise InvalidInputError(f"agent {name!r}: tool names must be unique, got {names}")
        self.output_type = output_type
        self.limits = limits or Limits()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.clock: Clock = clock or model.clock
        self._sessions = sessions
        #: whether :meth:`close` closes the session store too (the agent built it from a ``sessions:`` block)
        self.owns_sessions = False

    @property
    def sessions(self) -> SessionStore:
        """The session store (created on first use)."""
        if self._sessions is None:
            self._sessions = default_store()
        return self._sessions

    def __repr__(self) -> str:
        return f"Agent({self.name!r}, model={self.model!r}, tools={[t.name for t in self.tools]})"

    @classmethod
    def from_config(cls, agent_config: AgentConfig, *, config: AixpyConfig | None = None,
                    **kw: Any) -> Agent[Any]:
        """The agent an ``agents:`` item describes (see :mod:`aixpy.agents.config`)."""
        from aixpy.agents.config import build

        return build(agent_config, config, **kw)

    def close(self) -> None:
        """Close the agent's toolsets (MCP servers), and its model when the agent built it
        (:attr:`owns_model`); a model passed in is the caller's to close."""
        for ts in self.toolsets:
            ts.close()
        if self.owns_model:
            self.model.close()
        if self.owns_sessions and self._sessions is not None:
            self._sessions.close()

    def __enter__(self) -> Agent[Deps]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Agent[Deps]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.close)

    @property
    def uses_react(self) -> bool:
        """Whether runs use the text ReAct protocol (the model has no native tool calling)."""
        return not self.model.capabilities.tools

    def _plan(self, prompt: str | Sequence[Message], deps: Any, history: Sequence[Message],
              session: str | None) -> Any:
        if session is None:
            return plan(self, start_messages(self, prompt, history), deps)
        before = start_messages(self, [], [*self.sessions.load(session), *history])
        return session_plan(plan(self, start_messages(self, prompt, before), deps), self.sessions, session,
                            len(before))

    def stream(self, prompt: str | Sequence[Message], *, deps: Deps | None = None,
               message_history: Sequence[Message] = (), session: str | None = None) -> Iterator[RunEvent]:
        """Run and yield the events as they happen (model text streamed as deltas).

        ``session``: continue that conversation (its history comes before ``message_history``), and
        keep this run's messages in it when the run ends well."""
        return drive(self._plan(prompt, deps, message_history, session), self.model, stream=True,
                     agent=self.name)

    def astream(self, prompt: str | Sequence[Message], *, deps: Deps | None = None,
                message_history: Sequence[Message] = (), session: str | None = None) -> AsyncIterator[RunEvent]:
        """Async twin of :meth:`stream`."""
        return adrive(self._plan(prompt, deps, message_history, session), self.model, stream=True,
                      agent=self.name)

    def run(self, prompt: str | Sequence[Message], *, deps: Deps | None = None,
            message_history: Sequence[Message] = (), session: str | None = None) -> RunResult:
        """Run to the final answer. Raises an :class:`~aixpy.errors.AgentError` (with the partial
        result) when a limit stops the run."""
        *_, last = drive(self._plan(prompt, deps, message_history, session), self.model, stream=False,
                         agent=self.name)
        assert isinstance(last, FinalResult)
        return last.result

    async def arun(self, prompt: str | Sequence[Message], *, deps: Deps | None = None,
                   message_history: Sequence[Message] = (), session: str | None = None) -> RunResult:
        """Async twin of :meth:`run`; the tool calls of one response run concurrently."""
        last: RunEvent | None = None
        async for last in adrive(self._plan(prompt, deps, message_history, session), self.model,  # noqa: B007
                                 stream=False, agent=self.name):
            pass
        assert isinstance(last, FinalResult)
        return last.result
