"""Token prices and the cost of a call, in US dollars.

:data:`PRICES` holds list prices in **$ per 1 million tokens** (input, output, cached input, cache
write), as of :data:`PRICES_AS_OF`, for the models of the provider integration guide and the current
models of each provider. Prices change: check the vendors' pricing pages, and override or extend the
table with :func:`register_price`. Batch, priority and regional (Vertex AI ``-eu``...) rates are not
modelled; Vertex AI's Gemini prices are taken to equal the Gemini API's.

Lookup (:func:`price_for`)
    1. Ollama (``provider="ollama"`` or ``ollama/...``) is local: every model costs 0.
    2. The name is lower-cased and stripped of a vendor prefix (``openai/``, ``models/``...).
    3. An exact match of the name as given wins (``gpt-4o-2024-05-13`` has its own price), then an
       exact match once a dated suffix is removed (``-2024-08-06``, ``-20241022``, ``@20240620``,
       ``-latest``; ``claude-3.5-sonnet`` is read as ``claude-3-5-sonnet``), then the longest table
       entry that is a prefix of the name up to a ``-`` (``gpt-4o-mini-search-preview`` ->
       ``gpt-4o-mini``; ``gpt-4.7`` does *not* fall back to ``gpt-4``).
    4. Otherwise the price is unknown: :func:`cost_of` returns ``usd=None, known=False`` — never 0.

Cost (:func:`cost_of`), with the :class:`~aixpy.llm.types.Usage` contract (cached and cache-write
tokens are *parts* of ``input_tokens``; reasoning tokens are part of ``output_tokens``)::

    (input - cached - cache_write) * input_rate + cached * cached_rate + cache_write * write_rate
    + output * output_rate                           # reasoning priced as output, counted once

A model with a long-context tier (Gemini, Claude Sonnet 4/4.5, Grok 4) is priced entirely at the
tier's rates when the prompt is longer than its threshold, as those vendors bill.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from aixpy.llm.types import Usage

__all__ = ["PRICES", "PRICES_AS_OF", "Cost", "Price", "cost_of", "price_for", "register_price"]

PRICES_AS_OF = date(2026, 3, 1)
"""When the table was last checked against the vendors' published list prices."""


@dataclass(frozen=True, slots=True)
class Price:
    """List price of a model in $ per 1M tokens.

    ``cached_input`` (prompt-cache reads) and ``cache_write`` default to ``input``. Above
    ``long_context`` prompt tokens, the ``long_*`` rates apply to the whole call.
    """

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    long_context: int | None = None
    long_input: float | None = None
    long_output: float | None = None
    long_cached_input: float | None = None

    def for_prompt(self, input_tokens: int) -> Price:
        """The rates that apply to a prompt of ``input_tokens`` (the long-context tier, if any)."""
        if self.long_context is None or input_tokens <= self.long_context:
            return self
        factor = (self.long_input or self.input) / self.input if self.input else 1.0
        return Price(self.long_input or self.input, self.long_output or self.output,
                     self.long_cached_input if self.long_cached_input is not None
                     else None if self.cached_input is None else self.cached_input * factor,
                     None if self.cache_write is None else self.cache_write * factor)


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call. ``usd`` is ``None`` (and ``known`` false) when the price is unknown
    or the provider reported no usage; ``model`` is the table entry that priced it."""

    usd: float | None
    known: bool
    model: str | None = None
    price: Price | None = None


FREE = Price(0.0, 0.0, 0.0, 0.0)


def _p(inp: float, out: float, cached: float | None = None, write: float | None = None) -> Price:
    return Price(inp, out, cached, write)


def _tier(inp: float, out: float, cached: float | None, threshold: int, long_in: float, long_out: float,
          long_cached: float | None = None, write: float | None = None) -> Price:
    return Price(inp, out, cached, write, threshold, long_in, long_out, long_cached)


# $ per 1M tokens: input, output, cached input, cache write.
PRICES: dict[str, Price] = {
    # ---------------------------------------------------------------- OpenAI
    "gpt-4": _p(30, 60), "gpt-4-32k": _p(60, 120),
    "gpt-4-turbo": _p(10, 30), "gpt-4-turbo-preview": _p(10, 30), "gpt-4-1106-preview": _p(10, 30),
    "gpt-4-0125-preview": _p(10, 30), "gpt-4-vision-preview": _p(10, 30),
    "gpt-3.5-turbo": _p(0.5, 1.5), "gpt-3.5-turbo-1106": _p(1, 2), "gpt-3.5-turbo-instruct": _p(1.5, 2),
    "gpt-3.5-turbo-16k": _p(3, 4),
    "gpt-4o": _p(2.5, 10, 1.25), "gpt-4o-2024-05-13": _p(5, 15), "chatgpt-4o-latest": _p(5, 15),
    "gpt-4o-mini": _p(0.15, 0.6, 0.075),
    "gpt-4.1": _p(2, 8, 0.5), "gpt-4.1-mini": _p(0.4, 1.6, 0.1), "gpt-4.1-nano": _p(0.1, 0.4, 0.025),
    "gpt-4.5-preview": _p(75, 150, 37.5),
    "o1": _p(15, 60, 7.5), "o1-mini": _p(1.1, 4.4, 0.55), "o1-pro": _p(150, 600),
    "o3": _p(2, 8, 0.5), "o3-mini": _p(1.1, 4.4, 0.55), "o3-pro": _p(20, 80), "o3-deep-research": _p(10, 40, 2.5),
    "o4-mini": _p(1.1, 4.4, 0.275), "o4-mini-deep-research": _p(2, 8, 0.5),
    "gpt-5": _p(1.25, 10, 0.125), "gpt-5-mini": _p(0.25, 2, 0.025), "gpt-5-nano": _p(0.05, 0.4, 0.005),
    "gpt-5-pro": _p(15, 120), "gpt-5.1": _p(1.25, 10, 0.125), "gpt-5.2": _p(1.75, 14, 0.175),
    "gpt-5.2-pro": _p(21, 168), "gpt-5.4": _p(2.5, 15, 0.25),
    # ---------------------------------------------------------------- Anthropic (cache read 0.1x, 5-min write 1.25x)
    "claude-2": _p(8, 24), "claude-instant-1": _p(0.8, 2.4),
    "claude-3-opus": _p(15, 75, 1.5, 18.75), "claude-3-sonnet": _p(3, 15, 0.3, 3.75),
    "claude-3-haiku": _p(0.25, 1.25, 0.03, 0.3),
    "claude-3-5-sonnet": _p(3, 15, 0.3, 3.75), "claude-3-5-haiku": _p(0.8, 4, 0.08, 1.0),
    "claude-3-7-sonnet": _p(3, 15, 0.3, 3.75),
    "claude-sonnet-4": _tier(3, 15, 0.3, 200_000, 6, 22.5, 0.6, write=3.75),
    "claude-sonnet-4-5": _tier(3, 15, 0.3, 200_000, 6, 22.5, 0.6, write=3.75),
    "claude-sonnet-4-6": _p(3, 15, 0.3, 3.75),
    "claude-opus-4": _p(15, 75, 1.5, 18.75), "claude-opus-4-1": _p(15, 75, 1.5, 18.75),
    "claude-opus-4-5": _p(5, 25, 0.5, 6.25), "claude-opus-4-6": _p(5, 25, 0.5, 6.25),
    "claude-haiku-4-5": _p(1, 5, 0.1, 1.25),
    # ---------------------------------------------------------------- Google Gemini (API and Vertex AI)
    "gemini-pro": _p(0.5, 1.5), "gemini-1.0-pro": _p(0.5, 1.5),
    "gemini-1.5-pro": _tier(1.25, 5, 0.3125, 128_000, 2.5, 10, 0.625),
    "gemini-1.5-flash": _tier(0.075, 0.3, 0.01875, 128_000, 0.15, 0.6, 0.0375),
    "gemini-1.5-flash-8b": _tier(0.0375, 0.15, 0.01, 128_000, 0.075, 0.3, 0.02),
    "gemini-2.0-flash": _p(0.1, 0.4, 0.025), "gemini-2.0-flash-lite": _p(0.075, 0.3),
    "gemini-2.5-pro": _tier(1.25, 10, 0.125, 200_000, 2.5, 15, 0.25),
    "gemini-2.5-flash": _p(0.3, 2.5, 0.03), "gemini-2.5-flash-lite": _p(0.1, 0.4, 0.01),
    "gemini-3-pro": _tier(2, 12, 0.2, 200_000, 4, 18, 0.4), "gemini-3-flash": _p(0.5, 3, 0.05),
    # ---------------------------------------------------------------- xAI
    "grok-beta": _p(5, 15), "grok-2": _p(2, 10), "grok-2-vision": _p(2, 10),
    "grok-3": _p(3, 15, 0.75), "grok-3-fast": _p(5, 25, 1.25),
    "grok-3-mini": _p(0.3, 0.5, 0.075), "grok-3-mini-fast": _p(0.6, 4, 0.15),
    "grok-4": _tier(3, 15, 0.75, 128_000, 6, 30, 1.5),
    "grok-4-fast": _tier(0.2, 0.5, 0.05, 128_000, 0.4, 1.0, 0.1),
    "grok-4-1-fast": _tier(0.2, 0.5, 0.05, 128_000, 0.4, 1.0, 0.1),
    "grok-code-fast-1": _p(0.2, 1.5, 0.02),
}

_FREE_PROVIDERS = frozenset({"ollama"})
_VENDOR_PREFIXES = ("publishers/google/models/", "models/", "openai/", "anthropic/", "google/", "xai/", "x-ai/")
_DATED = re.compile(r"(?:@\d{8}|-\d{4}-\d{2}-\d{2}|-\d{8}|-latest)$")
_CLAUDE_DOT = re.compile(r"(?<=\d)\.(?=\d)")
_user_prices: dict[str, Price] = {}
_lock = threading.Lock()


def register_price(model: str, price: Price) -> None:
    """Add or override the price of ``model`` (matched like table entries, ahead of them)."""
    with _lock:
        _user_prices[model.strip().lower()] = price
        _lookup.cache_clear()


def _normalize(name: str) -> str:
    for prefix in _VENDOR_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    name = _DATED.sub("", name)
    if name.startswith("claude"):
        name = _CLAUDE_DOT.sub("-", name)
    return name


def _match(name: str, table: Mapping[str, Price]) -> tuple[str, Price] | None:
    if name in table:
        return name, table[name]
    best: str | None = None
    for key in table:
        if name.startswith(key + "-") and (best is None or len(key) > len(best)):
            best = key
    return (best, table[best]) if best is not None else None


@lru_cache(maxsize=1024)
def _lookup(provider: str, model: str) -> tuple[str, Price] | None:
    raw = model.strip().lower()
    if provider in _FREE_PROVIDERS or raw.startswith("ollama/"):
        return raw, FREE
    normalized = _normalize(raw)
    for table in (_user_prices, PRICES):
        if raw in table:
            return raw, table[raw]
        found = _match(normalized, table)
        if found is not None:
            return found
    return None


def price_for(model: str, *, provider: str | None = None) -> tuple[str, Price] | None:
    """``(table entry, price)`` for ``model`` (see the module docstring), or ``None`` when unknown."""
    return _lookup((provider or "").lower(), model)


def cost_of(model: str, usage: Usage | None, *, provider: str | None = None) -> Cost:
    """The cost of a call to ``model`` that used ``usage``; unknown price or usage -> ``usd=None``."""
    found = price_for(model, provider=provider)
    if found is None or usage is None:
        return Cost(None, False, found[0] if found else None, found[1] if found else None)
    entry, price = found
    rates = price.for_prompt(usage.input_tokens)
    cached = max(0, usage.cached_input_tokens)
    written = max(0, usage.cache_creation_tokens)
    fresh = max(0, usage.input_tokens - cached - written)
    cached_rate = rates.input if rates.cached_input is None else rates.cached_input
    write_rate = rates.input if rates.cache_write is None else rates.cache_write
    usd = (fresh * rates.input + cached * cached_rate + written * write_rate
           + max(0, usage.output_tokens) * rates.output) / 1_000_000
    return Cost(round(usd, 10), True, entry, price)
