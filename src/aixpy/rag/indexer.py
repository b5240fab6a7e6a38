"""Index a directory into a collection, and search it.

Each file becomes chunks with deterministic ids ``<file-key>:<n>``. Chunk 0 carries the file's
sha256, its chunk count and the embedding model, and is written *last*: if indexing stops midway,
the next run sees a stale or missing marker and re-indexes that file. An unchanged file (same
sha256, same model, same chunking) is never re-embedded. Chunks left over from a longer previous
version of a file are deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.rag.chunking import Chunk, chunk_text
from aixpy.rag.loaders import SourceFile, iter_files, load_file
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.types import Document, Query

__all__ = ["Hit", "IndexReport", "Indexer", "search"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` with stage "scan" (files) or "embed" (chunks)."""


@dataclass(slots=True)
class IndexReport:
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_empty: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Hit:
    rank: int
    score: float
    source: str
    chunk: int
    snippet: str
    id: str


def file_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]


@dataclass(slots=True)
class _Pending:
    src: SourceFile
    chunks: list[Chunk]
    old_count: int


class Indexer:
    """Chunk, embed (in batches across files) and upsert the files under a path."""

    def __init__(
        self,
        embedder: EmbeddingService,
        collection: BaseCollection,
        *,
        chunk_size: int = 800,
        overlap: int = 120,
        batch_size: int = 64,
    ) -> None:
        self.embedder = embedder
        self.collection = collection
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.batch_size = batch_size
        self._signature = f"{embedder.model()}|{chunk_size}|{overlap}"

    def _plan(self, src: SourceFile) -> _Pending | None:
        """Return the work for a changed file, or None if it is indexed and unchanged."""
        key = file_key(src.source)
        found = self.collection.get([f"{key}:0"])
        old_count = 0
        if found:
            meta = found[0].metadata
            old_count = int(meta.get("file_chunks", 0))
            if meta.get("file_sha256") == src.sha256 and meta.get("index_signature") == self._signature:
                return None
        return _Pending(src, chunk_text(src.text, size=self.chunk_size, overlap=self.overlap), old_count)

    def index_path(self, path: str | Path, progress: Progress | None = None) -> IndexReport:
        root = Path(path).resolve()
        report = IndexReport()
        files = list(iter_files(root))
        base = root if root.is_dir() else root.parent
        pending: list[_Pending] = []
        for i, p in enumerate(files, 1):
            report.files_seen += 1
            try:
                plan = self._plan(load_file(p, base))
            except (OSError, ValueError) as e:
                report.failures.append(f"{p}: {e}")
                plan = None
            else:
                if plan is None:
                    report.files_unchanged += 1
            if plan is not None:
                pending.append(plan)
            if progress:
                progress("scan", i, len(files))
        self._embed_and_store(pending, report, progress)
        return report

    def _embed_and_store(self, pending: list[_Pending], report: IndexReport, progress: Progress | None) -> None:
        total = sum(len(p.chunks) for p in pending)
        done = 0
        model = self.embedder.model()
        for plan in pending:
            key = file_key(plan.src.source)
            n = len(plan.chunks)
            if n == 0:
                report.files_empty += 1
            docs: list[Document] = []
            for c in plan.chunks:
                meta: dict[str, Any] = {"source": plan.src.source, "chunk": c.index, "start": c.start, "end": c.end}
                docs.append(Document(id=f"{key}:{c.index}", content=c.text, metadata=meta, embedding_model=model))
            if docs:
                head = docs[0].metadata
                head.update(file_sha256=plan.src.sha256, file_chunks=n, index_signature=self._signature)
            # chunk 0 (the "file is indexed" marker) goes last
            order = docs[1:] + docs[:1]
            failed = False
            for i in range(0, len(order), self.batch_size):
                part = order[i : i + self.batch_size]
                vecs = self.embedder.embed_array([d.content for d in part])
                for d, v in zip(part, vecs, strict=True):
                    d.embedding = v
                res = self.collection.upsert_batch(part)
                if res.failed:
                    report.failures.extend(str(e) for e in res.errors)
                    failed = True
                    break
                done += len(part)
                report.chunks_embedded += len(part)
                if progress:
                    progress("embed", done, total)
            if failed:
                continue
            stale = [f"{key}:{i}" for i in range(n, plan.old_count)]
            if stale:
                report.chunks_deleted += self.collection.delete(stale).deleted
            if n:
                report.files_indexed += 1


def search(
    embedder: EmbeddingService,
    collection: BaseCollection,
    text: str,
    *,
    limit: int = 5,
    min_score: float | None = None,
    filter: Filter | None = None,
    snippet_chars: int = 240,
) -> list[Hit]:
    """Embed ``text`` and return the best chunks, ranked, with their source and a snippet."""
    vec = embedder.embed_array([text])[0]
    res = collection.query(Query(embedding=vec, limit=limit, min_score=min_score, filter=filter))
    hits = []
    for m in res.matches:
        content = " ".join(m.document.content.split())
        snippet = content if len(content) <= snippet_chars else content[: snippet_chars - 1].rstrip() + "…"
        meta = m.document.metadata
        hits.append(Hit(m.rank, m.score, str(meta.get("source", "")), int(meta.get("chunk", 0)), snippet,
                        m.document.id))
    return hits
