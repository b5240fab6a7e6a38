"""``aixpy run AGENT "task"``: run a configured agent, each step shown as it happens.

The answer streams on stdout; tool calls (with their arguments), their results and timings, and each
step's model, tokens and latency go to stderr. ``--json`` prints the whole run result instead.
``--session ID`` continues that conversation (kept where the config's ``sessions:`` block says; without
one, in Redis when ``$AIXPY_SESSIONS_REDIS_URL`` is set, else under ``./.aixpy/sessions``) and keeps this
run's messages in it when the run ends well.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from aixpy.cli._output import print_json, styled
from aixpy.errors import UserError

out = Console()
err = Console(stderr=True)

PREVIEW = 200


def run(
    agent: Annotated[str, typer.Argument(help="Name of an agent of the config (agents: ... name:).")],
    task: Annotated[str, typer.Argument(help="What to do ('-' reads stdin).")],
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run result as JSON on stdout.")] = False,
    session: Annotated[str | None, typer.Option(help="Continue this conversation (kept where the config's "
                                                "sessions: block says, else in Redis at "
                                                "$AIXPY_SESSIONS_REDIS_URL, else under ./.aixpy/sessions).",
                                                show_default=False)] = None,
) -> None:
    """Run a configured agent: tool calls with their arguments, results and timings, live; then the answer."""
    from aixpy.cli import _errors

    with _errors():
        if task == "-":
            task = sys.stdin.read()
        if not task.strip():
            raise UserError("the task is empty: pass what the agent should do as TASK")
        if session is not None:
            from aixpy.agents.sessions import check_session_id

            check_session_id(session, "--session")
        with _build(agent, config) as built:
            result = built.run(task, session=session) if as_json else _show(built, task, session)
    if as_json:
        print_json(out, result_dict(result))


def _build(name: str, config: str | None) -> Any:
    from aixpy.agents import new
    from aixpy.config import find_config, load_config

    found = find_config(config)
    if found is None:
        raise UserError("no config: pass --config FILE (or set $AIXPY_CONFIG) with an agents: block")
    cfg = load_config(found)
    if not any(a.name == name for a in cfg.agents):
        known = ", ".join(a.name for a in cfg.agents) or "none in the config"
        raise UserError(f"AGENT: no agent named {name!r} in {found} (agents: {known})")
    if cfg.agent(name).retrieval is None:
        return new(name, cfg)
    from aixpy.cli._runtime import resolve

    rt = resolve(config)
    emb = rt.open_embedder()
    coll = rt.open_collection(rt.open_store(), emb, cfg.agent(name).retrieval.collection)  # type: ignore[union-attr]
    return new(name, cfg, embeddings=emb, collection=coll)


def _show(agent: Any, task: str, session: str | None) -> Any:
    step_started = time.perf_counter()
    midline = False
    for event in agent.stream(task, session=session):
        if event.kind == "text_delta":
            out.print(styled(event.text), end="", soft_wrap=True)
            midline = not event.text.endswith("\n")
            continue
        if midline:
            out.print()
            midline = False
        if event.kind == "tool_call_started":
            args = _preview(json.dumps(event.call.arguments, ensure_ascii=False))
            err.print(styled(("→ ", "cyan"), (event.call.name, "bold cyan"), " ", args), soft_wrap=True)
        elif event.kind == "tool_result":
            r = event.result
            label = ("✗ ", "red") if r.is_error else ("← ", "green")
            took = "replayed" if r.replayed else f"{r.duration_s * 1000:.0f} ms"
            err.print(styled(label, (r.call.name, "bold"), f" {_preview(r.content)} ", (f"({took})", "dim")),
                      soft_wrap=True)
        elif event.kind == "step_finished":
            resp, now = event.step.response, time.perf_counter()
            u = resp.usage
            tokens = "" if u is None else f", {u.input_tokens} in / {u.output_tokens} out tokens"
            err.print(styled((f"step {event.step.index + 1}: {resp.provider}:{resp.model}{tokens}, "
                              f"{(now - step_started):.2f} s", "dim")), soft_wrap=True)
            step_started = now
        elif event.kind == "final_result":
            result = event.result
    if midline:
        out.print()
    cost = "cost unknown" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    err.print(styled((f"{result.requests} model call(s), {result.tool_calls} tool call(s), "
                      f"{result.usage.total_tokens} tokens, {cost}, {result.wall_time_s:.2f} s", "dim")),
              soft_wrap=True)
    return result


def _preview(text: str) -> str:
    one = " ".join(text.split())
    return one if len(one) <= PREVIEW else one[: PREVIEW - 1] + "…"


def result_dict(result: Any) -> dict[str, Any]:
    """A :class:`~aixpy.agents.RunResult` as JSON-able data."""
    from pydantic_core import to_jsonable_python

    def usage(u: Any) -> dict[str, Any] | None:
        return None if u is None else {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                                       "total_tokens": u.total_tokens}

    return {
        "text": result.text,
        "output": to_jsonable_python(result.output, fallback=repr),
        "usage": usage(result.usage), "cost_usd": result.cost_usd, "wall_time_s": round(result.wall_time_s, 6),
        "requests": result.requests, "tool_calls": result.tool_calls,
        "steps": [{
            "index": s.index, "provider": s.response.provider, "model": s.response.model,
            "text": s.response.text, "finish_reason": s.response.finish_reason, "usage": usage(s.response.usage),
            "cost_usd": s.response.cost_usd,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in s.tool_calls],
            "tool_results": [{"id": r.call.id, "name": r.call.name, "content": r.content, "is_error": r.is_error,
                              "duration_s": round(r.duration_s, 6), "replayed": r.replayed}
                             for r in s.tool_results],
        } for s in result.steps],
    }
