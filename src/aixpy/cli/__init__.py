"""The ``aixpy`` command line: index, search, embed, collections, bench, chat, models, usage, doctor, version."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

try:
    from typer._click.exceptions import ClickException  # typer >= 0.22 vendors click
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import ClickException  # type: ignore[assignment]

from aixpy._version import __version__
from aixpy.cli._output import cells, error_line, print_json, styled
from aixpy.cli._runtime import resolve
from aixpy.errors import AixpyError, UserError

__all__ = ["app", "main"]

out = Console()
err = Console(stderr=True)


class _Group(TyperGroup):
    """The top-level command group: a usage error (unknown option, bad value, missing argument) is one
    line on stderr naming the option and where the help is, exit 2; no box, no traceback."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except ClickException as e:
            _click_error(e)
        except typer.Abort:
            err.print(error_line("aborted"), soft_wrap=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _click_error(e: ClickException) -> NoReturn:
    if type(e).__name__ == "NoArgsIsHelpError":  # the help is already printed
        sys.exit(e.exit_code)
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    err.print(error_line(e.format_message() + hint), soft_wrap=True)
    sys.exit(e.exit_code)


app = typer.Typer(
    name="aixpy",
    help="One API over embedding providers, vector stores and LLMs. Works offline by default.\n\n"
    "aixpy index docs/ : chunk, embed (local model) and store under ./.aixpy/\n\n"
    "aixpy search \"how do I…\" : ranked results with score, source and snippet\n\n"
    "aixpy collections list --store pgvector : what a vector store holds\n\n"
    "aixpy bench embeddings --providers local,hash : latency, throughput and cost side by side\n\n"
    "aixpy chat -m openai:gpt-4o-mini \"hi\" : any of 7 LLM providers, streamed\n\n"
    "aixpy ask -m openai:gpt-4o-mini \"how do I…\" : an answer from the indexed documents, with sources\n\n"
    "Config comes from --config, then $AIXPY_CONFIG, then ./aixpy.yaml, else offline defaults.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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


def _show_version(value: bool) -> None:
    if value:
        out.print(styled(f"aixpy {__version__}"))
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the aixpy version and exit.",
                                          callback=_show_version, is_eager=True)] = False,
) -> None:
    """One API over embedding providers, vector stores and LLMs."""


def _fail(e: BaseException) -> typer.Exit:
    err.print(error_line(e), soft_wrap=True)
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
    engine: Annotated[str, typer.Option(
        "--engine", help="local (this process) or ray (read, chunk and embed on a Ray cluster; needs "
        "aixpy[ray] and a server-mode store).")] = "local",
    address: Annotated[str | None, typer.Option(
        "--address", help="Ray cluster address with --engine ray (default: start a local one).",
        show_default=False)] = None,
) -> None:
    """Index documents: load, chunk, embed and upsert. Unchanged files are skipped (content hash);
    chunks of files deleted under PATH are removed (unless --no-prune)."""
    from aixpy.rag.indexer import Indexer
    from aixpy.rag.manifest import CHUNKS

    with _errors():
        if chunk_size is not None and overlap is not None and overlap >= chunk_size:
            raise UserError(f"--overlap {overlap} must be less than --chunk-size {chunk_size}: pass "
                            f"--overlap {chunk_size - 1} or less (default: an eighth of it), or a --chunk-size above "
                            f"{overlap}")
        extra = _parse_meta(meta or [])
        rt = resolve(config, store=store)
        if engine not in ("local", "ray"):
            raise UserError(f"--engine takes local or ray, got {engine!r}")
        if address is not None and engine != "ray":
            raise UserError("--address needs --engine ray")
        if engine == "ray":
            from aixpy.rag.ray_engine import check_store

            check_store(rt.store_config())
        t0 = time.perf_counter()
        with rt.open_embedder() as emb, rt.writing_store(on_wait=_waiting_for_lock) as vs:
            coll = _open_checked(rt, vs, emb, collection, "index run")
            indexer = Indexer(emb, coll, chunk_size=chunk_size, overlap=overlap, prune=not no_prune, force=force,
                              metadata=extra, tags=tag or [])
            with _progress(quiet=as_json) as progress:
                if engine == "ray":
                    from aixpy.rag.ray_engine import RayOptions, index_path_ray

                    report = index_path_ray(indexer, path, rt.embeddings, RayOptions(address), progress)
                else:
                    report = indexer.index_path(path, progress=progress)
            total, chunks = coll.count(), coll.count(CHUNKS)
        elapsed = time.perf_counter() - t0
    if as_json:
        print_json(out, {**report.as_dict(), "collection_count": total, "collection_chunks": chunks,
                         "seconds": round(elapsed, 3)})
    else:
        out.print(styled(
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
        err.print(error_line(f"{s['path']}: {s['reason']}", "skipped:", "yellow"), soft_wrap=True)
    for w in report.warnings + report.failures:
        err.print(error_line(w, "warning:", "yellow"), soft_wrap=True)
    if report.failures:
        raise typer.Exit(1)


def _waiting_for_lock(lock: Path) -> None:
    err.print(styled(("waiting", "yellow"), f" for another aixpy process to finish writing {lock.parent} "
                     f"({lock.name})"), soft_wrap=True)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    if quiet or (not err.is_terminal and not _force_progress()):
        yield None
        return
    columns = (TextColumn("{task.description:<10}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
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
    hybrid: Annotated[bool, typer.Option(
        "--hybrid", help="Fuse semantic and keyword (BM25) rankings with reciprocal rank fusion (k=60); "
                         "scores are then fused scores. Not on firestore.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Semantic search over an indexed collection: ranked results with score, source and snippet."""
    from aixpy.rag.indexer import search as run_search
    from aixpy.rag.manifest import CHUNKS

    with _errors():
        if not query.strip():
            raise UserError("the query is empty")
        if hybrid and min_score is not None:
            raise UserError("--min-score cannot be combined with --hybrid (fused scores are rank-based)")
        flt = _parse_filter(where) if where else None
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
            if hybrid and not coll.supports_keyword:
                raise UserError(f"--hybrid: collection {coll.name!r} of the {vs.provider} store has no keyword "
                                "index; search without --hybrid")
            hits = run_search(emb, coll, query, limit=limit, min_score=min_score, filter=flt, hybrid=hybrid)
    if as_json:
        print_json(out, [{"rank": h.rank, "score": round(h.score, 6), "source": h.source, "chunk": h.chunk,
                          "id": h.id, "path": h.path, "snippet": h.snippet} for h in hits])
        return
    if not hits:
        out.print("no results")
        return
    table = Table(title=styled("results for “", query, "”"), show_lines=True, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source")
    table.add_column("snippet", overflow="fold")
    for h in hits:
        table.add_row(*cells(h.rank, f"{h.score:.3f}", f"{h.source}#{h.chunk}", h.snippet))
    out.print(table)


def _parse_filter(where: str) -> Any:
    from aixpy.vectorstores import filters

    example = """e.g. --filter '{"source": "guide.md"}'"""
    try:
        return filters.parse(json.loads(where))
    except json.JSONDecodeError as e:
        raise UserError(f"--filter is not valid JSON ({e.msg} at character {e.pos + 1}); {example}") from None
    except (UserError, ValueError, TypeError) as e:
        raise UserError(f"--filter: {e}; {example}") from None


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
        print_json(out, info)
        return
    cost = f"  {used.describe()}" if used.tokens is not None else ""
    out.print(styled(f"{rt.embeddings.provider} model ", (name, "bold"), f"  dimensions {dims}  {len(vecs)} "
                     f"text(s) in {ms:.1f} ms{cost}"))
    for text, vec in zip(texts, vecs, strict=True):
        norm = sum(v * v for v in vec) ** 0.5
        head = ", ".join(f"{v:+.4f}" for v in vec[:8])
        label = text if len(text) <= 40 else text[:39] + "…"
        out.print(styled((repr(label), "dim"), f" norm {norm:.4f} [{head}, …]"))


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check what is configured and whether it works: config, extras, embeddings, vector store."""
    from aixpy.cli._doctor import run_doctor

    raise typer.Exit(run_doctor(config, out, err))


@app.command()
def version() -> None:
    """Print the aixpy version."""
    out.print(styled(f"aixpy {__version__}"))


def _register_commands() -> None:
    from aixpy.cli._ask import ask
    from aixpy.cli._bench import app as bench_app
    from aixpy.cli._collections import app as collections_app
    from aixpy.cli._llm import chat, models
    from aixpy.cli._run import run
    from aixpy.cli._serve import serve
    from aixpy.cli._usage import usage

    app.command()(ask)
    app.command()(chat)
    app.command()(models)
    app.command()(run)
    app.command()(serve)
    app.command()(usage)
    app.add_typer(collections_app, name="collections")
    app.add_typer(bench_app, name="bench")


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()
