"""Qdrant through qdrant-client, in its in-process local mode (``:memory:``): the same client API and
aixpy code as against a server, minus the transport. Local mode scans every point (exhaustive), and
aixpy re-ranks candidates in float64, so search is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import VectorStore

EXACT = True


def open_store(request: pytest.FixtureRequest | None, root: Path) -> VectorStore:
    return vectorstores.new({"provider": "qdrant", "qdrant": {"local": ":memory:"}})
