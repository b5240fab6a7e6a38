"""Token counting and the cost of embedding calls.

:func:`count_tokens` counts with ``tiktoken`` for OpenAI models when it is installed **and** the
encoding is already, intact, in its local cache (it never downloads: a missing or corrupt file
means an estimate; run ``python -c "import tiktoken; tiktoken.get_encoding('cl100k_base')"`` once,
with network, to fill the cache);
otherwise it estimates one token per 4 characters (the guide's rule of thumb,
:func:`aixpy.embeddings.base.estimate_tokens`), flagged ``estimated=True``. A provider that reports
usage itself is preferred over both.

:class:`CostTracker` keeps totals per ``(provider, model)``: requests, texts, tokens (and how many
of them were estimated) and dollars from :func:`aixpy.embeddings.models.price_per_1m` — ``None``
when the price is unknown, never a silent 0. It is thread-safe; one tracker can be shared by many
services. :class:`CostTrackingEmbeddings` records every successful call of the service it wraps::

    tracker = CostTracker()
    svc = CostTrackingEmbeddings(provider, tracker)
    svc.embed_batch(texts)
    print(tracker.report())
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from aixpy.embeddings.base import EmbeddingService, EmbeddingUsage, estimate_tokens
from aixpy.embeddings.models import PRICES_AS_OF, price_per_1m
from aixpy.embeddings.policies._attempts import usage_of
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result
from aixpy.errors import PartialBatchError

__all__ = ["CostLine", "CostTracker", "CostTrackingEmbeddings", "TokenCount", "count_tokens"]

# the BPE file of each encoding: where tiktoken (>= 0.7) fetches it, and the sha256 it expects
_TIKTOKEN_FILES = {"cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                                   "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7")}
_OPENAI_ENCODINGS = {"text-embedding-3-small": "cl100k_base", "text-embedding-3-large": "cl100k_base",
                     "text-embedding-ada-002": "cl100k_base"}


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Tokens in some texts; ``estimated`` when they were not counted by the model's own tokenizer."""

    tokens: int
    estimated: bool


def _tiktoken_cache_dir(tiktoken: Any) -> str:
    """The directory tiktoken reads its cache from (same rules as ``tiktoken.load.read_file_cached``)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    default = getattr(getattr(tiktoken, "load", None), "_default_cache_dir", None)
    return str(default()) if callable(default) else os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _cached_intact(tiktoken: Any, url: str, sha256: str) -> bool:
    """Whether tiktoken will load ``url`` from its cache without a request: the file is there and intact
    (a missing or corrupt file makes tiktoken download it, which this module never lets happen)."""
    folder = _tiktoken_cache_dir(tiktoken)
    if not folder:
        return False  # caching disabled: every load is a download
    path = os.path.join(folder, hashlib.sha1(url.encode()).hexdigest())  # tiktoken's file naming, not security
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == sha256
    except OSError:
        return False


@lru_cache(maxsize=8)
def _encoder(model: str) -> Callable[[str], int] | None:
    name = _OPENAI_ENCODINGS.get(model.rsplit("/", 1)[-1])
    if name is None:
        return None
    try:
        tiktoken = importlib.import_module("tiktoken")
        importlib.import_module("tiktoken.load")
    except ImportError:
        return None
    if not _cached_intact(tiktoken, *_TIKTOKEN_FILES[name]):
        return None
    try:
        enc = tiktoken.get_encoding(name)
    except Exception:  # an unexpected tiktoken failure: fall back to the estimate rather than fail the call
        return None
    return lambda text: len(enc.encode_ordinary(text))


def count_tokens(texts: Sequence[str], model: str) -> TokenCount:
    """Tokens in ``texts`` for ``model``: exact with a cached tiktoken encoding, else estimated."""
    encode = _encoder(model)
    if encode is None:
        return TokenCount(estimate_tokens(texts), True)
    return TokenCount(sum(encode(t) for t in texts), False)


@dataclass(frozen=True, slots=True)
class CostLine:
    """Totals of one ``(provider, model)``. ``usd`` is ``None`` when the model's price is unknown."""

    provider: str
    model: str
    requests: int = 0
    texts: int = 0
    tokens: int = 0
    estimated_tokens: int = 0
    price_per_1m: float | None = None

    @property
    def usd(self) -> float | None:
        return None if self.price_per_1m is None else self.tokens * self.price_per_1m / 1_000_000

    @property
    def estimated(self) -> bool:
        """True when some of the tokens were estimated rather than counted."""
        return self.estimated_tokens > 0


class CostTracker:
    """Thread-safe totals of embedding usage and cost per ``(provider, model)``.

    ``prices`` overrides or extends the built-in table (model name -> $ per 1M tokens).
    """

    def __init__(self, prices: dict[str, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str], CostLine] = {}
        self._prices = dict(prices or {})

    def price(self, provider: str, model: str) -> float | None:
        """$ per 1M tokens of ``model`` (``None``: unknown)."""
        if model in self._prices:
            return self._prices[model]
        return price_per_1m(provider, model)

    def record(self, provider: str, model: str, count: TokenCount, *, texts: int, requests: int = 1) -> None:
        """Add ``requests`` successful requests embedding ``texts`` texts."""
        key = (provider, model)
        estimated = count.tokens if count.estimated else 0
        with self._lock:
            line = self._lines.get(key) or CostLine(provider, model, price_per_1m=self.price(provider, model))
            self._lines[key] = replace(line, requests=line.requests + requests, texts=line.texts + texts,
                                       tokens=line.tokens + count.tokens,
                                       estimated_tokens=line.estimated_tokens + estimated)

    def totals(self) -> list[CostLine]:
        """One line per ``(provider, model)``, sorted."""
        with self._lock:
            return [self._lines[k] for k in sorted(self._lines)]

    @property
    def total_usd(self) -> float | None:
        """Dollars over every line; ``None`` if any line with tokens has an unknown price."""
        lines = self.totals()
        if any(line.usd is None and line.tokens for line in lines):
            return None
        return sum(line.usd or 0.0 for line in lines)

    def reset(self) -> None:
        with self._lock:
            self._lines.clear()

    def report(self) -> str:
        """A small text table of the totals (``~`` marks estimated token counts)."""
        rows = [f"{'provider':<16} {'model':<40} {'requests':>8} {'texts':>8} {'tokens':>12} {'usd':>12}"]
        for line in self.totals():
            tokens = ("~" if line.estimated else "") + str(line.tokens)
            usd = "unknown" if line.usd is None else f"{line.usd:.6f}"
            rows.append(f"{line.provider:<16} {line.model:<40} {line.requests:>8} {line.texts:>8} "
                        f"{tokens:>12} {usd:>12}")
        total = self.total_usd
        rows.append(f"total: {'unknown' if total is None else f'${total:.6f}'} (prices as of {PRICES_AS_OF})")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return f"CostTracker(lines={len(self._lines)})"


class CostTrackingEmbeddings(EmbeddingWrapper):
    """Records the tokens (and so the cost) of every successful call of ``inner`` in ``tracker``.

    Tokens are the provider's own count when it reports one; otherwise tiktoken's count when
    available (see :func:`count_tokens`), else the estimate — and the returned usage says so. For a
    :class:`~aixpy.errors.PartialBatchError`, what its successful sub-batches cost is recorded before
    the error propagates.
    """

    def __init__(self, inner: EmbeddingService, tracker: CostTracker | None = None, **kw: Any) -> None:
        super().__init__(inner, **kw)
        self.tracker = tracker if tracker is not None else CostTracker()

    def _record(self, texts: list[str], usage: EmbeddingUsage) -> EmbeddingUsage:
        if usage.estimated:
            count = count_tokens(texts, self._model)
            usage = replace(usage, tokens=count.tokens, estimated=count.estimated)
        self.tracker.record(self.provider, self._model, TokenCount(usage.tokens, usage.estimated),
                            texts=usage.texts, requests=usage.requests)
        return usage

    def _record_partial(self, texts: list[str], err: PartialBatchError) -> None:
        usage = usage_of(err)
        failed = set(err.failed)
        ok = [t for i, t in enumerate(texts) if i not in failed]
        if ok:
            self._record(ok, usage or EmbeddingUsage(len(ok), 0, True, 1))

    def _run(self, texts: list[str]) -> Result:
        try:
            out, usage = self.inner.embed_with_usage(texts)
        except PartialBatchError as e:
            self._record_partial(texts, e)
            raise
        return out, self._record(texts, usage)

    async def _arun(self, texts: list[str]) -> Result:
        try:
            out, usage = await self.inner.aembed_with_usage(texts)
        except PartialBatchError as e:
            self._record_partial(texts, e)
            raise
        return out, self._record(texts, usage)
