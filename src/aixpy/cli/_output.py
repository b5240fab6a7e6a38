"""Printing data on a terminal safely: the one place the CLI turns data into something printable.

Data (queries, indexed text, file and config names, error messages, provider answers) is never
interpreted as Rich markup: it goes into :class:`rich.text.Text` objects, so ``[/etc]`` prints as
``[/etc]`` and ``[link=...]`` never becomes a live hyperlink. Terminal escape sequences (colours,
cursor moves, OSC 8 hyperlinks, window titles) are removed from it and other control characters are
replaced by U+FFFD, so a document cannot repaint or retitle the terminal. JSON output escapes them.
Only literal strings written in the CLI's own source carry styles, given as ``(text, style)`` pairs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["cells", "clean", "error_line", "one_line", "print_json", "styled"]

# ESC-introduced sequences: CSI (colours, cursor), OSC (titles, OSC 8 links), DCS/SOS/PM/APC strings,
# two-byte escapes, a lone ESC; and the 8-bit CSI/OSC forms.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|\x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
# C0 (but tab and newline), DEL, C1, and the bidirectional overrides/isolates that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")

Part = object | tuple[object, str]


def clean(value: object) -> str:
    """``str(value)`` fit for a terminal: escape sequences removed, other control characters replaced."""
    text = str(value)
    if text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub("\ufffd", text)


def styled(*parts: Part) -> Text:
    """A :class:`Text` of ``parts``: each a value (printed as is, after :func:`clean`) or a
    ``(value, style)`` pair. Never parsed as markup."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            value, style = part
            out.append(clean(value), style=style)
        else:
            out.append(clean(part))
    return out


def cells(*values: object) -> list[Text]:
    """Table cells: one :class:`Text` per value (``table.add_row(*cells(...))``), never markup."""
    return [Text(clean(v)) for v in values]


def one_line(value: object) -> str:
    """:func:`clean` text on one line (error messages: one line on stderr)."""
    return " ".join(line.strip() for line in clean(value).splitlines() if line.strip())


def error_line(error: BaseException | str, label: str = "error:", style: str = "bold red") -> Text:
    """``error: <message>`` on one line."""
    return styled((label, style), " ", one_line(error))


def print_json(console: Console, data: Any) -> None:
    """``data`` as indented JSON on ``console``: control characters and bidi overrides escaped as
    ``\\uXXXX`` (json escapes only C0 by itself), never markup, never wrapped."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    text = _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    console.print(Text(text), soft_wrap=True)
