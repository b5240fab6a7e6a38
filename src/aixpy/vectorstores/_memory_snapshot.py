"""Snapshot file format of the memory backend (no pickle anywhere).

A snapshot is a zip archive:

- ``manifest.json``: ``{"format": "aixpy-memory-snapshot", "version": 1, "collections": [...]}``
  with each collection's name, options, dimensions, row count and member names;
- per collection, ``c<i>/vectors.npy`` (rows as stored, float32), ``c<i>/norms.npy`` (float32 L2
  norm of each original vector) and ``c<i>/documents.json`` (documents in row order).

Files are written atomically (temporary file in the same directory, fsync, ``os.replace``, fsync of
the directory), so a crash leaves either the old or the new snapshot, never a torn one. Anything
unreadable raises :class:`~aixpy.errors.StoreError`.

Several processes sharing one snapshot (``load`` ... ``save``) would each write back what *they* loaded,
and the last one would silently drop the others' changes. :func:`snapshot_lock` is the cure: an
exclusive ``flock`` on ``<snapshot>.lock`` beside the file, held from before the load until after the
save, so such read-modify-write sessions run one after the other. The CLI holds it in every command
that writes a snapshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from aixpy.errors import AixpyError, StoreError
from aixpy.vectorstores.base import CollectionOptions
from aixpy.vectorstores.types import Document, Scope
from aixpy.vectorstores.validation import validate_collection_name, validate_document

__all__ = ["FORMAT", "VERSION", "CollectionData", "atomic_write", "read_snapshot", "snapshot_lock", "write_snapshot"]

FORMAT = "aixpy-memory-snapshot"
VERSION = 1
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class CollectionData:
    """One collection's content as stored in (or read from) a snapshot."""

    name: str
    options: CollectionOptions
    dimensions: int | None
    vectors: npt.NDArray[np.float32]
    norms: npt.NDArray[np.float32]
    documents: list[Document]


# ------------------------------------------------------------------ encoding


def _time(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse_time(v: Any) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise ValueError(f"timestamp must be a string, got {type(v).__name__}")
    return datetime.fromisoformat(v)


def _options_to_json(o: CollectionOptions) -> dict[str, Any]:
    return {
        "dimensions": o.dimensions,
        "metric": o.metric,
        "dedup": o.dedup,
        "dedup_threshold": o.dedup_threshold,
        "ttl_seconds": None if o.ttl is None else o.ttl.total_seconds(),
        "max_documents": o.max_documents,
    }


def _options_from_json(d: Any) -> CollectionOptions:
    if not isinstance(d, dict):
        raise ValueError("collection options must be an object")
    ttl = d.get("ttl_seconds")
    return CollectionOptions(
        dimensions=d.get("dimensions"),
        metric=d.get("metric", "cosine"),
        dedup=bool(d.get("dedup", False)),
        dedup_threshold=float(d.get("dedup_threshold", 0.99)),
        ttl=None if ttl is None else timedelta(seconds=float(ttl)),
        max_documents=d.get("max_documents"),
    )


def _doc_to_json(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "content": d.content,
        "embedding_model": d.embedding_model,
        "metadata": d.metadata,
        "tags": d.tags,
        "scope": d.scope.as_dict(),
        "created_at": _time(d.created_at),
        "updated_at": _time(d.updated_at),
        "expires_at": _time(d.expires_at),
    }


def _doc_from_json(d: Any) -> Document:
    if not isinstance(d, dict):
        raise ValueError("document entry must be an object")
    scope = d.get("scope") or {}
    if not isinstance(scope, dict):
        raise ValueError("document scope must be an object")
    doc = Document(
        id=d["id"],
        content=d.get("content", ""),
        embedding=[1.0],  # checked as a whole matrix instead; a dummy lets validate_document run
        embedding_model=d.get("embedding_model"),
        metadata=d.get("metadata") or {},
        tags=list(d.get("tags") or []),
        scope=Scope(scope.get("tenant"), scope.get("user"), scope.get("session")),
        created_at=_parse_time(d.get("created_at")),
        updated_at=_parse_time(d.get("updated_at")),
        expires_at=_parse_time(d.get("expires_at")),
    )
    validate_document(doc, None)
    if doc.embedding_model is not None and not isinstance(doc.embedding_model, str):
        raise ValueError(f"document {doc.id!r}: embedding_model must be a string")
    doc.embedding = None
    return doc


# ------------------------------------------------------------------ writing


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` via a temporary file in the same directory, fsync and ``os.replace``."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise StoreError(f"cannot write snapshot {path}: {e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise StoreError(f"cannot write snapshot {path}: {e}") from e
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_npy(zf: zipfile.ZipFile, name: str, arr: npt.NDArray[Any]) -> None:
    with zf.open(name, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


def write_members(f: IO[bytes], collections: list[CollectionData]) -> None:
    """Write the zip archive for ``collections`` into the open binary file ``f``."""
    manifest: dict[str, Any] = {"format": FORMAT, "version": VERSION, "collections": []}
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i, c in enumerate(collections):
            prefix = f"c{i}/"
            _write_npy(zf, prefix + "vectors.npy", c.vectors)
            _write_npy(zf, prefix + "norms.npy", c.norms)
            docs = json.dumps([_doc_to_json(d) for d in c.documents], ensure_ascii=False, allow_nan=False)
            zf.writestr(prefix + "documents.json", docs.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
            manifest["collections"].append({
                "name": c.name,
                "options": _options_to_json(c.options),
                "dimensions": c.dimensions,
                "count": len(c.documents),
                "prefix": prefix,
            })
        zf.writestr("manifest.json", json.dumps(manifest, indent=1), compress_type=zipfile.ZIP_DEFLATED)


def write_snapshot(path: str | os.PathLike[str], collections: list[CollectionData]) -> None:
    """Atomically write a snapshot of ``collections`` to ``path``."""
    atomic_write(Path(path), lambda f: write_members(f, collections))


# ------------------------------------------------------------------ locking


class _HeldLock:
    """One lock file of this process: a thread lock (threads) plus the ``flock`` (processes), reentrant."""

    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.fd: int | None = None
        self.depth = 0


_LOCKS: dict[str, _HeldLock] = {}
_LOCKS_GUARD = threading.Lock()


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file guarding the snapshot at ``path``: ``<snapshot>.lock`` in the same directory."""
    p = Path(path).expanduser()
    return p.with_name(p.name + ".lock")


@contextlib.contextmanager
def snapshot_lock(path: str | os.PathLike[str], *, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold the exclusive inter-process lock of the snapshot at ``path`` (reentrant in one process).

    ``on_wait(lock file)`` is called once if another process holds it, before waiting for it. Without
    ``fcntl`` (Windows) only the threads of this process are serialised.
    """
    lock_file = lock_path(path)
    key = os.path.abspath(lock_file)
    with _LOCKS_GUARD:
        held = _LOCKS.setdefault(key, _HeldLock())
    with held.thread_lock:
        if held.depth == 0:
            held.fd = _acquire(lock_file, on_wait)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                os.close(held.fd)  # closing the descriptor releases the flock
                held.fd = None


def _acquire(lock_file: Path, on_wait: Callable[[Path], None] | None) -> int | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreError(f"cannot open the snapshot lock {lock_file}: {e}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(lock_file)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


# ------------------------------------------------------------------ reading


def _read_npy(zf: zipfile.ZipFile, name: str) -> npt.NDArray[Any]:
    with zf.open(name) as f:
        arr = np.lib.format.read_array(f, allow_pickle=False)
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
        raise ValueError(f"{name}: expected a float32 array, got {getattr(arr, 'dtype', type(arr))}")
    return arr


def _read_collection(zf: zipfile.ZipFile, entry: Any) -> CollectionData:
    if not isinstance(entry, dict):
        raise ValueError("collection entry must be an object")
    name = validate_collection_name(entry.get("name"))
    options = _options_from_json(entry.get("options"))
    dims, count, prefix = entry.get("dimensions"), entry.get("count"), entry.get("prefix")
    if not isinstance(count, int) or count < 0 or not isinstance(prefix, str):
        raise ValueError(f"collection {name!r}: bad count or prefix")
    if dims is not None and (not isinstance(dims, int) or dims < 1):
        raise ValueError(f"collection {name!r}: bad dimensions {dims!r}")
    vectors = _read_npy(zf, prefix + "vectors.npy")
    norms = _read_npy(zf, prefix + "norms.npy")
    raw_docs = json.loads(zf.read(prefix + "documents.json").decode("utf-8"))
    if not isinstance(raw_docs, list) or len(raw_docs) != count:
        raise ValueError(f"collection {name!r}: expected {count} documents")
    if count and (dims is None or vectors.shape != (count, dims)):
        raise ValueError(f"collection {name!r}: vectors have shape {vectors.shape}, expected ({count}, {dims})")
    if norms.shape != (count,):
        raise ValueError(f"collection {name!r}: norms have shape {norms.shape}, expected ({count},)")
    if not (np.all(np.isfinite(vectors)) and np.all(np.isfinite(norms)) and np.all(norms >= 0)):
        raise ValueError(f"collection {name!r}: vectors contain NaN, infinite or negative values")
    docs = [_doc_from_json(d) for d in raw_docs]
    if len({d.id for d in docs}) != count:
        raise ValueError(f"collection {name!r}: duplicate document ids")
    return CollectionData(name, options, dims, vectors.reshape(count, dims or 0) if count else vectors,
                          norms, docs)


def read_snapshot(path: str | os.PathLike[str]) -> list[CollectionData]:
    """Read every collection of the snapshot at ``path``; raise :class:`StoreError` if unusable."""
    p = Path(path)
    try:
        with zipfile.ZipFile(p, "r") as zf:
            info = zf.getinfo("manifest.json")
            if info.file_size > _MAX_MANIFEST_BYTES:
                raise ValueError("manifest.json is too large")
            manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ValueError("not an aixpy memory snapshot")
            if manifest.get("version") != VERSION:
                raise StoreError(
                    f"snapshot {p} has format version {manifest.get('version')!r}; "
                    f"this aixpy reads version {VERSION}"
                )
            entries = manifest.get("collections")
            if not isinstance(entries, list):
                raise ValueError("manifest has no collection list")
            out = [_read_collection(zf, e) for e in entries]
            if len({c.name for c in out}) != len(out):
                raise ValueError("duplicate collection names")
            return out
    except StoreError:
        raise
    except FileNotFoundError:
        raise StoreError(f"snapshot {p} does not exist") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, RecursionError, zipfile.BadZipFile,
            AixpyError) as e:
        raise StoreError(f"snapshot {p} is corrupt or truncated: {type(e).__name__}: {e}") from e
