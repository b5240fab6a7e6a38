"""The bundled corpus (examples/corpus) indexed with the local model into an in-memory collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus"


@pytest.fixture(scope="module")
def corpus() -> Iterator[tuple[Any, Any]]:
    """``(embedder, collection)`` holding the bundled corpus."""
    from aixpy import vectorstores
    from aixpy.embeddings.local import LocalEmbeddings
    from aixpy.rag import Indexer
    from aixpy.vectorstores.base import CollectionOptions

    with LocalEmbeddings() as emb:
        coll = vectorstores.new({"provider": "memory"}).collection("kb", CollectionOptions(dimensions=emb.dimensions()))
        Indexer(emb, coll).index_path(CORPUS)
        yield emb, coll
