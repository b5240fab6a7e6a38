"""Built-in loaders, one function per format: ``(data, path, options) -> Loaded`` (pure, no I/O).

Text formats are decoded by :func:`aixpy.rag._decode.decode`; binary formats (PDF, DOCX) read the
bytes themselves. PDF needs ``pypdf`` (extra ``aixpy[docs]``); DOCX is read with the stdlib
``zipfile`` and ``xml.etree`` (no dependency).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from aixpy.errors import InvalidInputError, MissingDependencyError
from aixpy.rag._decode import decode, json_safe, split_front_matter
from aixpy.rag._types import Loaded, LoadOptions, Segment

__all__ = ["html_to_text", "load_code", "load_docx", "load_html", "load_json", "load_markdown", "load_pdf",
           "load_text"]

INSTALL_DOCS = "pip install 'aixpy[docs]'"
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^(```|~~~)")


def load_text(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    """Plain text and reStructuredText: one segment."""
    return Loaded([Segment(decode(data, path))])


def load_code(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    """Source code: one segment; ``language`` (the suffix without its dot) in the metadata."""
    return Loaded([Segment(decode(data, path))], {"language": path.suffix.lower().lstrip(".")})


def markdown_sections(text: str) -> list[Segment]:
    """Split markdown at ATX headings (not inside code fences); each section's ``section`` metadata is
    its heading path, e.g. ``"Guide > Install"``. Text before the first heading has no ``section``."""
    sections: list[Segment] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    heading: str | None = None
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines)
        if body.strip():
            sections.append(Segment(body, {"section": heading} if heading else {}))

    for line in text.split("\n"):
        if _FENCE.match(line.lstrip()):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m is not None:
            flush()
            lines = []
            level = len(m.group(1))
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, m.group(2).strip())]
            heading = " > ".join(t for _, t in path)
        lines.append(line)
    flush()
    return sections


def load_markdown(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    """Markdown: YAML front matter becomes metadata (not text); sections split at headings."""
    body, meta = split_front_matter(decode(data, path), path)
    return Loaded(markdown_sections(body), meta)


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr",
                        "section", "article", "header", "footer", "blockquote", "table", "ul", "ol", "title",
                        "dl", "dt", "dd", "figure", "figcaption", "main", "nav", "aside", "form", "caption"})
    _CELL = frozenset({"td", "th"})

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
        elif tag in self._CELL:
            self.parts.append(" | ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:  # <br/>, <hr/>
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


def _extract(html: str) -> tuple[str, str | None]:
    p = _TextExtractor()
    p.feed(html)
    p.close()
    raw = "".join(p.parts)
    paras = [" ".join(block.split()).strip(" |") for block in raw.split("\n\n")]
    body = "\n\n".join(x for x in paras if x)
    if p.title and not body.startswith(p.title):
        body = p.title + "\n\n" + body
    return body, p.title


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, block elements separated by blank lines, table cells by ``" | "``
    (title first); scripts, styles and the head are dropped."""
    return _extract(html)[0]


def load_html(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    text, title = _extract(decode(data, path))
    return Loaded([Segment(text)], {"title": title} if title else {})


def load_pdf(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    """PDF through ``pypdf``: one segment per page, ``page`` (1-based) in its metadata."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise MissingDependencyError("pypdf (for PDF files)", INSTALL_DOCS) from None
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise InvalidInputError(f"{path}: not a readable PDF ({e})") from None
    meta: dict[str, Any] = {"pages": len(pages)}
    title = reader.metadata.title if reader.metadata is not None else None
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    return Loaded([Segment(t, {"page": i}) for i, t in enumerate(pages, 1) if t.strip()], meta)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def load_docx(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    """DOCX read with the stdlib: paragraphs (and table cells, separated by ``" | "``) of word/document.xml."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            root = ElementTree.fromstring(z.read("word/document.xml"))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as e:
        raise InvalidInputError(f"{path}: not a readable DOCX ({e})") from None
    paras: list[str] = []
    body = root.find(f"{_W}body")
    for block in (body if body is not None else root):
        if block.tag == f"{_W}p":
            paras.append(_docx_text(block))
        elif block.tag == f"{_W}tbl":
            for row in block.iter(f"{_W}tr"):
                cells = [" ".join(_docx_text(p) for p in tc.iter(f"{_W}p")).strip() for tc in row.iter(f"{_W}tc")]
                paras.append(" | ".join(c for c in cells if c))
    return Loaded([Segment("\n\n".join(p for p in paras if p.strip()))])


def _docx_text(p: ElementTree.Element) -> str:
    out: list[str] = []
    for el in p.iter():
        if el.tag == f"{_W}t" and el.text:
            out.append(el.text)
        elif el.tag == f"{_W}tab":
            out.append("\t")
        elif el.tag in (f"{_W}br", f"{_W}cr"):
            out.append("\n")
    return "".join(out)


def _record(obj: Any, index: int, fields: tuple[str, ...]) -> Segment:
    if not isinstance(obj, dict):
        return Segment(obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False), {"record": index})
    text = "\n\n".join(str(obj[f]) for f in fields if isinstance(obj.get(f), str | int | float) and str(obj[f]).strip())
    meta = {k: json_safe(v) for k, v in obj.items() if k not in fields and isinstance(k, str) and k}
    meta["record"] = index
    return Segment(text, meta)


def load_json(data: bytes, path: Path, options: LoadOptions) -> Loaded:
    """JSON (an object or a list of them) and JSONL: one segment per record. The text is the record's
    ``options.text_fields`` present (in that order); its other top-level fields are its metadata."""
    text = decode(data, path)
    try:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            doc = json.loads(text)
            records = doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{path}: invalid JSON ({e})") from None
    return Loaded([_record(r, i, options.text_fields) for i, r in enumerate(records)])
