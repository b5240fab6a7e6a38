"""``aixpy index`` sync flags (--no-prune, --force, --meta, --tag), the skipped-file report,
``collections delete-source`` and the model signature, through the real Typer app with the hash embedder."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.rag.test_loaders import make_pdf
from tests.test_cli_stores import cli, work

__all__ = ["work"]  # the fixture: a tmp working directory with a hash-embedder config


def ok_json(*args: str) -> dict[str, object] | list[dict[str, object]]:
    res = cli(*args, "--json")
    assert res.exit_code == 0, res.output + res.stderr
    out: dict[str, object] | list[dict[str, object]] = json.loads(res.stdout)
    return out


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_two_folders_same_names_both_stay_searchable(work: Path) -> None:
    _tree(work / "projA", {"README.md": "apples oranges orchard harvest"})
    _tree(work / "projB", {"README.md": "rockets engines launch pad"})
    ok_json("index", "projA")
    rep = ok_json("index", "projB")
    assert isinstance(rep, dict)
    assert (rep["files_indexed"], rep["collection_chunks"]) == (1, 2)
    for query, folder in (("apples orchard", "projA"), ("rockets launch", "projB")):
        [hit] = ok_json("search", query, "--limit", "1")  # type: ignore[misc]
        assert hit["source"] == "README.md"
        assert hit["path"] == str((work / folder / "README.md").resolve())


def test_prune_no_prune_force_meta_tags_and_delete_source(work: Path) -> None:
    _tree(work / "docs", {"a.md": "bread dough oven", "b.md": "comets ice tails", "c.txt": "moons orbit"})
    ok_json("index", "docs")
    (work / "docs" / "b.md").unlink()
    kept = ok_json("index", "docs", "--no-prune")
    assert isinstance(kept, dict)
    assert (kept["files_pruned"], kept["collection_chunks"]) == (0, 3)
    pruned = ok_json("index", "docs")
    assert isinstance(pruned, dict)
    assert (pruned["files_pruned"], pruned["chunks_deleted"], pruned["collection_chunks"]) == (1, 1, 2)
    forced = ok_json("index", "docs", "--force", "--meta", "team=core", "--meta", "rev=3", "--tag", "v1")
    assert isinstance(forced, dict)
    assert (forced["files_indexed"], forced["files_unchanged"]) == (2, 0)
    hits = ok_json("search", "bread", "--filter", '{"team": "core", "rev": 3}')
    assert [h["source"] for h in hits] == ["a.md", "c.txt"]  # type: ignore[index]

    gone = ok_json("collections", "delete-source", "docs/a.md")
    assert isinstance(gone, dict)
    assert (gone["files"], gone["chunks_deleted"]) == (1, 1)
    assert [h["source"] for h in ok_json("search", "bread")] == ["c.txt"]  # type: ignore[index]
    res = cli("collections", "delete-source", "docs")
    assert res.exit_code == 0, res.stderr
    assert "removed 1 chunk(s) of 1 file(s)" in res.stdout

    bad = cli("index", "docs", "--meta", "novalue")
    assert bad.exit_code == 2
    assert "key=value" in bad.stderr


def test_overlap_not_below_chunk_size_is_refused(work: Path) -> None:
    _tree(work / "docs", {"a.md": "x"})
    res = cli("index", "docs", "--chunk-size", "40", "--overlap", "40")
    assert res.exit_code == 2
    assert "overlap" in res.stderr


def test_skipped_files_are_counted_and_named(work: Path) -> None:
    docs = _tree(work / "docs", {"ok.md": "fine text"})
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (docs / "broken.txt").write_bytes(b"caf\xc3\xa9 \xff")
    (docs / "latin.txt").write_bytes("crème brûlée à la française, très appréciée ".encode("latin-1") * 3)
    (docs / "bad.json").write_text("{nope")
    rep = ok_json("index", "docs")
    assert isinstance(rep, dict)
    assert rep["files_skipped"] == 3
    reasons = {Path(s["path"]).name: s["reason"] for s in rep["skipped"]}  # type: ignore[attr-defined]
    assert reasons["logo.png"] == "unsupported file type"
    assert "invalid UTF-8" in reasons["broken.txt"]
    assert "invalid JSON" in reasons["bad.json"]
    assert rep["files_indexed"] == 2  # ok.md and latin.txt (detected, not mangled)
    [hit] = ok_json("search", "crème brûlée", "--limit", "1")  # type: ignore[misc]
    assert hit["source"] == "latin.txt"
    assert "\ufffd" not in str(hit["snippet"])
    assert "brûlée" in str(hit["snippet"])

    human = cli("index", "docs", "--force")
    assert human.exit_code == 0
    assert "3 skipped" in human.stdout
    assert "broken.txt: " in human.stderr


def test_pdf_docx_jsonl_are_indexed(work: Path) -> None:
    pytest.importorskip("pypdf", reason="PDF loading needs aixpy[docs]")
    docs = work / "docs"
    docs.mkdir()
    make_pdf(docs / "paper.pdf", ["Volcanoes erupt molten lava.", "Glaciers carve valleys."])
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    with zipfile.ZipFile(docs / "memo.docx", "w") as z:
        z.writestr("word/document.xml", f'<w:document {ns}><w:body><w:p><w:r><w:t>Submarines dive deep'
                                        "</w:t></w:r></w:p></w:body></w:document>")
    (docs / "faq.jsonl").write_text(json.dumps({"question_id": 4, "text": "Penguins cannot fly"}) + "\n")
    rep = ok_json("index", "docs")
    assert isinstance(rep, dict)
    assert (rep["files_indexed"], rep["files_skipped"]) == (3, 0)
    # whole sentences: one-word queries can tie with a hash collision (256 buckets), and ties order by id
    for query, source in (("glaciers carve valleys", "paper.pdf"), ("submarines dive deep", "memo.docx"),
                          ("penguins cannot fly", "faq.jsonl")):
        [hit] = ok_json("search", query, "--limit", "1")  # type: ignore[misc]
        assert hit["source"] == source
    glacier = ok_json("search", "glaciers carve valleys", "--limit", "1", "--filter", '{"page": 2}')
    assert len(glacier) == 1
    assert ok_json("search", "penguins cannot fly", "--filter", '{"question_id": 4}')[0]["source"] == "faq.jsonl"  # type: ignore[index]


def test_stats_shows_signature_and_mismatch_is_refused(work: Path) -> None:
    _tree(work / "docs", {"a.md": "hello world"})
    ok_json("index", "docs")
    info = ok_json("collections", "stats", "knowledge_base")
    assert isinstance(info, dict)
    assert info["signature"] == {"provider": "hash", "model": "hash-bow", "dimensions": 256}
    assert info["roots"] == [str((work / "docs").resolve())]
    assert info["chunks"] == 1
    table = cli("collections", "stats", "knowledge_base")
    assert "hash:hash-bow (256 dimensions)" in table.stdout

    (work / "aixpy.yaml").write_text("embeddings:\n  provider: hash\n  hash:\n    dimensions: 128\n")
    for args in (["search", "hello"], ["index", "docs"]):
        res = cli(*args)
        assert res.exit_code == 2, res.stdout
        assert "built with hash:hash-bow (256 dimensions)" in res.stderr
        assert "hash:hash-bow (128 dimensions); dimensions differ: 256 vs 128" in res.stderr
