"""What the CLI commands share: finding the config and opening the embedder and the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aixpy.config.stores import EmbeddingsConfig, QdrantStoreConfig, VectorStoreConfig

if TYPE_CHECKING:
    from aixpy.embeddings.base import EmbeddingService
    from aixpy.vectorstores.base import BaseCollection, VectorStore

DEFAULT_HOME = Path(".aixpy")
DEFAULT_COLLECTION = "knowledge_base"


@dataclass(slots=True)
class Runtime:
    """The resolved configuration of one CLI invocation."""

    source: str  # where the config came from, for humans
    embeddings: EmbeddingsConfig
    vectorstore: VectorStoreConfig

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

        return embeddings.new(self.embeddings)

    def open_store(self) -> VectorStore:
        from aixpy import vectorstores

        return vectorstores.new(self.vectorstore)

    def open_collection(self, store: VectorStore, embedder: EmbeddingService, name: str | None) -> BaseCollection:
        from aixpy.vectorstores.base import CollectionOptions

        dims = self.vectorstore.embedding_dimensions or embedder.dimensions()
        opts = CollectionOptions(dimensions=dims, metric=self.vectorstore.metric,
                                 max_documents=self.vectorstore.memory.max_documents
                                 if self.vectorstore.memory else None)
        return store.collection(self.collection_name(name), opts)


def default_vectorstore() -> VectorStoreConfig:
    return VectorStoreConfig(provider="qdrant", qdrant=QdrantStoreConfig(path=str(DEFAULT_HOME / "qdrant")))


def resolve(config_path: str | None) -> Runtime:
    """Config from ``--config``, ``AIXPY_CONFIG``, ``./aixpy.yaml``, else offline defaults."""
    from aixpy.config import find_config, load_config

    found = find_config(config_path)
    if found is None:
        return Runtime("built-in defaults (local embeddings, embedded qdrant in ./.aixpy/)",
                       EmbeddingsConfig(), default_vectorstore())
    cfg = load_config(found)
    emb = cfg.embeddings or EmbeddingsConfig()
    vs = cfg.vectorstore or default_vectorstore()
    return Runtime(str(found), emb, vs)
