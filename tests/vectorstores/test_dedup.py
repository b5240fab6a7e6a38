"""The shared duplicate rule of one upsert call (BatchDedup), without a backend."""

from __future__ import annotations

import numpy as np
import pytest

from aixpy.vectorstores._dedup import CHUNK, BatchDedup, content_hash, content_sha256, unit_rows


class _Stored(BatchDedup):
    """Stored near vectors: a fixed key per batch index."""

    def __init__(self, unit: np.ndarray, new: list[int], near: dict[int, str], threshold: float = 0.99) -> None:
        super().__init__(threshold, unit.astype(np.float32), new)
        self.near = near
        self.asked: list[int] = []

    def near_stored(self, i: int) -> bool:
        self.asked.append(i)
        key = self.near.get(i)
        return key is not None and key not in self.replaced


def _units(*rows: list[float]) -> np.ndarray:
    return unit_rows([np.asarray(r, dtype=np.float32) for r in rows])[0]


def test_unit_rows_keeps_zero_vectors_zero() -> None:
    unit, norms = unit_rows([np.asarray([3.0, 4.0], dtype=np.float32), np.zeros(2, dtype=np.float32)])
    assert unit.tolist() == [[0.6, 0.8], [0.0, 0.0]]
    assert norms.tolist() == [5.0, 0.0]


def test_content_hash_of_empty_content_is_none() -> None:
    assert content_hash("") is None
    assert content_hash("a") == content_sha256("a") == (
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb")


def test_written_content_and_vectors_count_in_order() -> None:
    d = _Stored(_units([1, 0], [0, 1], [1, 0.001], [0, 1]), [0, 1, 2, 3], {})
    assert not d.is_duplicate(0, "a")
    d.written(0, "k0", "a", updated=False)
    assert d.is_duplicate(1, "a")  # same content as written, though orthogonal
    assert d.is_duplicate(2, "c")  # cosine ~1 with row 0
    assert not d.is_duplicate(3, "")  # nothing written near [0, 1] yet; empty content never matches
    assert d.asked == [0, 3]


def test_stored_content_counts_unless_replaced() -> None:
    d = _Stored(_units([1, 0], [0, 1]), [1], {})
    d.stored_sha[content_sha256("x")] = {"old"}
    assert d.is_duplicate(1, "x")
    d.written(0, "old", "y", updated=True)  # the stored 'old' was overwritten by this call
    assert not d.is_duplicate(1, "x")


def test_stored_vectors_only_for_non_zero_vectors() -> None:
    d = _Stored(_units([0, 0], [1, 1]), [0, 1], {0: "s", 1: "s"})
    assert not d.is_duplicate(0, "")
    assert d.is_duplicate(1, "")
    assert d.asked == [1]


@pytest.mark.parametrize("n", [CHUNK - 1, CHUNK + 5, 3 * CHUNK])
def test_chunked_products_see_rows_written_after_them(n: int) -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=(n, 16))
    base[-2] = base[0] + 1e-4  # a near copy of the first (in an earlier chunk's product)
    base[-1] = base[-3] + 1e-4  # and of one written after its own chunk's product was taken
    unit = unit_rows(list(base))[0]
    d = _Stored(unit, list(range(n)), {})
    verdicts = []
    for i in range(n):
        dup = d.is_duplicate(i, "")
        verdicts.append(dup)
        if not dup:
            d.written(i, f"k{i}", "", updated=False)
    assert verdicts == [False] * (n - 2) + [True, True]
