"""``aixpy collections list|stats|drop``: what a vector store holds, and removing a collection.

Nothing here creates a collection: every command checks ``list_collections()`` before opening one,
and opens it without options so the backend reports the options it was created with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aixpy.cli._output import cells, clean, print_json, styled
from aixpy.errors import NotFoundError

app = typer.Typer(
    name="collections",
    help="List, inspect and drop the collections of the configured vector store (or --store).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Vector store: memory, qdrant, pgvector or firestore (default: from config).",
                 show_default=False),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="YAML config file (default: $AIXPY_CONFIG, then ./aixpy.yaml).",
                 show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = (Path(root) / f).stat()
                # allocated blocks, not the apparent size: Qdrant preallocates sparse files
                total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
            except OSError:
                continue
    return total


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - loop always returns


def _size(store: Any, coll: Any, count: int) -> tuple[int | None, str]:
    """Bytes used and how they were measured, when that is cheap to know; ``(None, "")`` otherwise."""
    stats = getattr(coll, "stats", None)
    if callable(stats):
        info = stats()
        for key in ("size_bytes", "bytes", "size"):
            if isinstance(info, dict) and isinstance(info.get(key), int):
                return int(info[key]), "reported by the backend"
    provider = getattr(store, "provider", "")
    path = getattr(store, "path", None)
    if provider == "qdrant" and isinstance(path, Path) and (path / coll.name).is_dir():
        return _dir_size(path / coll.name), "on disk"
    if provider == "memory" and coll.dimensions:
        return count * int(coll.dimensions) * 4, "vectors in memory (float32)"
    return None, ""


def _sample_model(coll: Any) -> str | None:
    """The ``embedding_model`` stored with one document (the nearest to an all-ones vector)."""
    from aixpy.vectorstores.types import Query

    if not coll.dimensions:
        return None
    res = coll.query(Query([1.0] * int(coll.dimensions), limit=1))
    return res.matches[0].document.embedding_model if res.matches else None


def _open_existing(store: Any, name: str) -> Any:
    names = store.list_collections()
    if name not in names:
        known = ", ".join(names) or "none"
        raise NotFoundError(f"no collection {name!r} in the {store.provider} store (collections: {known})")
    return store.collection(name)


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer (end of input) means no."""
    try:
        return bool(typer.confirm(question, default=False, err=True))
    except typer.Abort:  # end of input
        typer.echo("", err=True)
        return False


def collection_info(store: Any, name: str, *, detailed: bool = False) -> dict[str, Any]:
    """Name, count, dimensions and metric of collection ``name``; with ``detailed`` also its options,
    the embedding model of a sample document and its size when cheap to know."""
    coll = _open_existing(store, name)
    count = coll.count()
    opts = coll.options
    info: dict[str, Any] = {"name": name, "count": count, "dimensions": coll.dimensions, "metric": opts.metric}
    if detailed:
        size, how = _size(store, coll, count)
        info.update({
            "provider": store.provider,
            "ttl_seconds": opts.ttl.total_seconds() if opts.ttl is not None else None,
            "dedup": opts.dedup,
            "dedup_threshold": opts.dedup_threshold if opts.dedup else None,
            "max_documents": opts.max_documents,
            "embedding_model": _sample_model(coll) if count else None,
            "size_bytes": size,
            "size_note": how or None,
        })
    return info


@app.command("list")
def list_(config: ConfigOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List collections: name, document count, dimensions and metric."""
    from aixpy.cli import _errors, out
    from aixpy.cli._runtime import resolve

    with _errors():
        rt = resolve(config, store=store)
        with rt.open_store() as vs:
            rows = [collection_info(vs, n) for n in vs.list_collections()]
            provider = vs.provider
    if as_json:
        print_json(out, rows)
        return
    if not rows:
        out.print(styled(f"no collections in the {provider} store ({rt.source}); create one with "
                         "`aixpy index PATH`"), soft_wrap=True)
        return
    table = Table(title=styled(f"{provider} collections"), title_justify="left")
    for col, justify in (("name", "left"), ("count", "right"), ("dimensions", "right"), ("metric", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*cells(r["name"], f"{r['count']:,}", r["dimensions"] or "-", r["metric"]))
    out.print(table)


@app.command()
def stats(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Details of one collection: count, dimensions, metric, TTL, dedup, max_documents, model, size."""
    from aixpy.cli import _errors, out
    from aixpy.cli._runtime import resolve

    with _errors():
        rt = resolve(config, store=store)
        with rt.open_store() as vs:
            info = collection_info(vs, name, detailed=True)
    if as_json:
        print_json(out, info)
        return
    table = Table(title=styled(f"collection {name} ({info['provider']})"), title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value")
    ttl = info["ttl_seconds"]
    rows = [
        ("documents", f"{info['count']:,}"),
        ("dimensions", str(info["dimensions"] or "- (no document yet)")),
        ("metric", info["metric"]),
        ("ttl", f"{ttl:g} s" if ttl is not None else "none"),
        ("dedup", f"on (threshold {info['dedup_threshold']})" if info["dedup"] else "off"),
        ("max_documents", f"{info['max_documents']:,}" if info["max_documents"] else "unlimited"),
        ("embedding model", info["embedding_model"] or "-"),
        ("size", _human_bytes(info["size_bytes"]) + (f" ({info['size_note']})" if info["size_note"] else "")),
    ]
    for k, v in rows:
        table.add_row(*cells(k, v))
    out.print(table)


@app.command()
def drop(
    name: Annotated[str, typer.Argument(help="Collection to delete, with all its documents.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Delete a collection and every document in it. Asks first unless --yes."""
    from aixpy.cli import _errors, _waiting_for_lock, err, out
    from aixpy.cli._runtime import resolve

    with _errors():
        rt = resolve(config, store=store)
        with rt.writing_store(on_wait=_waiting_for_lock) as vs:
            count = collection_info(vs, name)["count"]
            if not yes and not _confirm(clean(f"drop collection {name!r} ({count:,} documents) from the "
                                              f"{vs.provider} store?")):
                err.print(styled(("not dropped", "yellow"), " (pass --yes to skip the question)"))
                raise typer.Exit(1)
            vs.drop_collection(name)
    out.print(styled("dropped collection ", (name, "bold"), f" ({count:,} documents)"))
