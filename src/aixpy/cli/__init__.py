"""The ``aixpy`` command line: index, search, embed, collections, bench, chat, models, doctor, version."""

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
from rich.text import Text

from aixpy._version import __version__
from aixpy.cli._runtime import resolve, save_if_snapshot
from aixpy.errors import AixpyError, UserError

__all__ = ["app", "main"]

app = typer.Typer(
    name="aixpy",
    help="One API over embedding providers, vector stores and LLMs. Works offline by default.\n\n"
    "aixpy index docs/ : chunk, embed (local model) and store under ./.aixpy/\n\n"
    "aixpy search \"how do I…\" : ranked results with score, source and snippet\n\n"
    "aixpy collections list --store pgvector : what a vector store holds\n\n"
    "aixpy bench embeddings --providers local,hash : latency, throughput and cost side by side\n\n"
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
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Vector store: memory, qdrant, pgvector or firestore, overriding "
                 "vectorstore.provider (that provider's block of the config is kept).", show_default=False),
]

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


def _parse_meta(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that reads as JSON (a number, true, a list...) keeps that type."""
    meta: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--meta takes key=value, got {pair!r}")
        try:
            meta[key.strip()] = json.loads(value)
        except ValueError:
            meta[key.strip()] = value
    return meta


def _open_checked(rt: Any, vs: Any, emb: Any, name: str | None, action: str) -> Any:
    """The collection, after checking that an existing one was built with ``emb``'s model (the error
    names both models) before the store compares the dimensions."""
    from aixpy.rag.indexer import signature_of
    from aixpy.rag.manifest import check_signature

    if rt.collection_name(name) in vs.list_collections():
        check_signature(vs.collection(rt.collection_name(name)), signature_of(emb), action)
    return rt.open_collection(vs, emb, name)


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="Directory or file to index (md, txt, rst, html, pdf, docx, "
                                               "json/jsonl, source code).")],
    config: ConfigOpt = None,
    collection: CollectionOpt = None,
    store: StoreOpt = None,
    chunk_size: Annotated[int | None, typer.Option(
        help="Max tokens per chunk, in the embedding model's tokenizer (default: the model's window, "
        "254 word-pieces for the local model).", min=8, show_default=False)] = None,
    overlap: Annotated[int | None, typer.Option(
        help="Tokens shared by consecutive chunks (default: chunk size / 8).", min=0, show_default=False)] = None,
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Keep chunks of files no longer under PATH.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Re-embed every file, even unchanged ones.")] = False,
    meta: Annotated[list[str] | None, typer.Option(
        "--meta", help="key=value added to every chunk's metadata (repeatable).", show_default=False)] = None,
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", help="Tag added to every chunk (repeatable).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index documents: load, chunk, embed and upsert. Unchanged files are skipped (content hash);
    chunks of files deleted under PATH are removed (unless --no-prune)."""
    from aixpy.rag.indexer import Indexer
    from aixpy.rag.manifest import CHUNKS

    with _errors():
        extra = _parse_meta(meta or [])
        rt = resolve(config, store=store)
        t0 = time.perf_counter()
        with rt.open_embedder() as emb, rt.open_store() as vs:
            coll = _open_checked(rt, vs, emb, collection, "index run")
            indexer = Indexer(emb, coll, chunk_size=chunk_size, overlap=overlap, prune=not no_prune, force=force,
                              metadata=extra, tags=tag or [])
            with _progress(quiet=as_json) as progress:
                report = indexer.index_path(path, progress=progress)
            save_if_snapshot(vs)
            total, chunks = coll.count(), coll.count(CHUNKS)
        elapsed = time.perf_counter() - t0
    if as_json:
        out.print_json(json.dumps({**report.as_dict(), "collection_count": total, "collection_chunks": chunks,
                                   "seconds": round(elapsed, 3)}))
    else:
        out.print(Text.assemble(
            ("indexed", "bold green"),
            f" {report.files_indexed} file(s), {report.chunks_embedded} chunk(s) embedded; "
            f"{report.files_unchanged} unchanged, {report.files_skipped} skipped, {report.files_pruned} pruned, "
            f"{report.chunks_deleted} stale chunk(s) removed; collection ",
            (rt.collection_name(collection), "bold"),
            f" ({rt.vectorstore.provider}) holds {chunks} chunk(s) ",
            (f"({elapsed:.1f}s, chunks of <= {report.chunk_size} tokens by the {report.tokenizer}, "
             f"config: {rt.source})", "dim"),
        ))
    for s in report.skipped:
        err.print(Text.assemble(("skipped: ", "yellow"), f"{s['path']}: {s['reason']}"), highlight=False)
    for w in report.warnings + report.failures:
        err.print(Text.assemble(("warning: ", "yellow"), w), highlight=False)
    if report.failures:
        raise typer.Exit(1)


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
    store: StoreOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-k", help="Number of results.", min=1, max=1000)] = 5,
    min_score: Annotated[float | None, typer.Option(help="Drop results scoring below this.")] = None,
    where: Annotated[
        str | None, typer.Option("--filter", help='JSON filter, e.g. \'{"source": "guide.md"}\'.')
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Semantic search over an indexed collection: ranked results with score, source and snippet."""
    from aixpy.rag.indexer import search as run_search
    from aixpy.rag.manifest import CHUNKS
    from aixpy.vectorstores import filters

    with _errors():
        if not query.strip():
            raise UserError("the query is empty")
        flt = filters.parse(json.loads(where)) if where else None
        rt = resolve(config, store=store)
        with rt.open_embedder() as emb, rt.open_store() as vs:
            name = rt.collection_name(collection)
            if name not in vs.list_collections():
                raise UserError(f"collection {name!r} is empty; run `aixpy index PATH"
                                f"{' --store ' + store if store else ''}"
                                f"{' --collection ' + name if collection else ''}` first")
            coll = _open_checked(rt, vs, emb, collection, "search")
            if coll.count(CHUNKS) == 0:
                raise UserError(f"collection {coll.name!r} is empty; run `aixpy index PATH` first")
            hits = run_search(emb, coll, query, limit=limit, min_score=min_score, filter=flt)
    if as_json:
        out.print_json(json.dumps([{"rank": h.rank, "score": round(h.score, 6), "source": h.source,
                                    "chunk": h.chunk, "id": h.id, "path": h.path, "snippet": h.snippet}
                                   for h in hits]))
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
    texts: Annotated[list[str], typer.Argument(help="Text(s) to embed ('-' reads one text from stdin).",
                                               show_default=False)],
    provider: Annotated[str | None, typer.Option(
        "--provider", "-p", help="Embeddings provider (local, hash, openai, huggingface, huggingface_tei, "
        "ollama), overriding embeddings.provider.", show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model of that provider.",
                                              show_default=False)] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed text(s): shows model, dimensions, latency, tokens and cost when known, and the first values."""
    from aixpy.cli._bench import tracked, usage_from

    with _errors():
        if texts == ["-"]:
            texts = [sys.stdin.read()]
        rt = resolve(config, provider=provider, model=model)
        emb, tracker = tracked(rt.open_embedder())
        with emb:
            t0 = time.perf_counter()
            vecs: list[list[float]] = emb.embed_array(texts).tolist()
            ms = (time.perf_counter() - t0) * 1000
            name, dims, used = emb.model(), emb.dimensions(), usage_from(tracker)
    info: dict[str, Any] = {"provider": rt.embeddings.provider, "model": name, "dimensions": dims,
                            "texts": len(vecs), "latency_ms": round(ms, 3), **used.as_dict()}
    if as_json:
        if len(vecs) == 1:
            info["embedding"] = vecs[0]
        info["embeddings"] = vecs
        out.print_json(json.dumps(info))
        return
    cost = f"  {used.describe()}" if used.tokens is not None else ""
    out.print(f"{rt.embeddings.provider} model [bold]{name}[/]  dimensions {dims}  {len(vecs)} text(s) in "
              f"{ms:.1f} ms{cost}", highlight=False)
    for text, vec in zip(texts, vecs, strict=True):
        norm = sum(v * v for v in vec) ** 0.5
        head = ", ".join(f"{v:+.4f}" for v in vec[:8])
        label = text if len(text) <= 40 else text[:39] + "…"
        out.print(f"[dim]{label!r}[/] norm {norm:.4f} [{head}, …]", highlight=False)


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


def _register_commands() -> None:
    from aixpy.cli._bench import app as bench_app
    from aixpy.cli._collections import app as collections_app
    from aixpy.cli._llm import chat, models

    app.command()(chat)
    app.command()(models)
    app.add_typer(collections_app, name="collections")
    app.add_typer(bench_app, name="bench")


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()
