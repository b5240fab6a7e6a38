from __future__ import annotations

import itertools

import pytest

from aixpy.errors import InvalidInputError
from aixpy.rag.chunking import chunk_text

TEXT = "\n\n".join(
    f"Paragraph {p}. " + " ".join(f"Sentence {p}.{s} has some words in it." for s in range(6)) for p in range(12)
)


def test_chunks_respect_size_and_cover_every_word() -> None:
    chunks = chunk_text(TEXT, size=300, overlap=60)
    assert len(chunks) > 5
    assert all(len(c.text) <= 300 for c in chunks)
    # every word of the text appears in some chunk, in order of first appearance
    covered = " ".join(c.text for c in chunks)
    for word in set(TEXT.split()):
        assert word in covered
    # offsets point back into the source exactly
    for c in chunks:
        assert TEXT[c.start : c.end] == c.text
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_overlap_and_advance() -> None:
    chunks = chunk_text(TEXT, size=300, overlap=60)
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start
        assert b.start < a.end, "consecutive chunks must share text"
    no_overlap = chunk_text(TEXT, size=300, overlap=0)
    for a, b in itertools.pairwise(no_overlap):
        assert b.start >= a.end


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    chunks = chunk_text(TEXT, size=400, overlap=0)
    # a chunk ends at a sentence end, never mid-word
    for c in chunks[:-1]:
        assert c.text.endswith("."), c.text[-30:]


def test_chunk_starts_on_word_boundary_with_overlap() -> None:
    text = " ".join(f"word{i:04d}" for i in range(400))
    for c in chunk_text(text, size=200, overlap=50):
        assert c.text.startswith("word"), c.text[:12]
        assert len(c.text.split()[0]) == 8


def test_short_and_empty_texts() -> None:
    assert chunk_text("", size=100, overlap=10) == []
    assert chunk_text("   \n\n  ", size=100, overlap=10) == []
    [only] = chunk_text("  hello world  ", size=100, overlap=10)
    assert (only.text, only.start, only.end) == ("hello world", 2, 13)


def test_text_without_spaces_is_hard_cut() -> None:
    text = "x" * 1000
    chunks = chunk_text(text, size=100, overlap=10)
    assert all(len(c.text) == 100 for c in chunks[:-1])
    assert "".join(c.text for c in chunks).count("x") >= 1000


@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (100, 50), (100, -1), (100, 100)])
def test_bad_parameters(size: int, overlap: int) -> None:
    with pytest.raises(InvalidInputError):
        chunk_text("abc", size=size, overlap=overlap)
