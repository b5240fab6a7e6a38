from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aixpy.errors import InvalidInputError
from aixpy.rag.loaders import html_to_text, iter_files, load_file


def test_html_to_text_keeps_visible_text_only() -> None:
    html = (
        "<html><head><title>Title here</title><style>p{}</style><script>var x=1</script></head>"
        "<body><h1>Head</h1><p>First &amp; second</p><div>third<br>fourth</div></body></html>"
    )
    text = html_to_text(html)
    assert text.split("\n\n") == ["Title here", "Head", "First & second", "third", "fourth"]
    assert "var x" not in text
    assert "p{}" not in text


def test_iter_files_filters_and_sorts(tmp_path: Path) -> None:
    for rel in ["b.md", "a.txt", "c.rst", "d.html", "e.py", ".hidden.md", "sub/f.md", ".git/g.md",
                "node_modules/h.md", "sub/.cache/i.md"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("hello")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)]
    assert got == ["a.txt", "b.md", "c.rst", "d.html", "sub/f.md"]


def test_iter_files_single_file_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "x.md"
    f.write_text("x")
    assert list(iter_files(f)) == [f]
    (tmp_path / "y.pdf").write_text("x")
    with pytest.raises(InvalidInputError, match="unsupported"):
        list(iter_files(tmp_path / "y.pdf"))
    with pytest.raises(InvalidInputError, match="no such"):
        list(iter_files(tmp_path / "missing"))


def test_load_file_hash_and_decoding(tmp_path: Path) -> None:
    raw = b"caf\xc3\xa9 \xff bad byte\r\nline two"
    (tmp_path / "d").mkdir()
    p = tmp_path / "d" / "x.txt"
    p.write_bytes(raw)
    src = load_file(p, tmp_path)
    assert src.source == "d/x.txt"
    assert src.sha256 == hashlib.sha256(raw).hexdigest()
    assert src.text == "café \ufffd bad byte\nline two"
