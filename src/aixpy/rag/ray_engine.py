"""Distributed indexing on Ray (``pip install 'aixpy[ray]'``; ``aixpy index PATH --engine ray``).

The run is the indexer's own plan (:meth:`aixpy.rag.Indexer.index_path`): the same signature and root
records, the same markers, the same write order (each file's chunk 0 last, stale tails deleted, prune
after), so a killed run is completed by the next one exactly as on one machine. Only its *reader*
changes where its reads and embeddings run:

1. ``read/chunk``: a Ray Data stage of tasks loads and chunks blocks of files with
   :meth:`aixpy.rag.indexer.FileJob.prepare` (the single-process code, shipped as data) and the
   model's tokenizer; the driver takes the prepared files in order;
2. ``embed``: an actor pool, each actor holding the embedding model (built from the same
   ``embeddings:`` config), embeds the plan's batches, ``workers + 1`` batches in flight;
3. ``write``: the plan writes each embedded batch into the store (one batch upsert).

The batches are the plan's, composed exactly as on one machine, so the vectors are too: this matters,
because the local model quantizes its activations per batch (an int8 model's vectors depend on the
batch a text is embedded with, by up to ~1e-2). The documents are the single-process path's: same
ids, metadata, vectors and index records.

The store must be a server (pgvector, Qdrant server, Firestore): an embedded or memory store lives in
one process's memory or files, which a cluster's processes cannot share, so :func:`check_store`
refuses it.
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aixpy.config.stores import EmbeddingsConfig, VectorStoreConfig
from aixpy.errors import MissingDependencyError, UserError
from aixpy.rag._pipeline import run_sync
from aixpy.rag.indexer import Indexer, IndexReport, Prepare, Progress
from aixpy.rag.tokens import TokenCounter, token_counter_for

__all__ = ["RayOptions", "check_store", "index_path_ray"]

INSTALL = "pip install 'aixpy[ray]'"


def check_store(cfg: VectorStoreConfig) -> None:
    """UserError unless ``cfg`` is a server-mode store every Ray worker and the driver can reach."""
    q = cfg.qdrant
    embedded = cfg.provider == "memory" or (cfg.provider == "qdrant" and not (q is not None and (q.url or q.host)))
    if embedded:
        raise UserError(f"--engine ray needs a server-mode vector store (pgvector, or qdrant with url:), not the "
                        f"embedded {cfg.provider} store: the cluster's workers cannot share it")


class RayOptions:
    """``address``: a running cluster (``None``: start a local one, or use the one already initialised);
    ``workers``: embedding actors (default: one per CPU of the cluster, up to 8); ``files_per_block``:
    files read and chunked per task."""

    def __init__(self, address: str | None = None, workers: int | None = None, files_per_block: int = 8) -> None:
        if workers is not None and workers < 1:
            raise UserError(f"workers must be at least 1, got {workers}")
        if files_per_block < 1:
            raise UserError(f"files_per_block must be at least 1, got {files_per_block}")
        self.address, self.workers, self.files_per_block = address, workers, files_per_block


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError("ray (for --engine ray)", INSTALL) from e
    return ray


def index_path_ray(indexer: Indexer, path: str | Path, embeddings: EmbeddingsConfig,
                   options: RayOptions | None = None, progress: Progress | None = None) -> IndexReport:
    """:meth:`Indexer.index_path` with files read, chunked and embedded on a Ray cluster.

    ``embeddings`` is the config ``indexer.embedder`` was built from: each worker builds its own
    embedder from it (a model is not shipped between processes)."""
    opts = options or RayOptions()
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=opts.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env=_runtime_env())
    try:
        workers = opts.workers or max(1, min(8, int(ray.cluster_resources().get("CPU", 1))))
        actor = ray.remote(num_cpus=0.5)(_Embed)
        pool = [actor.remote(embeddings) for _ in range(workers)]
        turn = itertools.count()

        def embed(texts: list[str]) -> Any:
            return pool[next(turn) % workers].embed.remote(texts)

        reader = functools.partial(_RayReader, embeddings, opts.files_per_block)
        saved, indexer.in_flight = indexer.in_flight, workers + 1
        try:
            return run_sync(indexer._plan(Path(path), progress), indexer.collection, indexer.embedder, reader,
                            {"embed": embed, "wait": ray.get})
        finally:
            indexer.in_flight = saved
            for a in pool:
                ray.kill(a)
    finally:
        if started:
            ray.shutdown()


def _runtime_env() -> dict[str, Any]:
    """Workers import aixpy from where the driver does (a source checkout on PYTHONPATH included)."""
    pythonpath = os.environ.get("PYTHONPATH")
    return {"env_vars": {"PYTHONPATH": pythonpath}} if pythonpath else {}


# ---------------------------------------------------------------------- worker side

_EMBEDDERS: dict[str, Any] = {}


def _embedder(cfg: EmbeddingsConfig) -> Any:
    """This worker process's embedder for ``cfg`` (built once per process)."""
    key = cfg.model_dump_json()
    if key not in _EMBEDDERS:
        from aixpy import embeddings

        _EMBEDDERS[key] = embeddings.new(cfg)
    return _EMBEDDERS[key]


def _counter(cfg: EmbeddingsConfig) -> TokenCounter:
    return token_counter_for(_embedder(cfg))


def _read_chunk(batch: dict[str, Any], job: bytes, cfg: EmbeddingsConfig) -> dict[str, Any]:
    """The read/chunk stage: a block of paths to prepared files (pickled :class:`~aixpy.rag.indexer._File`)."""
    file_job = pickle.loads(job)
    counter = _counter(cfg)
    return {"file": [pickle.dumps(file_job.prepare(Path(p), counter)) for p in batch["path"]]}


class _Embed:
    """An actor holding the model (Ray wraps it with ``ray.remote``)."""

    def __init__(self, cfg: EmbeddingsConfig) -> None:
        self.embedder = _embedder(cfg)

    def embed(self, texts: list[str]) -> Any:
        return self.embedder.embed_array(texts)


# ---------------------------------------------------------------------- driver side


class _RayReader:
    """The plan's reader, backed by the Ray Data pipeline; hands files over in the order given
    (``weight`` and ``budget`` are the local reader's: Ray Data applies its own backpressure)."""

    def __init__(self, cfg: EmbeddingsConfig, per_block: int, files: list[Path], prepare: Prepare,
                 weight: Any, budget: int) -> None:
        self._prepare = prepare
        self._rows: Iterator[dict[str, Any]] = iter(())
        if files:
            self._rows = self._pipeline(cfg, per_block, files, prepare)

    @staticmethod
    def _pipeline(cfg: EmbeddingsConfig, per_block: int, files: list[Path],
                  prepare: Prepare) -> Iterator[dict[str, Any]]:
        with warnings.catch_warnings():  # Ray Data's own deprecations, raised when its context is made
            warnings.simplefilter("ignore", DeprecationWarning)
            data = _ray().data
            ctx = data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ds = data.from_items([{"path": str(p)} for p in files],
                             override_num_blocks=max(1, min(len(files), -(-len(files) // per_block))))
        ds = ds.map_batches(_read_chunk, batch_size=per_block, num_cpus=0.25,
                            fn_kwargs={"job": pickle.dumps(prepare.job), "cfg": cfg})
        rows: Iterator[dict[str, Any]] = iter(ds.iter_rows())
        return rows

    def get(self) -> Any:
        row = next(self._rows, None)
        return None if row is None else self._prepare.count(pickle.loads(row["file"]))

    def close(self) -> None:
        self._rows = iter(())
