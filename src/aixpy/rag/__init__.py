"""Retrieval-augmented generation building blocks: load, chunk, embed, upsert, search."""

from __future__ import annotations

from aixpy.rag.chunking import Chunk, chunk_text, chunk_tokens
from aixpy.rag.indexer import Hit, Indexer, IndexReport, asearch, delete_source, search
from aixpy.rag.loaders import (
    SUPPORTED_SUFFIXES,
    LoadOptions,
    SourceFile,
    html_to_text,
    iter_files,
    load_file,
    loader_registry,
    register_loader,
)
from aixpy.rag.manifest import Signature, read_signature

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "Hit",
    "IndexReport",
    "Indexer",
    "LoadOptions",
    "Signature",
    "SourceFile",
    "asearch",
    "chunk_text",
    "chunk_tokens",
    "delete_source",
    "html_to_text",
    "iter_files",
    "load_file",
    "loader_registry",
    "read_signature",
    "register_loader",
    "search",
]
