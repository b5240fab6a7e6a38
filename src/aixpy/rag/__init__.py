"""Retrieval-augmented generation building blocks: load, chunk, embed, upsert, search."""

from __future__ import annotations

from aixpy.rag.chunking import Chunk, chunk_text
from aixpy.rag.indexer import Hit, Indexer, IndexReport, search
from aixpy.rag.loaders import SUPPORTED_SUFFIXES, SourceFile, html_to_text, iter_files, load_file

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "Hit",
    "IndexReport",
    "Indexer",
    "SourceFile",
    "chunk_text",
    "html_to_text",
    "iter_files",
    "load_file",
    "search",
]
