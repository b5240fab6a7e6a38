"""The memory backend forced through its HNSW index (faiss), even for tiny collections."""

from __future__ import annotations

from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import VectorStore

EXACT = False


def open_store(request: pytest.FixtureRequest | None, root: Path) -> VectorStore:
    return vectorstores.new({"provider": "memory", "memory": {"index": "hnsw"}})
