"""Tools an agent can call: typed Python functions, sync or async.

The JSON schema the model sees comes from the signature and docstring through
:func:`aixpy.llm.types.tool_from_function`; the arguments the model sends are validated against the
same signature with pydantic (unknown arguments are refused), so what the tool receives is what its
annotations say. A first parameter annotated :class:`~aixpy.agents.RunContext` is not shown to the
model: the agent fills it with the run's ``deps`` and usage so far.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_json

from aixpy.agents._output import problems_of
from aixpy.agents.result import RunContext
from aixpy.errors import InvalidInputError
from aixpy.llm.types import ToolSpec, tool_from_function

__all__ = ["Tool", "tool"]


def _is_context(annotation: Any) -> bool:
    return annotation is RunContext or get_origin(annotation) is RunContext


class Tool:
    """A Python function the model may call.

    ``timeout`` (seconds) bounds each call (default: the agent's ``Limits.tool_timeout``);
    ``max_errors`` overrides ``Limits.max_tool_errors`` for this tool.
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                 timeout: float | None = None, max_errors: int | None = None, strict: bool | None = None) -> None:
        self.fn = fn
        self.timeout = timeout
        self.max_errors = max_errors
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
        fn_name = getattr(fn, "__name__", None) or type(fn).__name__
        try:
            sig = inspect.signature(fn)
            hints = get_type_hints(fn, include_extras=True)
        except (TypeError, ValueError, NameError) as e:
            raise InvalidInputError(f"cannot read the signature of tool {fn_name!r}: {e}") from e
        params = list(sig.parameters.values())
        self.takes_context = bool(params) and _is_context(hints.get(params[0].name))
        if self.takes_context:
            params = params[1:]
        for p in params:
            if _is_context(hints.get(p.name)):
                raise InvalidInputError(f"tool {fn_name!r}: a RunContext parameter must come first")
        shown = _shim(fn, fn_name, sig.replace(parameters=params), {p.name: hints[p.name] for p in params
                                                                    if p.name in hints})
        self.spec: ToolSpec = tool_from_function(shown, name=name, description=description, strict=strict)
        self.name = self.spec.name
        fields: dict[str, Any] = {p.name: (hints.get(p.name, Any), ... if p.default is p.empty else p.default)
                                  for p in params}
        self._args: type[BaseModel] = create_model(f"{fn_name}_args", __config__=ConfigDict(extra="forbid"),
                                                   **fields)
        self._names = [p.name for p in params]

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the function; raises ValueError with a message for the model."""
        try:
            parsed = self._args.model_validate(arguments)
        except ValidationError as e:
            raise ValueError(f"invalid arguments for tool {self.name!r}: {problems_of(e)}") from None
        return {n: getattr(parsed, n) for n in self._names}

    def _args_for(self, ctx: RunContext[Any], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return ((ctx,) if self.takes_context else ()), kwargs

    def call(self, ctx: RunContext[Any], kwargs: dict[str, Any]) -> Any:
        """Run a sync function (an async one is run to completion on a fresh event loop)."""
        args, kw = self._args_for(ctx, kwargs)
        if self.is_async:
            import asyncio

            return asyncio.run(self.fn(*args, **kw))
        return self.fn(*args, **kw)

    async def acall(self, ctx: RunContext[Any], kwargs: dict[str, Any]) -> Any:
        """Run the function from async code: awaited, or a sync one in a worker thread."""
        args, kw = self._args_for(ctx, kwargs)
        if self.is_async:
            return await self.fn(*args, **kw)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(lambda: self.fn(*args, **kw), abandon_on_cancel=True)


def _shim(fn: Callable[..., Any], name: str, sig: inspect.Signature, hints: dict[str, Any]) -> Callable[..., Any]:
    """A stand-in with ``fn``'s name and docstring and the signature the model sees."""

    def shown(**kwargs: Any) -> Any:  # never called
        raise NotImplementedError

    shown.__name__ = shown.__qualname__ = name
    shown.__doc__ = inspect.getdoc(fn)
    shown.__signature__ = sig  # type: ignore[attr-defined]
    shown.__annotations__ = hints
    return shown


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None,
         timeout: float | None = None, max_errors: int | None = None) -> Any:
    """Make a :class:`Tool`: ``tool(fn)``, or as a decorator ``@tool`` / ``@tool(timeout=5)``."""
    if fn is None:
        return lambda f: Tool(f, name=name, description=description, timeout=timeout, max_errors=max_errors)
    return Tool(fn, name=name, description=description, timeout=timeout, max_errors=max_errors)


def as_tool(value: Tool | Callable[..., Any]) -> Tool:
    return value if isinstance(value, Tool) else Tool(value)


def result_text(value: Any) -> str:
    """What the model receives for a tool's return value: a string as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    try:
        return to_json(value).decode()
    except Exception:
        return json.dumps(repr(value))
