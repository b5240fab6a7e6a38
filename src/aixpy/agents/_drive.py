"""The two drivers of the agent plan (:mod:`aixpy.agents._loop`): sync and async. They do the I/O the
plan asks for and nothing else, and both yield the run's events, ending with
:class:`~aixpy.agents.FinalResult`.

Tool calls of one response:

* async: run concurrently (one task each in an anyio task group; a sync function runs in a worker
  thread), each bounded by its timeout;
* sync: run one after the other in the calling thread, in the order the model gave them. A call with
  a timeout runs in a worker thread that is waited for up to the timeout; a call that overruns it is an
  error result, and its thread is left to finish on its own (Python cannot stop a thread).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import anyio

from aixpy.agents._loop import CallModel, Emit, PendingCall, Plan, RunTools, ToolOutcome
from aixpy.agents._observe import observer
from aixpy.agents.result import FinalResult, RunContext, RunEvent, TextDelta
from aixpy.llm.model import ChatModel
from aixpy.llm.types import ChatResponse

__all__ = ["adrive", "drive"]


def _failed(p: PendingCall, e: BaseException | None, started: float) -> ToolOutcome:
    took = time.perf_counter() - started
    if e is None:
        text = f"error: tool {p.tool.name!r} timed out after {p.timeout:.3g} s"
    else:
        text = f"error: tool {p.tool.name!r} raised {type(e).__name__}: {e}"
    return ToolOutcome(error=text, duration_s=took, error_type="TimeoutError" if e is None else type(e).__name__,
                       started=started)


# --------------------------------------------------------------------------- sync


def _call_tool(p: PendingCall, ctx: RunContext[Any]) -> ToolOutcome:
    ctx = replace(ctx, tool_call_id=p.call.id)
    started = time.perf_counter()
    try:
        if p.timeout is None:
            value = p.tool.call(ctx, p.kwargs)
        else:
            pool = ThreadPoolExecutor(1, thread_name_prefix=f"aixpy-tool-{p.tool.name}")
            try:
                future = pool.submit(p.tool.call, ctx, p.kwargs)
                try:
                    value = future.result(timeout=max(p.timeout, 0.0))
                except TimeoutError:
                    if not future.done():
                        return _failed(p, None, started)
                    raise
            finally:
                pool.shutdown(wait=False)
    except Exception as e:
        return _failed(p, e, started)
    return ToolOutcome(value, None, time.perf_counter() - started, started=started)


def _call_model(model: ChatModel, step: CallModel, stream: bool) -> Generator[RunEvent, None, ChatResponse]:
    if not stream:
        return model.chat(step.request, deadline=step.deadline)
    with model.stream(step.request, deadline=step.deadline) as s:
        for event in s:
            if event.kind == "text" and event.text:
                yield TextDelta(event.text, step.step)
    return s.response


def drive(plan: Plan, model: ChatModel, *, stream: bool, agent: str | None = None) -> Generator[RunEvent, None, None]:
    """Run ``plan`` synchronously; yields its events (text deltas only when ``stream``). ``agent``: the
    name its telemetry events carry (none are emitted without it, nor while nobody listens)."""
    obs = observer(agent)
    try:
        step = next(plan)
        while True:
            if isinstance(step, Emit):
                obs.event(step.event)
                yield step.event
                step = plan.send(None)
                continue
            try:
                if isinstance(step, CallModel):
                    obs.model_call(step.step)
                    reply: Any = yield from _call_model(model, step, stream)
                else:
                    reply = [_call_tool(p, step.context) for p in step.calls]
                    obs.tools(step, reply)
            except Exception as e:
                obs.model_failed(e)
                step = plan.throw(e)
                continue
            step = plan.send(reply)
    except StopIteration as done:
        obs.finished(done.value, None)
        yield FinalResult(done.value)
    except BaseException as e:
        obs.finished(None, e)
        raise
    finally:
        plan.close()


# --------------------------------------------------------------------------- async


async def _acall_tool(p: PendingCall, ctx: RunContext[Any]) -> ToolOutcome:
    ctx = replace(ctx, tool_call_id=p.call.id)
    started = time.perf_counter()
    try:
        with anyio.fail_after(None if p.timeout is None else max(p.timeout, 0.0)):
            value = await p.tool.acall(ctx, p.kwargs)
    except TimeoutError as e:  # fail_after's, or the tool's own TimeoutError
        overran = p.timeout is not None and time.perf_counter() - started >= p.timeout
        return _failed(p, None if overran else e, started)
    except Exception as e:
        return _failed(p, e, started)
    return ToolOutcome(value, None, time.perf_counter() - started, started=started)


async def _arun_tools(step: RunTools) -> list[ToolOutcome]:
    if len(step.calls) == 1:
        return [await _acall_tool(step.calls[0], step.context)]
    out: list[ToolOutcome] = [ToolOutcome() for _ in step.calls]

    async def one(i: int, p: PendingCall) -> None:
        out[i] = await _acall_tool(p, step.context)

    async with anyio.create_task_group() as tg:
        for i, p in enumerate(step.calls):
            tg.start_soon(one, i, p)
    return out


async def adrive(plan: Plan, model: ChatModel, *, stream: bool,
                 agent: str | None = None) -> AsyncGenerator[RunEvent, None]:
    """Async twin of :func:`drive`; the tool calls of one response run concurrently."""
    obs = observer(agent)
    try:
        step = next(plan)
        while True:
            if isinstance(step, Emit):
                obs.event(step.event)
                yield step.event
                step = plan.send(None)
                continue
            try:
                if isinstance(step, CallModel):
                    obs.model_call(step.step)
                    if stream:
                        async with model.astream(step.request, deadline=step.deadline) as s:
                            async for event in s:
                                if event.kind == "text" and event.text:
                                    yield TextDelta(event.text, step.step)
                        reply: Any = s.response
                    else:
                        reply = await model.achat(step.request, deadline=step.deadline)
                else:
                    reply = await _arun_tools(step)
                    obs.tools(step, reply)
            except Exception as e:
                obs.model_failed(e)
                step = plan.throw(e)
                continue
            step = plan.send(reply)
    except StopIteration as done:
        obs.finished(done.value, None)
        yield FinalResult(done.value)
    except BaseException as e:
        obs.finished(None, e)
        raise
    finally:
        plan.close()
