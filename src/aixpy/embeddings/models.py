"""Known embedding models: dimensions (from the guide) and price per 1M input tokens (USD).

Prices are OpenAI's standard-tier list prices (the Batch API halves them; not modelled), checked on
:data:`PRICES_AS_OF`. Self-hosted providers (``local``, ``hash``, ``huggingface_tei``, ``ollama``)
cost 0 per token. The Hugging Face serverless Inference API bills compute time, not tokens, so its
price per token is unknown (``None``) — as is any model missing from the table: never a silent 0.
"""

from __future__ import annotations

from aixpy.errors import UnknownModelError

__all__ = ["FREE_PROVIDERS", "KNOWN_DIMENSIONS", "PRICES_AS_OF", "PRICES_PER_1M", "dimensions_for", "price_per_1m"]

KNOWN_DIMENSIONS: dict[str, int] = {
    # OpenAI
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    # sentence-transformers / HuggingFace
    "sentence-transformers/all-MiniLM-L6-v2": 384,
    "sentence-transformers/all-MiniLM-L12-v2": 384,
    "sentence-transformers/all-mpnet-base-v2": 768,
    "sentence-transformers/paraphrase-MiniLM-L6-v2": 384,
    "BAAI/bge-small-en-v1.5": 384,
    "BAAI/bge-base-en-v1.5": 768,
    "BAAI/bge-large-en-v1.5": 1024,
    "thenlper/gte-small": 384,
    "thenlper/gte-base": 768,
    "thenlper/gte-large": 1024,
    "intfloat/e5-small-v2": 384,
    "intfloat/e5-base-v2": 768,
    "intfloat/e5-large-v2": 1024,
    "jinaai/jina-embeddings-v2-small-en": 512,
    "jinaai/jina-embeddings-v2-base-en": 768,
}

PRICES_AS_OF = "2026-11-22"
PRICES_PER_1M: dict[str, float] = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
FREE_PROVIDERS = frozenset({"local", "hash", "huggingface_tei", "ollama"})
"""Providers that run on your own hardware: 0 $ per token."""


def price_per_1m(provider: str, model: str) -> float | None:
    """$ per 1M input tokens of ``model`` served by ``provider``; ``None`` when unknown."""
    if provider in FREE_PROVIDERS:
        return 0.0
    return PRICES_PER_1M.get(model.rsplit("/", 1)[-1] if model.startswith("openai/") else model)


def dimensions_for(model: str, explicit: int | None = None) -> int:
    """Dimensions of ``model``: ``explicit`` if given, else the known table; unknown is an error."""
    if explicit is not None:
        return explicit
    dims = KNOWN_DIMENSIONS.get(model)
    if dims is None:
        # allow the bare name of a sentence-transformers model ("all-MiniLM-L6-v2")
        matches = [d for name, d in KNOWN_DIMENSIONS.items() if name.rsplit("/", 1)[-1] == model]
        if len(matches) == 1:
            return matches[0]
        raise UnknownModelError(
            f"unknown embedding model {model!r}: its dimensions are not known; "
            "set them explicitly (e.g. `dimensions:` in the config)"
        )
    return dims
