"""What the CLI commands share: finding the config, applying ``--store`` / ``--provider`` overrides,
and opening the embedder, the store and a collection.

Overrides keep the rest of the config: ``--store pgvector`` switches ``vectorstore.provider`` but uses
the config's ``vectorstore.pgvector`` block (or ``$DATABASE_URL`` when there is none), and
``--provider openai --model M`` switches ``embeddings.provider`` keeping ``embeddings.openai`` with
its model replaced. A block that is required and missing is a :class:`ConfigError` naming the key
(and the environment variable) to set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aixpy.config.stores import (
    EmbeddingsConfig,
    FirestoreStoreConfig,
    HuggingFaceEmbeddingsConfig,
    LocalEmbeddingsConfig,
    MemoryStoreConfig,
    OllamaEmbeddingsConfig,
    OpenAIEmbeddingsConfig,
    PgvectorStoreConfig,
    QdrantStoreConfig,
    TEIEmbeddingsConfig,
    VectorStoreConfig,
)
from aixpy.errors import ConfigError, UnknownProviderError, UserError

if TYPE_CHECKING:
    from aixpy.config.sessions import SessionsConfig
    from aixpy.embeddings.base import EmbeddingService
    from aixpy.vectorstores.base import BaseCollection, VectorStore

DEFAULT_HOME = Path(".aixpy")
DEFAULT_COLLECTION = "knowledge_base"
MEMORY_SNAPSHOT = DEFAULT_HOME / "memory.snapshot"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
PG_ENV = "DATABASE_URL"
PROJECT_ENVS = ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT_ID")

EMBEDDING_BLOCKS: dict[str, type[Any]] = {
    "local": LocalEmbeddingsConfig,
    "openai": OpenAIEmbeddingsConfig,
    "huggingface": HuggingFaceEmbeddingsConfig,
    "huggingface_tei": TEIEmbeddingsConfig,
    "ollama": OllamaEmbeddingsConfig,
}


@dataclass(slots=True)
class Runtime:
    """The resolved configuration of one CLI invocation."""

    source: str  # where the config came from, for humans
    embeddings: EmbeddingsConfig
    vectorstore: VectorStoreConfig
    # key path -> ${VAR}s not set, in provider blocks no provider selects (AixpyConfig.unresolved_variables)
    unresolved: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the config's ``sessions:`` block; ``None``: $AIXPY_SESSIONS_REDIS_URL, else files (sessions.default_store)
    sessions: SessionsConfig | None = None

    # ------------------------------------------------------------------ overrides

    def with_store(self, name: str | None) -> Runtime:
        """This runtime with ``vectorstore.provider`` set to ``name`` (``None``: unchanged)."""
        if not name:
            return self
        from aixpy import vectorstores

        known = vectorstores.providers()
        if name not in known:
            raise UnknownProviderError("vector store", name, known)
        vs = self.vectorstore
        update: dict[str, Any] = {"provider": name}
        if name == "pgvector" and vs.pgvector is None:
            dsn = os.environ.get(PG_ENV, "").strip()
            if not dsn:
                raise ConfigError(
                    f"--store pgvector needs a PostgreSQL connection string: set "
                    f"vectorstore.pgvector.connection_string in the config (e.g. ${{{PG_ENV}}}) or the "
                    f"{PG_ENV} environment variable", path="vectorstore.pgvector")
            update["pgvector"] = PgvectorStoreConfig(connection_string=dsn)
        if name == "firestore" and vs.firestore is None:
            project = next((os.environ[e].strip() for e in PROJECT_ENVS if os.environ.get(e, "").strip()), "")
            if not project:
                raise ConfigError(
                    "--store firestore needs a Google Cloud project: set vectorstore.firestore.project_id "
                    f"in the config or the {' or '.join(PROJECT_ENVS)} environment variable "
                    "(FIRESTORE_EMULATOR_HOST selects the emulator)", path="vectorstore.firestore")
            update["firestore"] = FirestoreStoreConfig(project_id=project)
        return dataclasses.replace(self, vectorstore=vs.model_copy(update=update)).check_unresolved()

    def with_embedder(self, provider: str | None, model: str | None = None) -> Runtime:
        """This runtime with ``embeddings.provider`` / its ``model`` overridden (``None``: unchanged)."""
        if not provider and not model:
            return self
        from aixpy import embeddings

        emb = self.embeddings
        name = provider or emb.provider
        known = embeddings.providers()
        if name not in known:
            raise UnknownProviderError("embeddings", name, known)
        update: dict[str, Any] = {"provider": name}
        block = getattr(emb, name, None) if name in EMBEDDING_BLOCKS else None
        if model:
            if name not in EMBEDDING_BLOCKS:
                raise UserError(f"embeddings provider {name!r} has a fixed model; drop --model")
            if block is not None:
                block = block.model_copy(update={"model": model})
            elif name != "huggingface_tei":
                block = EMBEDDING_BLOCKS[name](model=model)
            update[name] = block
        if name == "huggingface" and block is None:
            raise ConfigError("provider huggingface needs a model: pass --model ORG/NAME or set "
                              "embeddings.huggingface.model in the config", path="embeddings.huggingface")
        if name == "huggingface_tei" and block is None:
            raise ConfigError("provider huggingface_tei needs the TEI server's address: set "
                              "embeddings.huggingface_tei.endpoint in the config", path="embeddings.huggingface_tei")
        return dataclasses.replace(self, embeddings=emb.model_copy(update=update)).check_unresolved()

    def check_unresolved(self) -> Runtime:
        """This runtime; ConfigError when a block selected (by the file, --store, --provider or bench)
        uses a variable that is not set: a file leaves those unresolved only in blocks no provider selects."""
        used = (f"embeddings.{self.embeddings.provider}", f"vectorstore.{self.vectorstore.provider}")
        for path, names in self.unresolved.items():
            if path.startswith(tuple(u + c for u in used for c in ".[")):
                raise ConfigError(f"environment variable {', '.join(names)} is not set", path=path)
        return self

    # ------------------------------------------------------------------ opening things

    def collection_name(self, override: str | None = None) -> str:
        if override:
            return override
        vs = self.vectorstore
        if vs.provider == "qdrant" and vs.qdrant is not None:
            return vs.qdrant.collection
        if vs.provider == "firestore" and vs.firestore is not None:
            return vs.firestore.collection
        if vs.provider == "pgvector" and vs.pgvector is not None:
            return vs.pgvector.table
        return DEFAULT_COLLECTION

    def open_embedder(self) -> EmbeddingService:
        from aixpy import embeddings

        check_credentials(self.embeddings)
        return embeddings.new(self.embeddings)

    def store_config(self) -> VectorStoreConfig:
        """The vector-store config the CLI opens: a memory store without ``memory.path`` gets
        ``./.aixpy/memory.snapshot``, because a CLI process's memory is gone when it exits."""
        vs = self.vectorstore
        if vs.provider == "memory" and (vs.memory is None or vs.memory.path is None):
            mem = (vs.memory or MemoryStoreConfig()).model_copy(update={"path": str(MEMORY_SNAPSHOT)})
            vs = vs.model_copy(update={"memory": mem})
        return vs

    def open_store(self) -> VectorStore:
        from aixpy import vectorstores

        return vectorstores.new(self.store_config())

    @contextlib.contextmanager
    def writing_store(self, on_wait: Callable[[Path], None] | None = None) -> Iterator[VectorStore]:
        """Open the store for a command that changes it; a memory store is loaded and, when the block
        ends without an exception, saved back, all under the snapshot's inter-process lock, so two
        commands writing one snapshot run one after the other and neither loses the other's documents."""
        cfg = self.store_config()
        lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if cfg.provider == "memory" and cfg.memory is not None and cfg.memory.path is not None:
            from aixpy.vectorstores._memory_snapshot import snapshot_lock

            lock = snapshot_lock(cfg.memory.path, on_wait=on_wait)
        with lock, self.open_store() as store:
            yield store
            save_if_snapshot(store)

    def open_collection(self, store: VectorStore, embedder: EmbeddingService, name: str | None) -> BaseCollection:
        from aixpy.vectorstores.base import CollectionOptions

        vs = self.vectorstore
        dims = vs.embedding_dimensions or embedder.dimensions()
        limit = vs.memory.max_documents if vs.provider == "memory" and vs.memory is not None else None
        opts = CollectionOptions(dimensions=dims, metric=vs.metric, max_documents=limit)
        return store.collection(self.collection_name(name), opts)


def check_credentials(config: EmbeddingsConfig) -> None:
    """Fail before any network call when a hosted provider obviously has no API key."""
    if config.provider == "openai":
        block = config.openai or OpenAIEmbeddingsConfig()
        if block.api_key is None and not os.environ.get("OPENAI_API_KEY") and \
                block.base_url.rstrip("/") == OPENAI_DEFAULT_URL:
            raise ConfigError("openai embeddings need an API key: set the OPENAI_API_KEY environment variable "
                              "(or embeddings.openai.api_key in the config)", path="embeddings.openai")


def save_if_snapshot(store: VectorStore) -> None:
    """Write a memory store back to its snapshot file (the CLI's only way to persist it)."""
    from aixpy.vectorstores.memory import MemoryStore

    if isinstance(store, MemoryStore) and store.path is not None:
        store.path.parent.mkdir(parents=True, exist_ok=True)
        store.save()


def default_vectorstore() -> VectorStoreConfig:
    return VectorStoreConfig(provider="qdrant", qdrant=QdrantStoreConfig(path=str(DEFAULT_HOME / "qdrant")))


def resolve(config_path: str | None, *, store: str | None = None, provider: str | None = None,
            model: str | None = None) -> Runtime:
    """Config from ``--config``, ``AIXPY_CONFIG``, ``./aixpy.yaml``, else offline defaults; then the
    ``--store`` and ``--provider``/``--model`` overrides."""
    from aixpy.config import find_config, load_config

    found = find_config(config_path)
    if found is None:
        rt = Runtime("built-in defaults (local embeddings, embedded qdrant in ./.aixpy/)",
                     EmbeddingsConfig(), default_vectorstore())
    else:
        cfg = load_config(found)
        rt = Runtime(str(found), cfg.embeddings or EmbeddingsConfig(), cfg.vectorstore or default_vectorstore(),
                     cfg.unresolved_variables, cfg.sessions)
    return rt.check_unresolved().with_store(store).with_embedder(provider, model)
