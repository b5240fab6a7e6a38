"""Quality helpers from the guide: cosine similarity, a check over labelled pairs, a drift monitor.

::

    from aixpy.embeddings.quality import check_quality, cosine_similarity, DriftMonitor

    cosine_similarity(svc.embed("machine learning"), svc.embed("deep learning"))     # 0.69 with MiniLM

    report = check_quality(svc, [("machine learning", "deep learning", True),
                                 ("machine learning", "cooking recipe", False)], threshold=0.5)
    report.accuracy, report.auc, report.mean_similar, report.mean_dissimilar

    monitor = DriftMonitor("baseline.json", threshold=0.95)
    monitor.record_baseline(svc, probe_texts)      # once, saved as JSON
    drift = monitor.check(svc)                     # later: same probes, same model?
    if drift.alert: ...                            # mean cosine to the baseline fell under 0.95

A drop in ``check`` means the vectors of the same texts moved: a model upgrade, a changed
tokenizer, quantization, or another provider serving under the same name. Vectors stored before
and after such a change are not comparable — re-embed the collection.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.embeddings.base import EmbeddingService
from aixpy.errors import DimensionMismatchError, InvalidInputError, NotFoundError

__all__ = ["DriftMonitor", "DriftReport", "QualityReport", "acheck_quality", "check_quality", "cosine_matrix",
           "cosine_similarity"]

ArrayLike = Sequence[float] | npt.NDArray[Any]
_FORMAT = 1


def _matrix(x: Any, what: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidInputError(f"{what} must be a vector or a (n, dims) matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{what} contains NaN or infinity")
    return arr


def cosine_matrix(a: Any, b: Any = None) -> npt.NDArray[np.float64]:
    """Pairwise cosine similarities: ``(n, m)`` for ``a`` ``(n, d)`` and ``b`` ``(m, d)`` (``b`` defaults to ``a``).

    A zero vector has similarity 0 to everything.
    """
    x = _matrix(a, "a")
    y = x if b is None else _matrix(b, "b")
    if x.shape[1] != y.shape[1]:
        raise DimensionMismatchError(x.shape[1], y.shape[1], what="b")
    nx = np.linalg.norm(x, axis=1, keepdims=True)
    ny = np.linalg.norm(y, axis=1, keepdims=True)
    x = np.divide(x, nx, out=np.zeros_like(x), where=nx > 0)
    y = np.divide(y, ny, out=np.zeros_like(y), where=ny > 0)
    out: npt.NDArray[np.float64] = np.clip(x @ y.T, -1.0, 1.0)
    return out


def cosine_similarity(a: ArrayLike, b: ArrayLike) -> float:
    """Cosine similarity of two vectors, in [-1, 1] (0 when either is all zeros)."""
    if np.ndim(a) != 1 or np.ndim(b) != 1:
        raise InvalidInputError("cosine_similarity takes two vectors; use cosine_matrix for matrices")
    return float(cosine_matrix(a, b)[0, 0])


# --------------------------------------------------------------------------- labelled pairs


@dataclass(frozen=True)
class QualityReport:
    """How well similarities separate pairs labelled similar from pairs labelled dissimilar.

    A pair is *predicted* similar when its cosine is >= ``threshold``. ``auc`` is the probability that
    a random similar pair scores higher than a random dissimilar one (ties count half); ``None`` when
    only one label is present. ``precision`` is ``None`` when nothing was predicted similar.
    """

    pairs: int
    threshold: float
    accuracy: float
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None
    mean_similar: float | None
    mean_dissimilar: float | None
    similarities: list[float] = field(repr=False)

    @property
    def separation(self) -> float | None:
        """``mean_similar - mean_dissimilar``: the bigger, the better the model tells them apart."""
        if self.mean_similar is None or self.mean_dissimilar is None:
            return None
        return self.mean_similar - self.mean_dissimilar


def _auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _report(sims: list[float], labels: list[bool], threshold: float) -> QualityReport:
    pred = [s >= threshold for s in sims]
    tp = sum(p and y for p, y in zip(pred, labels, strict=True))
    fp = sum(p and not y for p, y in zip(pred, labels, strict=True))
    fn = sum(not p and y for p, y in zip(pred, labels, strict=True))
    correct = sum(p == y for p, y in zip(pred, labels, strict=True))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    pos = [s for s, y in zip(sims, labels, strict=True) if y]
    neg = [s for s, y in zip(sims, labels, strict=True) if not y]
    return QualityReport(len(sims), threshold, correct / len(sims), precision, recall, f1, _auc(pos, neg),
                         _mean(pos), _mean(neg), sims)


def _pairs(labelled_pairs: Iterable[tuple[str, str, bool]]) -> tuple[list[str], list[tuple[int, int]], list[bool]]:
    texts: dict[str, int] = {}
    index: list[tuple[int, int]] = []
    labels: list[bool] = []
    for n, pair in enumerate(labelled_pairs):
        if len(pair) != 3 or not isinstance(pair[2], bool):
            raise InvalidInputError(f"pair {n} must be (text_a, text_b, similar: bool)")
        a, b, similar = pair
        index.append((texts.setdefault(a, len(texts)), texts.setdefault(b, len(texts))))
        labels.append(similar)
    if not index:
        raise InvalidInputError("check_quality needs at least one labelled pair")
    return list(texts), index, labels


def _similarities(vectors: npt.NDArray[Any], index: list[tuple[int, int]]) -> list[float]:
    return [cosine_similarity(vectors[i], vectors[j]) for i, j in index]


def check_quality(service: EmbeddingService, labelled_pairs: Iterable[tuple[str, str, bool]],
                  threshold: float = 0.5) -> QualityReport:
    """Embed every text of ``labelled_pairs`` (``(a, b, similar)``) once, in one batch, and score the model.

    Use pairs from your own data: a model good on benchmarks may still confuse your domain's terms.
    """
    texts, index, labels = _pairs(labelled_pairs)
    return _report(_similarities(service.embed_array(texts), index), labels, threshold)


async def acheck_quality(service: EmbeddingService, labelled_pairs: Iterable[tuple[str, str, bool]],
                         threshold: float = 0.5) -> QualityReport:
    """Async twin of :func:`check_quality`."""
    texts, index, labels = _pairs(labelled_pairs)
    return _report(_similarities(await service.aembed_array(texts), index), labels, threshold)


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class DriftReport:
    """Current vectors of the probe texts against the baseline.

    ``alert`` is true when ``mean_similarity`` is under ``threshold``; ``drifted`` lists the probes
    whose own similarity is under it; ``model_changed`` when the service's model name differs.
    """

    mean_similarity: float
    min_similarity: float
    threshold: float
    alert: bool
    drifted: list[str]
    model_changed: bool
    per_text: dict[str, float] = field(repr=False)


class DriftMonitor:
    """Stores baseline vectors of probe texts (a JSON file) and reports how far a service has moved.

    ``path``: where :meth:`record_baseline` saves and where an existing baseline is loaded from.
    ``threshold``: the mean cosine under which :meth:`check` raises the alert (0.95 by default; an
    int8 build of the same model stays above 0.99, a different model falls far below).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, threshold: float = 0.95) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise InvalidInputError("threshold must be a cosine similarity in [-1, 1]")
        self.path = Path(path) if path is not None else None
        self.threshold = threshold
        self.baseline: dict[str, npt.NDArray[np.float32]] = {}
        self.meta: dict[str, Any] = {}
        if self.path is not None and self.path.exists():
            self.load(self.path)

    # ------------------------------------------------------------------ baselines

    def record_baseline(self, service: EmbeddingService, probes: Sequence[str]) -> None:
        """Embed ``probes`` with ``service`` and keep them as the baseline (saved to ``path`` if set)."""
        texts = list(dict.fromkeys(probes))
        vectors = service.embed_array(texts)
        self._set(service, texts, vectors)

    async def arecord_baseline(self, service: EmbeddingService, probes: Sequence[str]) -> None:
        texts = list(dict.fromkeys(probes))
        self._set(service, texts, await service.aembed_array(texts))

    def _set(self, service: EmbeddingService, texts: list[str], vectors: npt.NDArray[np.float32]) -> None:
        self.baseline = {t: np.asarray(v, dtype=np.float32) for t, v in zip(texts, vectors, strict=True)}
        self.meta = {"provider": service.provider, "model": service.model(), "dimensions": int(vectors.shape[1]),
                     "created_at": time.time()}
        if self.path is not None:
            self.save(self.path)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the baseline as JSON (atomically: a crash never leaves half a file)."""
        target = Path(path)
        data = {"format": _FORMAT, **self.meta, "threshold": self.threshold,
                "probes": {t: [float(x) for x in v] for t, v in self.baseline.items()}}
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name, dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike[str]) -> None:
        """Read a baseline written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"no drift baseline at {path}") from None
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"{path} is not a drift baseline: {e}") from e
        if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(data.get("probes"), dict):
            raise InvalidInputError(f"{path} is not a drift baseline (format {_FORMAT})")
        self.baseline = {t: np.asarray(v, dtype=np.float32) for t, v in data["probes"].items()}
        self.meta = {k: data.get(k) for k in ("provider", "model", "dimensions", "created_at")}

    # ------------------------------------------------------------------ checks

    def check_vector(self, text: str, current: ArrayLike) -> bool:
        """The guide's ``CheckDrift``: whether ``current`` has drifted from ``text``'s baseline vector.

        A text without a baseline has not drifted (``False``).
        """
        base = self.baseline.get(text)
        if base is None:
            return False
        if len(current) != base.shape[0]:
            raise DimensionMismatchError(base.shape[0], len(current))
        return cosine_similarity(base, current) < self.threshold

    def check(self, service: EmbeddingService) -> DriftReport:
        """Embed the probe texts again with ``service`` and compare with the baseline."""
        texts = self._probes()
        return self._compare(service, texts, service.embed_array(texts))

    async def acheck(self, service: EmbeddingService) -> DriftReport:
        texts = self._probes()
        return self._compare(service, texts, await service.aembed_array(texts))

    def _probes(self) -> list[str]:
        if not self.baseline:
            raise NotFoundError("no drift baseline: call record_baseline() first (or load one)")
        return list(self.baseline)

    def _compare(self, service: EmbeddingService, texts: list[str], current: npt.NDArray[Any]) -> DriftReport:
        base = np.stack([self.baseline[t] for t in texts])
        if current.shape[1] != base.shape[1]:
            raise DimensionMismatchError(base.shape[1], current.shape[1], what="current embedding")
        sims = [cosine_similarity(b, c) for b, c in zip(base, current, strict=True)]
        mean = math.fsum(sims) / len(sims)
        per_text = dict(zip(texts, sims, strict=True))
        return DriftReport(mean, min(sims), self.threshold, mean < self.threshold,
                           [t for t, s in per_text.items() if s < self.threshold],
                           self.meta.get("model") not in (None, service.model()), per_text)

    def __repr__(self) -> str:
        return f"DriftMonitor(path={str(self.path) if self.path else None!r}, probes={len(self.baseline)}, " \
               f"threshold={self.threshold})"
