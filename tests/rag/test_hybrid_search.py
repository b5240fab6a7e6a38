"""Hybrid retrieval from the RAG side: ``rag.search(..., hybrid=True)`` and ``aixpy search --hybrid``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.errors import InvalidInputError
from aixpy.rag.indexer import Indexer, search
from aixpy.vectorstores import CollectionOptions

CODES = [f"QX-{n}" for n in (48213, 77120, 90345, 11876, 63502, 29984)]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    root.mkdir()
    for i, code in enumerate(CODES):  # near-identical files: only the code tells them apart
        (root / f"ticket{i}.md").write_text(f"# Ticket {i}\n\nThe device reported fault {code} after the update; "
                                            "support restarted the unit and closed the ticket.\n")
    return root


def _index(corpus: Path) -> tuple[HashEmbeddings, vectorstores.BaseCollection]:
    emb = HashEmbeddings(dimensions=64)
    coll = vectorstores.new({"provider": "memory"}).collection("kb", CollectionOptions(dimensions=64))
    Indexer(emb, coll, chunk_size=80, overlap=0).index_path(corpus)
    return emb, coll


def test_hybrid_finds_the_file_naming_the_code(corpus: Path) -> None:
    emb, coll = _index(corpus)
    for i, code in enumerate(CODES):
        hits = search(emb, coll, f"which ticket had fault {code}", limit=3, hybrid=True)
        assert [h.rank for h in hits] == [1, 2, 3]
        assert all(not h.id.startswith("_aixpy:") for h in hits)  # index records never come back
        mine = [h for h in hits if h.source == f"ticket{i}.md"]
        assert mine, (code, hits)  # 1st by keyword (only it names the code): always in the fused top 3
        assert mine[0].score == pytest.approx(1 / 61 + 1 / (60 + _vector_rank(emb, coll, code, i)))


def _vector_rank(emb: HashEmbeddings, coll: vectorstores.BaseCollection, code: str, i: int) -> int:
    hits = search(emb, coll, f"which ticket had fault {code}", limit=10)
    return [h.source for h in hits].index(f"ticket{i}.md") + 1


def test_hybrid_refuses_min_score(corpus: Path) -> None:
    emb, coll = _index(corpus)
    with pytest.raises(InvalidInputError, match="min_score"):
        search(emb, coll, "fault", hybrid=True, min_score=0.2)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "aixpy", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_cli_search_hybrid(corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "aixpy.yaml").write_text("embeddings:\n  provider: hash\n")
    assert _run(["index", str(corpus), "--json"], tmp_path).returncode == 0
    res = _run(["search", f"fault {CODES[3]}", "--hybrid", "--json", "--limit", "2"], tmp_path)
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert "ticket3.md" in [h["source"] for h in hits]
    bad = _run(["search", "fault", "--hybrid", "--min-score", "0.1"], tmp_path)
    assert bad.returncode == 2
    assert "--hybrid" in bad.stderr + bad.stdout
