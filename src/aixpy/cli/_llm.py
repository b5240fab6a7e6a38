"""``aixpy chat`` and ``aixpy models``: talk to any configured LLM provider, list models and prices."""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text

from aixpy.cli._output import cells, clean, print_json, styled
from aixpy.errors import UserError

out = Console()
err = Console(stderr=True)

#: Seconds ``aixpy chat`` waits for a whole answer by default (``--timeout``), retries included.
CHAT_TIMEOUT = 60.0


class _Spinner:
    """A status line on stderr while nothing has arrived yet: only when stderr is a terminal."""

    def __init__(self, message: str) -> None:
        self._status: Status | None = err.status(styled((message, "dim"))) if err.is_terminal else None

    def __enter__(self) -> _Spinner:
        if self._status is not None:
            self._status.start()
        return self

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _resolve_model(model: str | None, agent: str | None, config: str | None, settings: dict[str, Any]) -> Any:
    """Build the chat model: ``--model`` spec, or an agent of the config (``--agent``, else the first)."""
    return resolve_model_and_agent(model, agent, config, settings)[0]


def resolve_model_and_agent(model: str | None, agent: str | None, config: str | None,
                            settings: dict[str, Any]) -> tuple[Any, Any]:
    """The chat model and the config's agent it comes from (``None`` with ``--model``)."""
    from aixpy import llm
    from aixpy.config import find_config, load_config

    found = find_config(config)
    cfg = load_config(found) if found is not None else None
    if model:
        return llm.new(model, services=cfg, **settings), None
    agents = cfg.agents if cfg is not None else []
    if not agents:
        raise UserError("no model given: pass --model provider:model (e.g. openai:gpt-4o-mini, "
                        "anthropic:claude-3-5-haiku-latest, llama3.1:8b) or define agents: in the config")
    chosen = next((a for a in agents if a.name == agent), None) if agent else agents[0]
    if chosen is None:
        raise UserError(f"no agent named {agent!r}; agents: {', '.join(a.name for a in agents)}")
    return llm.new(chosen, services=cfg), chosen


def chat(
    prompt: Annotated[str, typer.Argument(help="What to ask ('-' reads stdin).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="provider:model, e.g. openai:gpt-4o-mini, "
                                              "or a bare model name (provider detected).")] = None,
    agent: Annotated[str | None, typer.Option(help="Use this agent of the config (default: the first).")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0, max=2.0)] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    endpoint: Annotated[str | None, typer.Option(help="Override the provider's base URL.")] = None,
    no_stream: Annotated[bool, typer.Option("--no-stream", help="Wait for the whole answer.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole response as JSON.")] = False,
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=3600.0,
                                           help="Give up after this many seconds (the whole answer, "
                                           "retries included).")] = CHAT_TIMEOUT,
) -> None:
    """Chat with an LLM: streams the answer, then prints token usage, cost and latency."""
    from aixpy.cli import _errors

    with _errors():
        if prompt == "-":
            prompt = sys.stdin.read()
        if not prompt.strip():
            raise UserError("the prompt is empty")
        settings = {"endpoint": endpoint} if endpoint and model else {}
        if endpoint and not model:
            raise UserError("--endpoint needs --model")
        kwargs: dict[str, Any] = {k: v for k, v in (("system", system), ("temperature", temperature),
                                                    ("max_tokens", max_tokens)) if v is not None}
        with _resolve_model(model, agent, config, settings) as llm_model:
            waiting = f"waiting for {llm_model.provider}:{llm_model.model} (up to {timeout:g} s)"
            if no_stream or as_json:
                with _Spinner(waiting):
                    response = llm_model.chat(prompt, timeout=timeout, **kwargs)
                if not as_json:
                    out.print(Text(clean(response.text)), soft_wrap=True)
            else:
                with _Spinner(waiting) as spinner, llm_model.stream(prompt, timeout=timeout, **kwargs) as s:
                    for delta in s.text_deltas():
                        spinner.stop()
                        out.print(Text(clean(delta)), end="", soft_wrap=True)
                    spinner.stop()
                    response = s.response
                out.print()
    if as_json:
        print_json(out, _response_dict(response))
        return
    for call in response.tool_calls:
        out.print(styled(("tool call", "cyan"), f" {call.name}({json.dumps(call.arguments)})"), soft_wrap=True)
    err.print(styled((_summary(response), "dim")), soft_wrap=True)


def _response_dict(r: Any) -> dict[str, Any]:
    u = r.usage
    return {
        "text": r.text, "provider": r.provider, "model": r.model, "finish_reason": r.finish_reason,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in r.tool_calls],
        "usage": None if u is None else {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                                         "cached_input_tokens": u.cached_input_tokens},
        "cost_usd": r.cost_usd, "latency_ms": r.latency_ms,
    }


def _summary(r: Any) -> str:
    u = r.usage
    tokens = "usage not reported" if u is None else f"{u.input_tokens} in / {u.output_tokens} out tokens"
    cost = "cost unknown" if r.cost_usd is None else f"${r.cost_usd:.6f}"
    return f"{r.provider}:{r.model} · {r.finish_reason} · {tokens} · {cost} · {r.latency_ms:.0f} ms"


def _known_provider(name: str) -> str:
    """``--provider``'s canonical name; UnknownProviderError (exit 2) with a did-you-mean otherwise."""
    from aixpy._model_names import PROVIDERS, close_provider, unknown_provider

    if name in PROVIDERS:
        return PROVIDERS.canonical(name)
    raise unknown_provider(PROVIDERS.kind, name, PROVIDERS.names(), close_provider(name, PROVIDERS))


def models(
    provider: Annotated[str | None, typer.Option(help="Only this provider's models.")] = None,
    live: Annotated[bool, typer.Option("--live", help="Ask the provider's API which models it serves "
                                       "(needs --provider and its API key or server).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """List known models with their prices ($ per 1M tokens), or a provider's live model list."""
    from aixpy import llm
    from aixpy.cli import _errors
    from aixpy.llm.pricing import PRICES, PRICES_AS_OF

    with _errors():
        if provider:
            provider = _known_provider(provider)
        if live:
            if not provider:
                raise UserError("--live needs --provider (e.g. --provider ollama)")
            with llm.new(provider) as m:
                names = m.list_models()
            if as_json:
                print_json(out, names)
            else:
                for n in names:
                    out.print(styled(n), soft_wrap=True)
            return
        rows = []
        for name, price in sorted(PRICES.items()):
            try:
                owner = llm.detect_provider(name, vertex=False)
            except UserError:
                owner = "?"
            if provider and owner != provider:
                continue
            rows.append((owner, name, price))
    if as_json:
        print_json(out, [{"provider": p, "model": n, "input": pr.input, "output": pr.output,
                          "cached_input": pr.cached_input} for p, n, pr in rows])
        return
    table = Table(title=styled(f"prices in $ per 1M tokens (as of {PRICES_AS_OF}); providers: "
                               f"{', '.join(llm.provider_names())}"), title_justify="left")
    for col in ("provider", "model", "input", "output", "cached input"):
        table.add_column(col, justify="right" if col in ("input", "output", "cached input") else "left")
    for p, n, pr in rows:
        cached = "-" if pr.cached_input is None else f"{pr.cached_input:g}"
        table.add_row(*cells(p, n, f"{pr.input:g}", f"{pr.output:g}", cached))
    out.print(table)
