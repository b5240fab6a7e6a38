"""Load documents from a directory tree through a registry of loaders, one per format.

Built-in loaders: ``markdown``, ``text`` (txt, rst), ``html``, ``pdf`` (needs ``aixpy[docs]``),
``docx``, ``json`` (json, jsonl) and ``code`` (common source files). Add one with
:func:`register_loader` or the ``aixpy.loaders`` entry-point group (then map suffixes to it with
:func:`register_loader`'s ``suffixes``). A file no loader can read raises with the reason (the
indexer reports it as skipped), never loaded as damaged text.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aixpy._registry import Registry
from aixpy.errors import InvalidInputError
from aixpy.rag._formats import html_to_text
from aixpy.rag._types import Loaded, Loader, LoadOptions, Segment

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadOptions",
    "Loaded",
    "Loader",
    "Segment",
    "SourceFile",
    "html_to_text",
    "iter_files",
    "load_file",
    "loader_for",
    "loader_registry",
    "register_loader",
    "walk",
]

MAX_FILE_BYTES = 20 * 1024 * 1024
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".aixpy", ".tox"})
_F = "aixpy.rag._formats:"
loader_registry: Registry[Loader] = Registry("loader", "aixpy.loaders", {
    "markdown": _F + "load_markdown", "text": _F + "load_text", "html": _F + "load_html", "pdf": _F + "load_pdf",
    "docx": _F + "load_docx", "json": _F + "load_json", "code": _F + "load_code",
})
"""Loader name -> ``loader(data, path, options) -> Loaded``."""

_CODE = (".py", ".pyi", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc",
         ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".sql", ".toml", ".yaml", ".yml",
         ".css", ".lua", ".r", ".jl")
_SUFFIXES: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown", ".txt": "text", ".rst": "text", ".html": "html",
    ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".json": "json", ".jsonl": "json", ".ndjson": "json",
    **dict.fromkeys(_CODE, "code"),
}
SUPPORTED_SUFFIXES = frozenset(_SUFFIXES)
"""The suffixes of the built-in loaders (see :func:`loader_for` for the current mapping)."""


def register_loader(name: str, loader: Loader | str, suffixes: Iterable[str] = ()) -> None:
    """Register (or replace) loader ``name`` and map each of ``suffixes`` (".ext") to it."""
    loader_registry.register(name, loader)
    for s in suffixes:
        if not s.startswith("."):
            raise InvalidInputError(f"suffix {s!r} must start with '.'")
        _SUFFIXES[s.lower()] = loader_registry.canonical(name)


def loader_for(path: Path) -> str | None:
    """The name of the loader for ``path`` (by suffix), or ``None`` when no loader takes it."""
    return _SUFFIXES.get(path.suffix.lower())


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One loaded file. ``source`` is the path relative to the indexed root ('/' separators); ``path``
    the absolute one; ``text`` all segments joined; ``metadata`` what the loader found (front matter,
    title, page count...)."""

    source: str
    path: Path
    text: str
    sha256: str
    segments: tuple[Segment, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


def load_file(path: Path, root: Path, options: LoadOptions | None = None) -> SourceFile:
    """Read and parse one file with the loader of its suffix. Raises InvalidInputError (or
    MissingDependencyError) with the reason when the file cannot be loaded."""
    name = loader_for(path)
    if name is None:
        raise InvalidInputError(f"{path}: unsupported file type")
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInputError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    loaded = loader_registry.resolve(name)(data, path, options or LoadOptions())
    rel = path.relative_to(root).as_posix() if path != root else path.name
    segments = tuple(s for s in loaded.segments if s.text.strip())
    text = "\n\n".join(s.text for s in segments)
    return SourceFile(rel, path.resolve(), text, hashlib.sha256(data).hexdigest(), segments, loaded.metadata)


def walk(root: Path) -> Iterator[tuple[Path, bool]]:
    """Every visible file under ``root`` (sorted, skipping VCS/venv/hidden dirs) with whether a loader
    takes it; ``root`` itself when it is a file."""
    if root.is_file():
        yield root, loader_for(root) is not None
        return
    if not root.is_dir():
        raise InvalidInputError(f"{root}: no such file or directory")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.startswith(".") and p.is_file():
                yield p, loader_for(p) is not None


def iter_files(root: Path) -> Iterator[Path]:
    """Supported files under ``root`` (or ``root`` itself), sorted, skipping VCS/venv/hidden dirs."""
    if root.is_file() and loader_for(root) is None:
        raise InvalidInputError(f"{root}: unsupported file type (use {', '.join(sorted(_SUFFIXES))})")
    yield from (p for p, ok in walk(root) if ok)
