"""Firestore on the real Google emulator: one emulator per session, a fresh project per test.

``find_nearest`` on the emulator is an exact scan, and the backend re-scores candidates in float64
and breaks ties by id itself (fetching more while a tie could cross the page edge), so results
equal brute force: ``EXACT = True``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from aixpy import vectorstores
from aixpy.vectorstores import VectorStore

EXACT = True
_ids = itertools.count()


def open_store(request: pytest.FixtureRequest | None, root: Path) -> VectorStore:
    assert request is not None, "the firestore backend needs the emulator fixture"
    host = request.getfixturevalue("firestore_emulator")
    project = f"aixpy-test-{os.getpid()}-{next(_ids)}"  # an isolated, empty database per test
    return vectorstores.new({"provider": "firestore",
                             "firestore": {"project_id": project, "emulator_host": host}})
