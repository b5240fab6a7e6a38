from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from aixpy.errors import InvalidInputError
from aixpy.rag._chunkfile import chunk_file
from aixpy.rag.chunking import chunk_text, chunk_tokens
from aixpy.rag.loaders import load_file
from aixpy.rag.tokens import ApproxTokens, token_counter_for

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


# ---------------------------------------------------------------- token-aware chunking

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _spans(text: str) -> list[tuple[int, int]]:
    return ApproxTokens().spans([text])[0]


@pytest.mark.parametrize(("size", "overlap"), [(40, 0), (40, 10), (64, 16), (300, 30)])
def test_chunk_tokens_bounds_coverage_and_overlap(size: int, overlap: int) -> None:
    spans = _spans(TEXT)
    chunks = chunk_tokens(TEXT, spans, size=size, overlap=overlap)
    covered: set[int] = set()
    for c in chunks:
        inside = [i for i, (s, e) in enumerate(spans) if s >= c.start and e <= c.end]
        assert 0 < len(inside) <= size
        assert c.text == TEXT[c.start : c.end]
        covered.update(inside)
    assert covered == set(range(len(spans))), "every token is in a chunk"
    for a, b in itertools.pairwise(chunks):
        assert b.start > a.start
        shared = len([1 for s, e in spans if s >= b.start and e <= a.end])
        assert shared <= overlap
        if overlap:
            assert shared > 0
            assert TEXT[b.start - 1].isspace(), "an overlap starts on a word"


def test_chunk_tokens_prefers_paragraph_ends() -> None:
    text = "\n\n".join(f"Paragraph {i} has a few words in it." for i in range(30))
    for c in chunk_tokens(text, _spans(text), size=50, overlap=0):
        assert c.text.endswith("."), c.text


@pytest.mark.parametrize(("size", "overlap", "match"), [(50, 50, "overlap"), (50, 60, "overlap"),
                                                        (50, -1, "overlap"), (4, 0, "chunk size")])
def test_chunk_tokens_refuses_bad_sizes(size: int, overlap: int, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        chunk_tokens("a b c", _spans("a b c"), size=size, overlap=overlap)


def test_docs_chunks_fit_the_local_model_window() -> None:
    """Regression: 800-character chunks of docs/*.md gave 7 of 50 chunks over all-MiniLM-L6-v2's 256
    word-pieces (their tails were cut when embedded). Chunks are now measured with its tokenizer."""
    from aixpy.embeddings.local import LocalEmbeddings

    with LocalEmbeddings() as emb:
        counter = token_counter_for(emb)
        assert counter.window == 254  # 256 less [CLS] and [SEP]
        old = [c.text for p in sorted(DOCS.glob("*.md")) for c in chunk_text(p.read_text(), size=800, overlap=120)]
        assert any(len(s) > counter.window for s in counter.spans(old)), "the old chunker did overflow"
        chunks = []
        for p in sorted(DOCS.glob("*.md")):
            got, warnings = chunk_file(load_file(p, DOCS), counter, 254, 31)
            assert warnings == []
            chunks += got
        assert len(chunks) > 20
        measured = [len(s) for s in counter.spans([c.text for c in chunks])]
        assert measured == [c.tokens for c in chunks]
        assert max(measured) <= 254
        _, truncated = emb.embed_detailed([c.text for c in chunks])
        assert not truncated.any()


def test_local_token_spans_are_untruncated_word_pieces() -> None:
    from aixpy.embeddings.local import LocalEmbeddings

    with LocalEmbeddings() as emb:
        text = "unbelievable, " * 300
        [spans] = emb.token_spans([text])
        assert len(spans) == 600  # one word-piece per word and per comma, beyond the 256 of an input
        assert [text[s:e] for s, e in spans[:2]] == ["unbelievable", ","]
        assert emb.input_window() == emb.max_tokens - 2 == 254
