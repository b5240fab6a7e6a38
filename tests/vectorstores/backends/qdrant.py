"""Embedded Qdrant (qdrant-edge engine, on disk under the test's tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import VectorStore

EXACT = False


def open_store(request: pytest.FixtureRequest | None, root: Path) -> VectorStore:
    return vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(root / "qdrant")}})
