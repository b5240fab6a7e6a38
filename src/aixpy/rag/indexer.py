"""Index a directory into a collection, and search it.

Identity: a file's chunks have ids ``<file-key>:<n>`` where the file key hashes the file's *absolute*
path, so two folders' ``README.md`` never share ids, whichever folder is indexed first. Chunk
metadata keeps ``source`` (the path relative to the indexed root, for display and filters), ``path``
(absolute) and ``root`` (the indexed folder).

Sync: chunk 0 carries the file's sha256, its chunk count and the index signature (model, chunking,
extra metadata) and is written *last*; an unchanged file is never re-embedded (``force`` re-embeds).
A root's file list (:mod:`aixpy.rag.manifest`) is written before new files are, so chunks of files
deleted from the folder are pruned on the next run of that root (``prune=False`` keeps them). A file's
chunk ids are contiguous from 0 and removed from the highest down, so a run killed at any point
leaves chunks the next run finds by probing: it completes the work with no duplicates or orphans.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.errors import InvalidInputError, MissingDependencyError
from aixpy.rag import manifest as mf
from aixpy.rag._chunkfile import FileChunk, chunk_file
from aixpy.rag._search import search_query
from aixpy.rag.chunking import check_sizes
from aixpy.rag.loaders import LoadOptions, SourceFile, load_file, walk
from aixpy.rag.manifest import CHUNKS, Signature
from aixpy.rag.tokens import default_chunk_size, token_counter_for
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.types import Document

__all__ = ["Hit", "IndexReport", "Indexer", "delete_source", "file_key", "search", "signature_of"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` with stage "scan" (files) or "embed" (chunks)."""
KILL_AFTER_WRITES = "AIXPY_TEST_KILL_AFTER_WRITES"
"""Test hook: SIGKILL this process after that many collection writes (to test interrupted runs)."""
_PROBE = 256


@dataclass(slots=True)
class IndexReport:
    files_seen: int = 0
    files_indexed: int = 0
    files_unchanged: int = 0
    files_empty: int = 0
    files_skipped: int = 0
    files_pruned: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    chunk_size: int = 0
    overlap: int = 0
    tokenizer: str = ""

    def skip(self, path: Path | str, reason: str) -> None:
        self.files_skipped += 1
        self.skipped.append({"path": str(path), "reason": reason})

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
    path: str = ""


def file_key(path: str | Path) -> str:
    """The id prefix of a file's chunks: a hash of its absolute path."""
    return hashlib.sha256(str(path).encode()).hexdigest()[:24]


def signature_of(embedder: EmbeddingService) -> Signature:
    return Signature(embedder.provider or type(embedder).__name__, embedder.model(), embedder.dimensions())


@dataclass(slots=True)
class _Pending:
    src: SourceFile
    chunks: list[FileChunk]
    key: str


class _Writes:
    """Counts collection writes; with :data:`KILL_AFTER_WRITES` set, SIGKILLs the process after N."""

    def __init__(self) -> None:
        raw = os.environ.get(KILL_AFTER_WRITES, "")
        self.limit = int(raw) if raw.isdigit() else None
        self.count = 0

    def done(self) -> None:
        self.count += 1
        if self.limit is not None and self.count >= self.limit:
            os.kill(os.getpid(), signal.SIGKILL)


def _delete_chunks(coll: BaseCollection, key: str, start: int, writes: _Writes) -> int:
    """Delete chunks ``key:start`` and up, highest first, probing until a window finds none."""
    deleted = 0
    while True:
        ids = [f"{key}:{i}" for i in range(start, start + _PROBE)]
        found = {d.id for d in coll.get(ids)}
        if not found:
            return deleted
        deleted += coll.delete([i for i in reversed(ids) if i in found]).deleted
        writes.done()
        start += _PROBE


class Indexer:
    """Load, chunk (in the embedding model's tokens), embed in batches and upsert the files under a path.

    Args:
        chunk_size: tokens per chunk; default: the model's window (at most 512), else 256.
        overlap: tokens shared by consecutive chunks; default ``chunk_size // 8``.
        prune: remove chunks of files no longer under a re-indexed root.
        force: re-embed every file even when unchanged.
        metadata: added to every chunk (e.g. from ``--meta key=value``); tags: added to every chunk.
    """

    def __init__(
        self,
        embedder: EmbeddingService,
        collection: BaseCollection,
        *,
        chunk_size: int | None = None,
        overlap: int | None = None,
        batch_size: int = 64,
        prune: bool = True,
        force: bool = False,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        load_options: LoadOptions | None = None,
    ) -> None:
        self.embedder = embedder
        self.collection = collection
        self.counter = token_counter_for(embedder)
        self.chunk_size = chunk_size or default_chunk_size(self.counter)
        self.overlap = self.chunk_size // 8 if overlap is None else overlap
        check_sizes(self.chunk_size, self.overlap, self.counter.window)
        self.batch_size = batch_size
        self.prune = prune
        self.force = force
        self.metadata = dict(metadata or {})
        self.tags = list(dict.fromkeys(tags))
        self.load_options = load_options or LoadOptions()
        extra = hashlib.sha256(json.dumps([self.metadata, self.tags, self.load_options.text_fields],
                                          sort_keys=True, default=str).encode()).hexdigest()[:12]
        self._signature = f"{embedder.model()}|{self.counter.name}|{self.chunk_size}|{self.overlap}|{extra}"
        self._writes = _Writes()

    # ------------------------------------------------------------------ planning

    def _scan(self, root: Path, base: Path, report: IndexReport, progress: Progress | None) -> tuple[
            list[SourceFile], list[str]]:
        """Loaded files, and the relative paths of every supported file present (loaded or not)."""
        entries = list(walk(root))
        loaded: list[SourceFile] = []
        present: list[str] = []
        for i, (p, supported) in enumerate(entries, 1):
            rel = p.relative_to(base).as_posix() if p != base else p.name
            if not supported:
                report.skip(p, "unsupported file type")
            else:
                present.append(rel)
                report.files_seen += 1
                try:
                    loaded.append(load_file(p, base, self.load_options))
                except (InvalidInputError, MissingDependencyError, OSError) as e:
                    report.skip(p, str(e))
            if progress:
                progress("scan", i, len(entries))
        return loaded, present

    def _plan(self, files: list[SourceFile], report: IndexReport) -> list[_Pending]:
        keys = [file_key(f.path) for f in files]
        markers: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), _PROBE):
            for d in self.collection.get([f"{k}:0" for k in keys[i : i + _PROBE]]):
                markers[d.id] = d.metadata
        pending = []
        for src, key in zip(files, keys, strict=True):
            meta = markers.get(f"{key}:0")
            if (not self.force and meta is not None and meta.get("file_sha256") == src.sha256
                    and meta.get("index_signature") == self._signature):
                report.files_unchanged += 1
                continue
            chunks, warnings = chunk_file(src, self.counter, self.chunk_size, self.overlap)
            report.warnings.extend(warnings)
            pending.append(_Pending(src, chunks, key))
        return pending

    # ------------------------------------------------------------------ the run

    def index_path(self, path: str | Path, progress: Progress | None = None) -> IndexReport:
        root = Path(path).resolve()
        base = root if root.is_dir() else root.parent
        report = IndexReport(chunk_size=self.chunk_size, overlap=self.overlap, tokenizer=self.counter.name)
        sig = signature_of(self.embedder)
        recorded = mf.check_signature(self.collection, sig, "index run")
        roots = recorded[1] if recorded else []
        files, present = self._scan(root, base, report, progress)
        if recorded is None and self.collection.count(CHUNKS):
            # chunks from before index records, keyed by the path relative to the folder indexed:
            # removed before the signature is written, so a killed run redoes this
            for rel in present:
                report.chunks_deleted += _delete_chunks(self.collection, file_key(rel), 0, self._writes)
        if recorded is None or str(root) not in roots:
            mf.write_signature(self.collection, recorded[0] if recorded else sig, [*roots, str(root)])
            self._writes.done()
        rec = mf.read_root(self.collection, str(root), str(base))
        if not set(present) <= set(rec.files):  # write-ahead: the record lists every file that may get chunks
            mf.write_root(self.collection, mf.RootRecord(rec.root, rec.base, [*rec.files, *present]), sig.dimensions)
            self._writes.done()
        self._embed_and_store(self._plan(files, report), str(root), report, progress)
        gone = sorted(set(rec.files) - set(present))
        if self.prune and gone:
            for rel in gone:
                n = _delete_chunks(self.collection, file_key(base / rel), 0, self._writes)
                report.chunks_deleted += n
                report.files_pruned += 1
            mf.write_root(self.collection, mf.RootRecord(rec.root, rec.base, present), sig.dimensions)
            self._writes.done()
        return report

    def _documents(self, plan: _Pending, root: str) -> list[Document]:
        src, n = plan.src, len(plan.chunks)
        docs: list[Document] = []
        base = {**src.metadata, **self.metadata}
        for c in plan.chunks:
            meta: dict[str, Any] = {**base, **c.metadata, "source": src.source, "path": str(src.path), "root": root,
                                    "chunk": c.index, "start": c.start, "end": c.end, "tokens": c.tokens}
            docs.append(Document(id=f"{plan.key}:{c.index}", content=c.text, metadata=meta,
                                 embedding_model=self.embedder.model(), tags=list(self.tags)))
        if docs:
            docs[0].metadata.update(file_sha256=src.sha256, file_chunks=n, index_signature=self._signature)
        return docs

    def _write(self, docs: list[Document], plan: _Pending, report: IndexReport) -> bool:
        res = self.collection.upsert_batch(docs)
        self._writes.done()
        report.failures.extend(f"{plan.src.path}: {e}" for e in res.errors)
        return not res.failed

    def _embed_and_store(self, pending: list[_Pending], root: str, report: IndexReport,
                         progress: Progress | None) -> None:
        """Per file: chunks 1..n, then the stale tail is deleted, then chunk 0 (the "file is indexed"
        marker): a run killed anywhere leaves an old or missing marker, so the file is redone."""
        total = sum(len(p.chunks) for p in pending)
        done = 0
        for plan in pending:
            docs = self._documents(plan, root)
            if not docs:
                report.files_empty += 1
            order = docs[1:] + docs[:1]
            ok = True
            for i in range(0, len(order), self.batch_size):
                part = order[i : i + self.batch_size]
                vecs = self.embedder.embed_array([d.content for d in part])
                for d, v in zip(part, vecs, strict=True):
                    d.embedding = v
                body = [d for d in part if d is not docs[0]]
                if body and not (ok := self._write(body, plan, report)):
                    break
                done += len(part)
                if progress:
                    progress("embed", done, total)
            if not ok:
                continue
            report.chunks_deleted += _delete_chunks(self.collection, plan.key, len(docs), self._writes)
            if docs and self._write(docs[:1], plan, report):
                report.chunks_embedded += len(docs)
                report.files_indexed += 1


def delete_source(collection: BaseCollection, path: str | Path) -> tuple[int, int]:
    """Remove the chunks of a file, or of every indexed file under a folder; ``(files, chunks)`` removed.

    Files are found in the roots' records (so a file already deleted from disk is found too); a file
    in no record is removed by its key. Roots at or under ``path`` are forgotten.
    """
    target = Path(path).resolve()
    found = mf.read_signature(collection)
    roots = found[1] if found else []
    dims = found[0].dimensions if found else (collection.dimensions or 1)
    under = {target}
    for root in roots:
        rec = mf.read_root(collection, root, root)
        keep = [rel for rel in rec.files if not _within(Path(rec.base) / rel, target)]
        under.update(Path(rec.base) / rel for rel in rec.files if _within(Path(rec.base) / rel, target))
        if len(keep) != len(rec.files):
            mf.write_root(collection, mf.RootRecord(root, rec.base, keep), dims)
    writes = _Writes()
    files = chunks = 0
    for p in sorted(under):
        n = _delete_chunks(collection, file_key(p), 0, writes)
        chunks += n
        files += 1 if n else 0
    left = [r for r in roots if not _within(Path(r), target)]
    if found and left != roots:
        mf.write_signature(collection, found[0], left)
    return files, chunks


def _within(p: Path, target: Path) -> bool:
    return p == target or target in p.parents


def search(
    embedder: EmbeddingService,
    collection: BaseCollection,
    text: str,
    *,
    limit: int = 5,
    min_score: float | None = None,
    filter: Filter | None = None,
    snippet_chars: int = 240,
    hybrid: bool = False,
) -> list[Hit]:
    """Embed ``text`` and return the best chunks, ranked, with their source and a snippet.

    ``hybrid=True`` fuses the vector ranking with a keyword (BM25) ranking of ``text`` (reciprocal
    rank fusion; see :mod:`aixpy.vectorstores.keyword`): scores are then fused scores, ``min_score``
    is refused, and a backend without a keyword index raises UnsupportedQueryError.
    Raises EmbeddingMismatchError when the collection was built with another embedding model.
    """
    mf.check_signature(collection, signature_of(embedder), "search")
    vec = embedder.embed_array([text])[0]
    res = collection.query(search_query(vec, text, limit=limit, min_score=min_score, filter=filter, hybrid=hybrid))
    hits = []
    for m in res.matches:
        content = " ".join(m.document.content.split())
        snippet = content if len(content) <= snippet_chars else content[: snippet_chars - 1].rstrip() + "…"
        meta = m.document.metadata
        hits.append(Hit(m.rank, m.score, str(meta.get("source", "")), int(meta.get("chunk", 0)), snippet,
                        m.document.id, str(meta.get("path", ""))))
    return hits

