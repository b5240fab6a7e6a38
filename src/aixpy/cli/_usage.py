"""``aixpy usage``: today's and recent days' tokens and cost by provider, model and agent, from the usage
ledger the config's ``observability.ledger`` names (default ``./.aixpy/usage.sqlite3``)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aixpy.cli._output import cells, error_line, print_json, styled
from aixpy.errors import AixpyError, UserError

__all__ = ["usage"]


def _ledger_config(config: str | None) -> Any:
    from aixpy.config import LedgerConfig, find_config, load_config

    found = find_config(config)
    return load_config(found).observability.ledger if found is not None else LedgerConfig()


def _open(cfg: Any) -> Any:
    from aixpy.llm._observe import ledger_for

    return ledger_for(cfg)


def usage(
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (default: $AIXPY_CONFIG, "
                                               "then ./aixpy.yaml).", show_default=False)] = None,
    days: Annotated[int, typer.Option("--days", "-d", help="How many UTC days, today included.", min=1,
                                      max=3660)] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Tokens and cost recorded in the usage ledger: today, and by day, provider, model and agent."""
    out, err = Console(), Console(stderr=True)
    try:
        cfg = _ledger_config(config)
        from aixpy.telemetry.ledger import DEFAULT_LEDGER_PATH, utc_day

        # a ledger file that does not exist yet means nothing was recorded: do not create one by reading
        missing = cfg.backend == "sqlite" and not Path(cfg.path or DEFAULT_LEDGER_PATH).exists()
        ledger = None if missing else _open(cfg)
        today = utc_day() if ledger is None else ledger.today()
        since = (date.fromisoformat(today) - timedelta(days=days - 1)).isoformat()
        rows = [] if ledger is None else ledger.rows(since, today)
    except (AixpyError, OSError) as e:
        err.print(error_line(e), soft_wrap=True)
        raise typer.Exit(2 if isinstance(e, UserError) else 1) from None
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"calls": 0, "tokens": 0, "cost_usd": 0.0})
    for r in rows:
        t = totals[r.day]
        t["calls"] += r.calls
        t["tokens"] += r.tokens
        t["cost_usd"] += r.cost_usd
    if as_json:
        print_json(out, {"today": today, "since": since, "ledger": cfg.backend,
                         "today_totals": {k: round(v, 9) for k, v in totals[today].items()},
                         "days": {d: {k: round(v, 9) for k, v in t.items()} for d, t in sorted(totals.items())},
                         "rows": [r.as_dict() for r in rows]})
        return
    t = totals[today]
    out.print(styled(("today", "bold"), f" ({today} UTC): {int(t['calls'])} call(s), {int(t['tokens'])} tokens, "
                     f"${t['cost_usd']:.4f}"))
    if not rows:
        out.print(f"no usage recorded since {since}")
        return
    table = Table(title=f"usage since {since} (UTC)", title_justify="left")
    for name in ("day", "provider", "model", "agent", "calls", "input", "output", "cached", "cost USD"):
        table.add_column(name, justify="right" if name in ("calls", "input", "output", "cached", "cost USD")
                         else "left")
    for r in rows:
        cost = f"{r.cost_usd:.4f}" + (f" (+{r.unpriced_calls} unpriced)" if r.unpriced_calls else "")
        table.add_row(*cells(r.day, r.provider, r.model, r.agent or "-", r.calls, r.input_tokens, r.output_tokens,
                             r.cached_tokens, cost))
    out.print(table)
