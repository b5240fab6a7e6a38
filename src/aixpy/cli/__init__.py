"""The ``aixpy`` command line: index, search, embed, doctor, version."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aixpy._version import __version__
from aixpy.cli._runtime import resolve
from aixpy.errors import AixpyError, UserError

__all__ = ["app", "main"]

app = typer.Typer(
    name="aixpy",
    help="One API over embedding providers, vector stores and LLMs. Works offline by default.\n\n"
    "aixpy index docs/ : chunk, embed (local model) and store under ./.aixpy/\n\n"
    "aixpy search \"how do I…\" : ranked results with score, source and snippet\n\n"
    "aixpy chat -m openai:gpt-4o-mini \"hi\" : any of 7 LLM providers, streamed\n\n"
    "Config comes from --config, then $AIXPY_CONFIG, then ./aixpy.yaml, else offline defaults.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="YAML config file (default: $AIXPY_CONFIG, then ./aixpy.yaml).",
                 show_default=False),
]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", help="Collection name (default: from config, or knowledge_base).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]

def _fail(e: BaseException) -> typer.Exit:
    err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(2 if isinstance(e, UserError) else 1)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except AixpyError as e:
        raise _fail(e) from None
    except (OSError, ValueError) as e:
        raise _fail(e) from None


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="Directory or file to index (md, txt, rst, html).")],
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    chunk_size: Annotated[int, typer.Option(help="Max characters per chunk.", min=50)] = 800,
    overlap: Annotated[int, typer.Option(help="Characters shared by consecutive chunks.", min=0)] = 120,
    as_json: JsonOpt = False,
) -> None:
    """Index documents: load, chunk, embed and upsert. Unchanged files are skipped (content hash)."""
    from aixpy.rag.indexer import Indexer

    with _errors():
        rt = resolve(config)
        t0 = time.perf_counter()
        with rt.open_embedder() as emb, rt.open_store() as store:
            coll = rt.open_collection(store, emb, collection)
            indexer = Indexer(emb, coll, chunk_size=chunk_size, overlap=overlap)
            with _progress(quiet=as_json) as progress:
                report = indexer.index_path(path, progress=progress)
            _save_if_snapshot(store)
            total = coll.count()
        elapsed = time.perf_counter() - t0
    if as_json:
        out.print_json(json.dumps({**report.as_dict(), "collection_count": total, "seconds": round(elapsed, 3)}))
    else:
        out.print(
            f"[bold green]indexed[/] {report.files_indexed} file(s), {report.chunks_embedded} chunk(s) embedded; "
            f"{report.files_unchanged} unchanged, {report.chunks_deleted} stale chunk(s) removed; "
            f"collection [bold]{rt.collection_name(collection)}[/] holds {total} chunk(s) "
            f"[dim]({elapsed:.1f}s, config: {rt.source})[/]"
        )
    for f in report.failures:
        err.print(f"[yellow]warning:[/] {f}", highlight=False)
    if report.failures:
        raise typer.Exit(1)


def _save_if_snapshot(store: Any) -> None:
    path = getattr(getattr(store, "config", None), "path", None)
    save = getattr(store, "save", None)
    if path and callable(save):
        save(path)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if quiet or (not err.is_terminal and not _force_progress()):
        yield None
        return
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task({"scan": "files", "embed": "chunks"}.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _force_progress() -> bool:
    import os

    return os.environ.get("AIXPY_PROGRESS") == "1"


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-k", help="Number of results.", min=1, max=1000)] = 5,
    min_score: Annotated[float | None, typer.Option(help="Drop results scoring below this.")] = None,
    where: Annotated[
        str | None, typer.Option("--filter", help='JSON filter, e.g. \'{"source": "guide.md"}\'.')
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Semantic search over an indexed collection: ranked results with score, source and snippet."""
    from aixpy.rag.indexer import search as run_search
    from aixpy.vectorstores import filters

    with _errors():
        if not query.strip():
            raise UserError("the query is empty")
        flt = filters.parse(json.loads(where)) if where else None
        rt = resolve(config)
        with rt.open_embedder() as emb, rt.open_store() as store:
            coll = rt.open_collection(store, emb, collection)
            if coll.count() == 0:
                raise UserError(f"collection {coll.name!r} is empty; run `aixpy index PATH` first")
            hits = run_search(emb, coll, query, limit=limit, min_score=min_score, filter=flt)
    if as_json:
        out.print_json(json.dumps([{"rank": h.rank, "score": round(h.score, 6), "source": h.source,
                                    "chunk": h.chunk, "id": h.id, "snippet": h.snippet} for h in hits]))
        return
    if not hits:
        out.print("no results")
        return
    table = Table(title=f"results for “{query}”", show_lines=True, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source")
    table.add_column("snippet", overflow="fold")
    for h in hits:
        table.add_row(str(h.rank), f"{h.score:.3f}", f"{h.source}#{h.chunk}", h.snippet)
    out.print(table)


@app.command()
def embed(
    text: Annotated[str, typer.Argument(help="Text to embed ('-' reads stdin).")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed one text and show its vector (model, dimensions, norm, first values)."""
    with _errors():
        if text == "-":
            text = sys.stdin.read()
        rt = resolve(config)
        with rt.open_embedder() as emb:
            t0 = time.perf_counter()
            vec = emb.embed(text)
            ms = (time.perf_counter() - t0) * 1000
            model, dims = emb.model(), emb.dimensions()
    if as_json:
        out.print_json(json.dumps({"model": model, "dimensions": dims, "embedding": vec}))
        return
    norm = sum(v * v for v in vec) ** 0.5
    head = ", ".join(f"{v:+.4f}" for v in vec[:8])
    out.print(f"model [bold]{model}[/]  dimensions {dims}  norm {norm:.4f}  ({ms:.1f} ms)\n[{head}, …]")


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check what is configured and whether it works: config, extras, embeddings, vector store."""
    from aixpy.cli._doctor import run_doctor

    ok = run_doctor(config, out)
    raise typer.Exit(0 if ok else 1)


@app.command()
def version() -> None:
    """Print the aixpy version."""
    out.print(f"aixpy {__version__}")


def _register_llm_commands() -> None:
    from aixpy.cli._llm import chat, models

    app.command()(chat)
    app.command()(models)


_register_llm_commands()


def main() -> None:
    """Console-script entry point."""
    app()
