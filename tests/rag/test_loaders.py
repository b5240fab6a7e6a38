from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

import aixpy.rag.loaders as loaders_mod
from aixpy.errors import InvalidInputError
from aixpy.rag._decode import UndecodableError
from aixpy.rag.loaders import LoadOptions, html_to_text, iter_files, load_file, loader_for, register_loader


def test_html_to_text_keeps_visible_text_only() -> None:
    html = (
        "<html><head><title>Title here</title><style>p{}</style><script>var x=1</script></head>"
        "<body><h1>Head</h1><p>First &amp; second</p><div>third<br>fourth</div></body></html>"
    )
    text = html_to_text(html)
    assert text.split("\n\n") == ["Title here", "Head", "First & second", "third", "fourth"]
    assert "var x" not in text
    assert "p{}" not in text


def test_html_table_cells_and_blocks_are_separated() -> None:
    html = ("<table><tr><th>Planet</th><th>Moons</th></tr><tr><td>Jupiter</td><td>95</td></tr></table>"
            "<ul><li>one</li><li>two</li></ul><p>a<br/>b</p><noscript>hidden</noscript>")
    assert html_to_text(html).split("\n\n") == ["Planet | Moons", "Jupiter | 95", "one", "two", "a", "b"]


def test_iter_files_filters_and_sorts(tmp_path: Path) -> None:
    for rel in ["b.md", "a.txt", "c.rst", "d.html", "e.py", "f.png", ".hidden.md", "sub/f.md", ".git/g.md",
                "node_modules/h.md", "sub/.cache/i.md"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("hello")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)]
    assert got == ["a.txt", "b.md", "c.rst", "d.html", "e.py", "sub/f.md"]


def test_iter_files_single_file_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "x.md"
    f.write_text("x")
    assert list(iter_files(f)) == [f]
    (tmp_path / "y.png").write_text("x")
    with pytest.raises(InvalidInputError, match="unsupported"):
        list(iter_files(tmp_path / "y.png"))
    with pytest.raises(InvalidInputError, match="no such"):
        list(iter_files(tmp_path / "missing"))


def test_load_file_hash_and_utf8(tmp_path: Path) -> None:
    raw = "café\r\nline two".encode()
    (tmp_path / "d").mkdir()
    p = tmp_path / "d" / "x.txt"
    p.write_bytes(raw)
    src = load_file(p, tmp_path)
    assert src.source == "d/x.txt"
    assert src.path == p.resolve()
    assert src.sha256 == hashlib.sha256(raw).hexdigest()
    assert src.text == "café\nline two"


def test_latin1_is_detected_not_mangled(tmp_path: Path) -> None:
    text = "Le café crème était très apprécié à Noël, près de la forêt. " * 4
    p = tmp_path / "fr.txt"
    p.write_bytes(text.encode("latin-1"))
    got = load_file(p, tmp_path).text
    assert got == text
    assert "\ufffd" not in got


@pytest.mark.parametrize("raw", [b"caf\xc3\xa9 \xff bad byte\nline two",  # UTF-8 with a broken byte
                                 bytes(range(256)) * 4])  # binary
def test_undecodable_files_are_refused(tmp_path: Path, raw: bytes) -> None:
    p = tmp_path / "bad.txt"
    p.write_bytes(raw)
    with pytest.raises(UndecodableError, match=r"bad\.txt"):
        load_file(p, tmp_path)


def test_markdown_front_matter_and_sections(tmp_path: Path) -> None:
    p = tmp_path / "guide.md"
    p.write_text("---\ntitle: The guide\ndate: 2024-05-01\ntags: [a, b]\n---\nIntro.\n\n# Install\n\npip it.\n\n"
                 "## Extras\n\n```sh\n# not a heading\n```\n\n# Use\n\nrun it.\n")
    src = load_file(p, tmp_path)
    assert src.metadata == {"title": "The guide", "date": "2024-05-01", "tags": ["a", "b"]}
    assert "The guide" not in src.text
    assert "title:" not in src.text
    assert [s.metadata.get("section") for s in src.segments] == [None, "Install", "Install > Extras", "Use"]
    assert "# not a heading" in src.segments[2].text


def test_bad_front_matter_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "x.md"
    p.write_text("---\n- a list\n---\nbody\n")
    with pytest.raises(InvalidInputError, match=r"x\.md: front matter must be a YAML mapping"):
        load_file(p, tmp_path)


def test_json_and_jsonl_text_fields_and_metadata(tmp_path: Path) -> None:
    recs = [{"id": 7, "title": "Bread", "body": "Knead the dough.", "lang": "en"},
            {"id": 8, "title": "Pasta", "body": "Boil water.", "lang": "it"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    (tmp_path / "b.json").write_text(json.dumps(recs))
    for name in ("a.jsonl", "b.json"):
        src = load_file(tmp_path / name, tmp_path)
        assert [s.text for s in src.segments] == ["Bread\n\nKnead the dough.", "Pasta\n\nBoil water."]
        assert src.segments[1].metadata == {"id": 8, "lang": "it", "record": 1}
    only_body = load_file(tmp_path / "a.jsonl", tmp_path, LoadOptions(text_fields=("body",)))
    assert only_body.segments[0].text == "Knead the dough."
    assert only_body.segments[0].metadata["title"] == "Bread"
    (tmp_path / "c.json").write_text("{oops")
    with pytest.raises(InvalidInputError, match=r"c\.json: invalid JSON"):
        load_file(tmp_path / "c.json", tmp_path)


def _docx(path: Path, body_xml: str) -> None:
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml",
                   f'<?xml version="1.0"?><w:document {ns}><w:body>{body_xml}</w:body></w:document>')


def test_docx_paragraphs_and_table_cells(tmp_path: Path) -> None:
    p = tmp_path / "report.docx"
    _docx(p, "<w:p><w:r><w:t>Quarterly </w:t></w:r><w:r><w:t>report</w:t></w:r></w:p>"
             "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Region</w:t></w:r></w:p></w:tc>"
             "<w:tc><w:p><w:r><w:t>Sales</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
             "<w:p><w:r><w:t>Done.</w:t></w:r></w:p>")
    assert load_file(p, tmp_path).text == "Quarterly report\n\nRegion | Sales\n\nDone."
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    with pytest.raises(InvalidInputError, match=r"broken\.docx: not a readable DOCX"):
        load_file(tmp_path / "broken.docx", tmp_path)


def make_pdf(path: Path, pages: list[str]) -> None:
    """A minimal valid PDF written by hand: one Helvetica text line per page, with an xref table."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        n = len(objs) + 1
        kids.append(f"{n} 0 R")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {n + 1} 0 R "
                    f"/Resources << /Font << /F1 {len(pages) * 2 + 3} 0 R >> >> >>")
        objs.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objs.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def test_pdf_pages_become_segments(tmp_path: Path) -> None:
    pytest.importorskip("pypdf", reason="PDF loading needs aixpy[docs]")
    p = tmp_path / "paper.pdf"
    make_pdf(p, ["Gas giants are made of hydrogen.", "Rocky planets have iron cores."])
    src = load_file(p, tmp_path)
    assert [s.text.strip() for s in src.segments] == ["Gas giants are made of hydrogen.",
                                                      "Rocky planets have iron cores."]
    assert [s.metadata for s in src.segments] == [{"page": 1}, {"page": 2}]
    assert src.metadata["pages"] == 2


def test_pdf_without_pypdf_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pypdf", None)
    p = tmp_path / "paper.pdf"
    make_pdf(p, ["x"])
    with pytest.raises(ImportError, match=r"aixpy\[docs\]"):
        load_file(p, tmp_path)


def test_code_and_registered_loader(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    assert load_file(tmp_path / "m.py", tmp_path).metadata == {"language": "py"}
    from aixpy.rag._types import Loaded, Segment

    def shout(data: bytes, path: Path, options: LoadOptions) -> Loaded:
        return Loaded([Segment(data.decode().upper())], {"loud": True})

    register_loader("shout", shout, suffixes=[".loud"])
    try:
        (tmp_path / "x.loud").write_text("hi")
        assert loader_for(tmp_path / "x.loud") == "shout"
        src = load_file(tmp_path / "x.loud", tmp_path)
        assert (src.text, src.metadata) == ("HI", {"loud": True})
        with pytest.raises(InvalidInputError, match="must start with"):
            register_loader("shout", shout, suffixes=["loud"])
    finally:
        loaders_mod._SUFFIXES.pop(".loud", None)
