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
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aixpy.embeddings.base import EmbeddingService
from aixpy.errors import InvalidInputError, MissingDependencyError
from aixpy.policy.plans import Plan, run
from aixpy.rag import manifest as mf
from aixpy.rag._chunkfile import FileChunk, chunk_file
from aixpy.rag._pipeline import Step, run_async, run_sync, step
from aixpy.rag._search import search_query
from aixpy.rag.chunking import check_sizes
from aixpy.rag.loaders import LoadOptions, SourceFile, load_file
from aixpy.rag.manifest import CHUNKS, Signature
from aixpy.rag.tokens import TokenCounter, default_chunk_size, token_counter_for
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter
from aixpy.vectorstores.types import Document, QueryResult, UpsertResult

__all__ = ["Hit", "IndexReport", "Indexer", "asearch", "delete_source", "file_key", "search", "signature_of"]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage "scan" counts files finished (skipped, unchanged, or written
with their chunk 0) out of the files found; "embed" counts chunks embedded and written out of the chunks
the reader has produced so far (final once every file is read)."""
KILL_AFTER_WRITES = "AIXPY_TEST_KILL_AFTER_WRITES"
"""Test hook: SIGKILL this process after that many collection writes (to test interrupted runs)."""
_PROBE = 256
_KEYS_PER_PROBE = 64
_FIRST_BATCH = 16


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
    return _signature(embedder, embedder.dimensions())


def _signature(embedder: EmbeddingService, dimensions: int) -> Signature:
    return Signature(embedder.provider or type(embedder).__name__, embedder.model(), dimensions)


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


def _delete_tails(starts: list[tuple[str, int]], writes: _Writes, window: int = _PROBE) -> Plan[Step, Any, int]:
    """Delete chunks ``key:start`` and up of each ``(key, start)``: probe window after window (one
    ``get`` for all keys) while a key's window finds any, then one ``delete``, each file's ids highest
    first, so a run killed mid-way leaves every file's ids contiguous from 0."""
    deleted = 0
    for i in range(0, len(starts), _KEYS_PER_PROBE):
        probe = dict(starts[i : i + _KEYS_PER_PROBE])
        found: dict[str, list[str]] = {}
        while probe:
            ids = [f"{key}:{n}" for key, s in probe.items() for n in range(s, s + window)]
            hits = {d.id for d in (yield step("get", ids))}
            for key in list(probe):
                mine = [f"{key}:{n}" for n in range(probe[key], probe[key] + window) if f"{key}:{n}" in hits]
                found.setdefault(key, []).extend(mine)
                probe[key] += window
                if not mine:
                    del probe[key]
        doomed = [doc_id for ids in found.values() for doc_id in reversed(ids)]
        if doomed:
            deleted += (yield step("delete", doomed)).deleted
            writes.done()
    return deleted


def _delete_chunks(coll: BaseCollection, key: str, start: int, writes: _Writes) -> int:
    """:func:`_delete_tails` of one file, with blocking calls."""
    return run(_delete_tails([(key, start)], writes), lambda s: getattr(coll, s.kind)(*s.args))


@dataclass(slots=True)
class _File:
    """A file as the reader hands it over: ``kind`` is "skip" (with ``reason``), "unchanged" or "changed"
    (with its chunk documents, chunk 0 first)."""

    path: Path
    kind: str
    reason: str = ""
    key: str = ""
    docs: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Job:
    """A changed file in flight: ``left`` of its chunks not yet taken into an embedding batch."""

    path: Path
    key: str
    head: Document | None
    n: int
    left: int
    failed: bool = False


Batch = list[tuple[Document, _Job]]


@dataclass(slots=True)
class _Run:
    """One run's moving state (the plan's; ``planned`` is also raised by the reader thread)."""

    report: IndexReport
    progress: Progress | None
    files_total: int = 0
    files_done: int = 0
    planned: int = 0
    chunks_done: int = 0
    carry: deque[tuple[Document, _Job]] = field(default_factory=deque)
    eof: bool = False
    batches: int = 0

    def file_done(self, n: int = 1) -> None:
        self.files_done += n
        if self.progress and n:
            self.progress("scan", self.files_done, self.files_total)

    def chunks(self, n: int) -> None:
        self.chunks_done += n
        if self.progress and n:
            self.progress("embed", self.chunks_done, max(self.planned, self.chunks_done))


@dataclass(frozen=True, slots=True)
class FileJob:
    """How one run turns a file into its chunk documents: plain data, so the Ray engine ships it to
    its workers (which measure tokens with their own copy of the model's tokenizer)."""

    base: Path
    root: str
    markers: dict[str, tuple[Any, Any]]
    force: bool
    signature: str
    model: str
    chunk_size: int
    overlap: int
    metadata: dict[str, Any]
    tags: list[str]
    load_options: LoadOptions

    def prepare(self, path: Path, counter: TokenCounter) -> _File:
        """Load, compare with the file's marker, chunk."""
        try:
            src = load_file(path, self.base, self.load_options)
        except (InvalidInputError, MissingDependencyError, OSError) as e:
            return _File(path, "skip", reason=str(e))
        key = file_key(src.path)
        if not self.force and self.markers.get(f"{key}:0") == (src.sha256, self.signature):
            return _File(path, "unchanged")
        chunks, warnings = chunk_file(src, counter, self.chunk_size, self.overlap)
        return _File(path, "changed", key=key, docs=self.documents(src, key, chunks), warnings=warnings)

    def documents(self, src: SourceFile, key: str, chunks: list[FileChunk]) -> list[Document]:
        docs: list[Document] = []
        base = {**src.metadata, **self.metadata}
        for c in chunks:
            meta: dict[str, Any] = {**base, **c.metadata, "source": src.source, "path": str(src.path),
                                    "root": self.root, "chunk": c.index, "start": c.start, "end": c.end,
                                    "tokens": c.tokens}
            docs.append(Document(id=f"{key}:{c.index}", content=c.text, metadata=meta,
                                 embedding_model=self.model, tags=list(self.tags)))
        if docs:
            docs[0].metadata.update(file_sha256=src.sha256, file_chunks=len(chunks), index_signature=self.signature)
        return docs


class Prepare:
    """The reader's ``prepare``: :meth:`FileJob.prepare` with this process's tokenizer, counting the
    chunks planned (``count`` alone for a file prepared elsewhere)."""

    def __init__(self, job: FileJob, counter: TokenCounter, state: _Run) -> None:
        self.job, self.counter, self._state = job, counter, state

    def __call__(self, path: Path) -> _File:
        return self.count(self.job.prepare(path, self.counter))

    def count(self, item: _File) -> _File:
        self._state.planned += len(item.docs)
        return item


class Indexer:
    """Load, chunk (in the embedding model's tokens), embed in batches and upsert the files under a path.

    A reader thread loads and chunks files ahead of the embedder (holding at most ``read_ahead``
    chunks); chunks are embedded ``batch_size`` at a time across files, and each batch is written
    while the next one is embedded. :meth:`index_path` and :meth:`aindex_path` run the same plan.

    Args:
        chunk_size: tokens per chunk; default: the model's window (at most 512), else 256.
        overlap: tokens shared by consecutive chunks; default ``chunk_size // 8``.
        batch_size: chunks per embedding call (and per chunk write), across files.
        prune: remove chunks of files no longer under a re-indexed root.
        force: re-embed every file even when unchanged.
        metadata: added to every chunk (e.g. from ``--meta key=value``); tags: added to every chunk.
        read_ahead: chunks loaded and chunked ahead of the embedder at most (default 4 batches).
    """

    def __init__(
        self,
        embedder: EmbeddingService,
        collection: BaseCollection,
        *,
        chunk_size: int | None = None,
        overlap: int | None = None,
        batch_size: int = 256,
        prune: bool = True,
        force: bool = False,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        load_options: LoadOptions | None = None,
        read_ahead: int | None = None,
    ) -> None:
        self.embedder = embedder
        self.collection = collection
        self.counter = token_counter_for(embedder)
        self.chunk_size = chunk_size or default_chunk_size(self.counter)
        self.overlap = self.chunk_size // 8 if overlap is None else overlap
        check_sizes(self.chunk_size, self.overlap, self.counter.window)
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.read_ahead = read_ahead or 4 * batch_size
        self.prune = prune
        self.force = force
        self.metadata = dict(metadata or {})
        self.tags = list(dict.fromkeys(tags))
        self.load_options = load_options or LoadOptions()
        extra = hashlib.sha256(json.dumps([self.metadata, self.tags, self.load_options.text_fields],
                                          sort_keys=True, default=str).encode()).hexdigest()[:12]
        self._signature = f"{embedder.model()}|{self.counter.name}|{self.chunk_size}|{self.overlap}|{extra}"
        self._writes = _Writes()
        # a write holds at most batch_size chunks of one file: a hole a killed write leaves is narrower
        self._window = max(_PROBE, batch_size)
        self.in_flight = 1

    def index_path(self, path: str | Path, progress: Progress | None = None) -> IndexReport:
        return run_sync(self._plan(Path(path), progress), self.collection, self.embedder)

    async def aindex_path(self, path: str | Path, progress: Progress | None = None) -> IndexReport:
        """:meth:`index_path` with the collection's and embedder's async methods."""
        return await run_async(self._plan(Path(path), progress), self.collection, self.embedder)

    # ------------------------------------------------------------------ the plan

    def _plan(self, path: Path, progress: Progress | None) -> Plan[Step, Any, IndexReport]:
        root = path.resolve()
        base = root if root.is_dir() else root.parent
        report = IndexReport(chunk_size=self.chunk_size, overlap=self.overlap, tokenizer=self.counter.name)
        state = _Run(report, progress)
        sig = _signature(self.embedder, (yield step("dims")))
        recorded = mf.verify_signature(self.collection, mf.signature_from((yield step("get", [mf.SIGNATURE_ID]))),
                                       sig, "index run")
        roots = recorded[1] if recorded else []
        entries: list[tuple[Path, bool]] = yield step("walk", root)
        state.files_total = len(entries)
        files: list[Path] = []
        present: list[str] = []
        for p, supported in entries:
            if supported:
                files.append(p)
                present.append(p.relative_to(base).as_posix() if p != base else p.name)
            else:
                report.skip(p, "unsupported file type")
        report.files_seen = len(files)
        state.file_done(len(entries) - len(files))
        if recorded is None and (yield step("count", CHUNKS)):
            # chunks from before index records, keyed by the path relative to the folder indexed:
            # removed before the signature is written, so a killed run redoes this
            report.chunks_deleted += yield from _delete_tails([(file_key(rel), 0) for rel in present], self._writes)
        if recorded is None or str(root) not in roots:
            yield step("upsert", mf.signature_doc(recorded[0] if recorded else sig, [*roots, str(root)]))
            self._writes.done()
        rec = mf.root_from((yield step("get", [mf.root_id(str(root))])), str(root), str(base))
        if not set(present) <= set(rec.files):  # write-ahead: the record lists every file that may get chunks
            yield step("upsert", mf.root_doc(mf.RootRecord(rec.root, rec.base, [*rec.files, *present]),
                                             sig.dimensions))
            self._writes.done()
        markers: dict[str, tuple[Any, Any]] = {}
        keys = [f"{file_key(p.resolve())}:0" for p in files]
        for i in range(0, len(keys), _PROBE):
            for d in (yield step("get", keys[i : i + _PROBE])):
                markers[d.id] = (d.metadata.get("file_sha256"), d.metadata.get("index_signature"))
        job = FileJob(base, str(root), markers, self.force, self._signature, self.embedder.model(), self.chunk_size,
                      self.overlap, self.metadata, self.tags, self.load_options)
        reader = yield step("read", files, Prepare(job, self.counter, state), lambda f: len(f.docs), self.read_ahead)
        yield from self._embed_and_store(reader, state)
        gone = sorted(set(rec.files) - set(present))
        if self.prune and gone:
            report.chunks_deleted += yield from _delete_tails([(file_key(base / rel), 0) for rel in gone],
                                                              self._writes)
            report.files_pruned += len(gone)
            yield step("upsert", mf.root_doc(mf.RootRecord(rec.root, rec.base, present), sig.dimensions))
            self._writes.done()
        return report

    def _embed_and_store(self, reader: Any, state: _Run) -> Plan[Step, Any, None]:
        """Batches of ``batch_size`` chunks across files; batch k+1 is embedded while batch k is written
        (up to ``in_flight`` batches are embedded at once: the Ray engine's actors embed several).

        Per file: chunks 1..n are written, then the stale tail (n and up) is deleted, then chunk 0 (the
        "file is indexed" marker), in the write of the next batch: a run killed anywhere leaves an old
        or missing marker, so the file is redone."""
        heads: Batch = []
        done: tuple[Batch, list[_Job]] = ([], [])  # embedded, not yet written
        flying: deque[tuple[Batch, list[_Job], list[Document], Any]] = deque()
        more = True
        while more:
            batch, ending, more = yield from self._gather(reader, state)
            # a reader may hand over chunks already embedded
            todo = [d for d, _ in batch if d.embedding is None]
            flying.append((batch, ending, todo, (yield step("embed", [d.content for d in todo])) if todo else None))
            heads = yield from self._flush(*done, heads, state)
            done = ([], [])
            if len(flying) >= self.in_flight:
                done = yield from self._landed(flying.popleft())
        while flying:
            heads = yield from self._flush(*done, heads, state)
            done = yield from self._landed(flying.popleft())
        heads = yield from self._flush(*done, heads, state)
        yield from self._flush([], [], heads, state)

    @staticmethod
    def _landed(flight: tuple[Batch, list[_Job], list[Document], Any]) -> Plan[Step, Any, tuple[Batch, list[_Job]]]:
        batch, ending, todo, handle = flight
        if handle is not None:
            for d, v in zip(todo, (yield step("wait", handle)), strict=True):
                d.embedding = v
        return batch, ending

    def _gather(self, reader: Any, state: _Run) -> Plan[Step, Any, tuple[Batch, list[_Job], bool]]:
        """The next batch of chunks (body chunks first, each file's chunk 0 last) and the files whose
        last chunk it holds; False when the reader is exhausted."""
        batch: Batch = []
        ending: list[_Job] = []
        # slow start: the first batches are small, so embedding starts as soon as the reader has a few
        # chunks (it then runs ahead of the embedder) and the first write comes early
        size = min(self.batch_size, _FIRST_BATCH << state.batches)
        state.batches += 1
        while len(batch) < size:
            if not state.carry:
                item: _File | None = None if state.eof else (yield step("next", reader))
                if item is None:
                    state.eof = True
                    break
                job = self._receive(item, state)
                if job is not None and job.head is None:
                    ending.append(job)  # emptied: its old chunks go
                elif job is not None:
                    state.carry.extend((d, job) for d in item.docs[1:] + item.docs[:1])
                continue
            doc, job = state.carry.popleft()
            batch.append((doc, job))
            job.left -= 1
            if not job.left:
                ending.append(job)
        return batch, ending, not (state.eof and not state.carry)

    def _receive(self, item: _File, state: _Run) -> _Job | None:
        report = state.report
        if item.kind == "skip":
            report.skip(item.path, item.reason)
        elif item.kind == "unchanged":
            report.files_unchanged += 1
        else:
            report.warnings.extend(item.warnings)
            if not item.docs:
                report.files_empty += 1
            return _Job(item.path, item.key, item.docs[0] if item.docs else None, len(item.docs), len(item.docs))
        state.file_done()
        return None

    def _flush(self, batch: Batch, ending: list[_Job], heads: Batch, state: _Run) -> Plan[Step, Any, Batch]:
        """Write ``batch``'s body chunks with the ``heads`` now due (one upsert), then delete the stale
        tails of the files ``batch`` ends; returns their heads, due in the next write."""
        report = state.report
        body = [(d, j) for d, j in batch if d is not j.head]
        writes = [(d, j) for d, j in body + heads if not j.failed]
        if writes:
            res: UpsertResult = yield step("upsert_batch", [d for d, _ in writes])
            self._writes.done()
            if res.failed:
                by_id = {d.id: j for d, j in writes}
                for e in res.errors:
                    report.failures.append(f"{by_id[e.doc_id].path}: {e}")
                for doc_id in res.failed_ids:
                    by_id[doc_id].failed = True
        for _, j in heads:
            if not j.failed:
                report.files_indexed += 1
                report.chunks_embedded += j.n
        state.file_done(len(heads))
        state.chunks(len(body) + len(heads))
        live = [j for j in ending if not j.failed]
        if live:
            report.chunks_deleted += yield from _delete_tails([(j.key, j.n) for j in live], self._writes,
                                                              self._window)
        state.file_done(len(ending) - sum(1 for j in live if j.head is not None))
        return [(j.head, j) for j in live if j.head is not None]


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
    return _hits(res, snippet_chars)


async def asearch(
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
    """:func:`search` with the embedder's and collection's async methods."""
    sig = _signature(embedder, await embedder.adimensions())
    mf.verify_signature(collection, mf.signature_from(await collection.aget([mf.SIGNATURE_ID])), sig, "search")
    vec = (await embedder.aembed_array([text]))[0]
    res = await collection.aquery(search_query(vec, text, limit=limit, min_score=min_score, filter=filter,
                                              hybrid=hybrid))
    return _hits(res, snippet_chars)


def _hits(res: QueryResult, snippet_chars: int) -> list[Hit]:
    hits = []
    for m in res.matches:
        content = " ".join(m.document.content.split())
        snippet = content if len(content) <= snippet_chars else content[: snippet_chars - 1].rstrip() + "…"
        meta = m.document.metadata
        hits.append(Hit(m.rank, m.score, str(meta.get("source", "")), int(meta.get("chunk", 0)), snippet,
                        m.document.id, str(meta.get("path", ""))))
    return hits
