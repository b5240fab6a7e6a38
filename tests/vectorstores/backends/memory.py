"""The exact in-memory backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import VectorStore

EXACT = True


def open_store(request: pytest.FixtureRequest | None, root: Path) -> VectorStore:
    return vectorstores.new({"provider": "memory"})
