"""Load text documents from a directory tree (md, txt, rst, html)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from aixpy.errors import InvalidInputError

__all__ = ["SUPPORTED_SUFFIXES", "SourceFile", "html_to_text", "iter_files", "load_file"]

SUPPORTED_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst", ".html", ".htm"})
MAX_FILE_BYTES = 20 * 1024 * 1024
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".aixpy", ".tox"})


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One loaded file. ``source`` is the path relative to the indexed root, with '/' separators."""

    source: str
    path: Path
    text: str
    sha256: str


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
                        "section", "article", "header", "footer", "blockquote", "table", "ul", "ol", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is None:
            self.title = data.strip() or None
        if not self._skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, paragraphs separated by blank lines (title first)."""
    p = _TextExtractor()
    p.feed(html)
    p.close()
    raw = "".join(p.parts)
    paras = [" ".join(block.split()) for block in raw.split("\n\n")]
    body = "\n\n".join(x for x in paras if x)
    if p.title and not body.startswith(p.title):
        body = p.title + "\n\n" + body
    return body


def load_file(path: Path, root: Path) -> SourceFile:
    """Read one supported file as UTF-8 (invalid bytes replaced); HTML is reduced to its text."""
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInputError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n")
    if path.suffix.lower() in (".html", ".htm"):
        text = html_to_text(text)
    rel = path.relative_to(root).as_posix() if path != root else path.name
    return SourceFile(rel, path, text, hashlib.sha256(data).hexdigest())


def iter_files(root: Path) -> Iterator[Path]:
    """Supported files under ``root`` (or ``root`` itself), sorted, skipping VCS/venv/hidden dirs."""
    if root.is_file():
        if root.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise InvalidInputError(f"{root}: unsupported file type (use {', '.join(sorted(SUPPORTED_SUFFIXES))})")
        yield root
        return
    if not root.is_dir():
        raise InvalidInputError(f"{root}: no such file or directory")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in SUPPORTED_SUFFIXES and not name.startswith(".") and p.is_file():
                yield p
