"""Bytes to text without silent damage, and YAML front matter (pure functions).

UTF-8 (with or without a BOM) and UTF-16/32 with a BOM are decoded directly. Anything else goes
through ``charset-normalizer`` (extra ``aixpy[docs]``). UTF-8 text with invalid bytes, and bytes no
encoding fits (binary data), raise :class:`UndecodableError` instead of turning into U+FFFD or mojibake.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from aixpy.errors import InvalidInputError, MissingDependencyError

__all__ = ["UndecodableError", "decode", "json_safe", "split_front_matter"]

INSTALL_DOCS = "pip install 'aixpy[docs]'"
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_UTF8_MULTI = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(\n|\Z)", re.DOTALL)


class UndecodableError(InvalidInputError):
    """A file whose bytes are not text in any encoding aixpy can detect."""


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes, path: Path) -> str:
    """``data`` as text; raises UndecodableError naming ``path`` when it is not text."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return _clean(data.decode(enc))
            except UnicodeDecodeError:
                break
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if _UTF8_MULTI.search(data):  # UTF-8 text with broken bytes: any other reading would be mojibake
            raise UndecodableError(f"{path}: invalid UTF-8 at byte {e.start} in otherwise UTF-8 text") from None
        text = _detect(data, path)
    sample = text[:4096]
    # NUL never occurs in text; a few other control characters do (ANSI colours in logs, a form feed)
    if "\x00" in sample or len(_CONTROL.findall(sample)) > max(8, len(sample) // 10):
        raise UndecodableError(f"{path}: binary content, not text")
    return _clean(text)


def _detect(data: bytes, path: Path) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        raise MissingDependencyError(f"charset-normalizer (to read {path.name}, which is not UTF-8)",
                                     INSTALL_DOCS) from None
    results = from_bytes(data)
    best = results.best()
    if best is None or b"\x00" in data:
        raise UndecodableError(f"{path}: cannot be decoded (not UTF-8, and no encoding fits)")
    # equally good readings (same chaos and coherence): prefer the most common legacy one, windows-1252
    for m in results:
        if (m.chaos, m.coherence) == (best.chaos, best.coherence) and "cp1252" in m.could_be_from_charset:
            return str(m)
    return str(best)


def json_safe(value: Any) -> Any:
    """``value`` with what a vector store cannot hold (dates, sets, odd keys) turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def split_front_matter(text: str, path: Path) -> tuple[str, dict[str, Any]]:
    """``(body, metadata)``: a leading ``---`` YAML block becomes metadata and leaves the text.

    The body keeps the block's line count as blank lines, so offsets and line numbers stay those of
    the file. Front matter that is not a YAML mapping raises InvalidInputError naming ``path``.
    """
    m = _FRONT.match(text)
    if m is None:
        return text, {}
    try:
        meta = yaml.safe_load(m.group(1) or "")
    except yaml.YAMLError as e:
        raise InvalidInputError(f"{path}: invalid YAML front matter ({e})") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{path}: front matter must be a YAML mapping, got {type(meta).__name__}")
    return "\n" * m.group(0).count("\n") + text[m.end():], json_safe(meta)
