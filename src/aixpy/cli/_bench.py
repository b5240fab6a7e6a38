"""``aixpy bench embeddings``: embedding providers side by side in one run.

For each provider: load time, single-text latency (p50/p95 of one-text calls after a warm-up),
batch throughput (texts/s of one ``embed_array`` call over all texts, median of ``--rounds``), the
speed-up of batching, and the cost per 1,000 texts when the model is priced. Every provider embeds
the same texts in the same process; a provider that cannot run gets a row saying why.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aixpy.cli._output import cells, clean, error_line, print_json, styled
from aixpy.errors import AixpyError, UserError

if TYPE_CHECKING:
    from aixpy.cli._runtime import Runtime
    from aixpy.embeddings.base import EmbeddingService
    from aixpy.embeddings.policies.cost import CostTracker

__all__ = ["Usage", "app", "bench_provider", "sample_texts", "tracked", "usage_from"]

app = typer.Typer(
    name="bench",
    help="Measure things side by side on this machine (embedding providers).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SEED_TEXT = ("vector search ranks documents by the similarity of their embeddings to the query "
          "a retry policy waits longer after each failure and honours the server's retry after header "
          "the planets of the solar system orbit the sun in nearly circular paths "
          "sourdough bread rises slowly because wild yeast ferments the dough overnight "
          "an index maps each term to the documents that contain it so lookups stay fast")
_WORDS = _SEED_TEXT.split()


@dataclass(slots=True)
class Usage:
    """Tokens and cost of an embedding call, as far as they are known."""

    tokens: int | None = None
    estimated: bool = False
    cost_usd: float | None = None
    price_per_1m: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "tokens_estimated": self.estimated, "cost_usd": self.cost_usd}

    def describe(self) -> str:
        tokens = f"{'~' if self.estimated else ''}{self.tokens} tokens" if self.tokens is not None else ""
        cost = "cost unknown" if self.cost_usd is None else f"${self.cost_usd:.8f}" if self.cost_usd else "free"
        return f"{tokens}, {cost}" if tokens else cost


def tracked(emb: EmbeddingService) -> tuple[EmbeddingService, CostTracker]:
    """``emb`` wrapped in the cost tracker (tokens: the provider's count, else tiktoken's if cached,
    else ~4 characters per token; dollars from the price table)."""
    from aixpy.embeddings.policies.cost import CostTracker, CostTrackingEmbeddings

    tracker = CostTracker()
    return CostTrackingEmbeddings(emb, tracker), tracker


def usage_from(tracker: CostTracker) -> Usage:
    """What ``tracker`` recorded: tokens and dollars (``None`` when the price is unknown)."""
    lines = tracker.totals()
    if not lines:
        return Usage()
    return Usage(sum(line.tokens for line in lines), any(line.estimated for line in lines), tracker.total_usd,
                 lines[0].price_per_1m)


def sample_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` deterministic sentences of 8-20 words (the same on every run)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "." for _ in range(n)]


@dataclass(slots=True)
class BenchRow:
    provider: str
    model: str = ""
    dimensions: int | None = None
    load_s: float | None = None
    single_p50_ms: float | None = None
    single_p95_ms: float | None = None
    batch_texts_per_s: float | None = None
    batch_speedup: float | None = None
    tokens_per_text: float | None = None
    cost_per_1k_texts_usd: float | None = None
    cost_estimated: bool = False
    error: str | None = None
    batch_rounds_s: list[float] = field(default_factory=list)


def bench_provider(rt: Runtime, name: str, texts: list[str], *, single_calls: int, rounds: int,
                   step: Callable[[str], None] | None = None) -> BenchRow:
    """Measure one provider; a failure becomes the row's ``error`` (one line), never an exception."""
    row = BenchRow(name)
    emb: EmbeddingService | None = None
    try:
        t0 = time.perf_counter()
        emb, tracker = tracked(rt.with_embedder(name).open_embedder())
        emb.embed(texts[0])  # warm-up: sessions, connections, lazy weights
        row.load_s = time.perf_counter() - t0
        row.model, row.dimensions = emb.model(), emb.dimensions()
        if step:
            step("single")
        lat = []
        for text in texts[:single_calls]:
            t = time.perf_counter()
            emb.embed(text)
            lat.append((time.perf_counter() - t) * 1000)
        row.single_p50_ms = statistics.median(lat)
        row.single_p95_ms = _percentile(lat, 0.95)
        if step:
            step("batch")
        for _ in range(rounds):
            tracker.reset()
            t = time.perf_counter()
            emb.embed_array(texts)
            row.batch_rounds_s.append(time.perf_counter() - t)
        row.batch_texts_per_s = len(texts) / statistics.median(row.batch_rounds_s)
        row.batch_speedup = row.batch_texts_per_s / (1000.0 / row.single_p50_ms)
        used = usage_from(tracker)  # of the last batch round
        row.tokens_per_text = used.tokens / len(texts) if used.tokens is not None else None
        if used.cost_usd is not None:
            row.cost_per_1k_texts_usd = used.cost_usd * 1000 / len(texts)
            row.cost_estimated = used.estimated
    except (AixpyError, OSError, ValueError) as e:
        row.error = f"{type(e).__name__}: {e}"
    finally:
        if emb is not None:
            emb.close()
    return row


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _configured(rt: Runtime) -> list[str]:
    from aixpy.cli._runtime import EMBEDDING_BLOCKS

    names = [rt.embeddings.provider]
    names += [n for n in EMBEDDING_BLOCKS if getattr(rt.embeddings, n, None) is not None]
    return list(dict.fromkeys(names))


def _load_texts(file: Path | None, n: int) -> list[str]:
    if file is None:
        return sample_texts(n)
    try:
        lines = [ln.strip() for ln in file.read_text(encoding="utf-8").splitlines()]
    except OSError as e:
        raise UserError(f"cannot read {file}: {e.strerror or e}") from None
    texts = [ln for ln in lines if ln]
    if not texts:
        raise UserError(f"{file} has no non-empty lines to embed")
    return texts[:n]


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _table(rows: list[BenchRow], n: int, single_calls: int) -> Table:
    table = Table(title=styled(f"embedding providers: {n} texts, single = median of {single_calls} one-text calls"),
                  title_justify="left")
    for col in ("provider", "model", "dims", "load s", "p50 ms (1 text)", "p95 ms", "batch texts/s",
                "batch vs single", "$ / 1k texts"):
        table.add_column(col, justify="left" if col in ("provider", "model") else "right")
    for r in rows:
        if r.error:
            table.add_row(*cells(r.provider, r.model or "-", *["-"] * 6), styled(("failed", "red")))
            continue
        if r.cost_per_1k_texts_usd is None:
            cost = "unknown"
        elif r.cost_per_1k_texts_usd == 0.0:
            cost = "free"
        else:
            cost = ("~" if r.cost_estimated else "") + f"{r.cost_per_1k_texts_usd:.6f}"
        table.add_row(*cells(r.provider, r.model, r.dimensions, _fmt(r.load_s, ".2f"), _fmt(r.single_p50_ms, ".2f"),
                             _fmt(r.single_p95_ms, ".2f"), _fmt(r.batch_texts_per_s, ",.1f"),
                             _fmt(r.batch_speedup, ".2f") + "x", cost))
    return table


@app.command()
def embeddings(
    providers: Annotated[str | None, typer.Option(
        "--providers", help="Comma-separated providers (default: embeddings.provider plus every provider "
        "with a block in the config).", show_default=False)] = None,
    texts: Annotated[int, typer.Option("--texts", "-n", help="How many texts to embed.", min=1,
                                       max=100_000)] = 200,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Embed the non-empty lines of this file "
                                              "instead of generated sentences.", show_default=False)] = None,
    single: Annotated[int, typer.Option("--single", help="One-text calls timed for the latency columns.",
                                        min=1, max=10_000)] = 50,
    rounds: Annotated[int, typer.Option("--rounds", help="Timed batch passes (median).", min=1, max=100)] = 3,
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file.",
                                               show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Single-text latency vs batch throughput (and cost per text when priced), one row per provider.

    Exit code 1 if any provider could not run (its row says why).
    """
    from aixpy.cli import _errors, _force_progress, err, out
    from aixpy.cli._runtime import resolve

    with _errors():
        rt = resolve(config)
        names = [p.strip() for p in providers.split(",") if p.strip()] if providers else _configured(rt)
        if not names:
            raise UserError("--providers is empty")
        corpus = _load_texts(file, texts)
        calls = min(single, len(corpus))
        rows: list[BenchRow] = []
        show = not as_json and (err.is_terminal or _force_progress())
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        columns = (TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn())
        with Progress(*columns, console=err, transient=True, disable=not show) as bar:
            task = bar.add_task("", total=len(names) * 3)
            for name in dict.fromkeys(names):
                bar.update(task, description=clean(f"{name}: load"))

                def step(phase: str, name: str = name) -> None:
                    bar.update(task, advance=1, description=clean(f"{name}: {phase}"))

                rows.append(bench_provider(rt, name, corpus, single_calls=calls, rounds=rounds, step=step))
                bar.update(task, completed=len(rows) * 3)
    if as_json:
        print_json(out, {"texts": len(corpus), "single_calls": calls, "rounds": rounds,
                         "rows": [asdict(r) for r in rows]})
    else:
        out.print(_table(rows, len(corpus), calls))
        out.print("[dim]batch vs single = batch texts/s ÷ (1000 / p50 ms); ~ = tokens estimated from characters[/]")
    for r in rows:
        if r.error:
            err.print(error_line(f"{r.provider}: {r.error}"), soft_wrap=True)
    if any(r.error for r in rows):
        raise typer.Exit(1)
