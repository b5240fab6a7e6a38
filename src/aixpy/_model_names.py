"""LLM provider names and the rules that tell which provider serves a model name.

Written once, used by both sides: config validation (:func:`aixpy.config.infer_provider`) and the LLM
registry (:func:`aixpy.llm.registry.detect_provider`, :func:`~aixpy.llm.registry.split_spec`, whose
module docstring has the detection table). It sits below both, importing only :mod:`aixpy._registry`
and :mod:`aixpy.errors`, so config validates ``model:`` without importing the LLM layer and
``aixpy.llm`` tells model names apart without importing config (pydantic).

:data:`EMBEDDINGS` and :data:`VECTORSTORES` are the name tables of the other two kinds, here for the
same reason (the config loader checks ``provider:`` names without importing those packages).

:data:`PROVIDERS` is the one table of LLM provider names: :func:`aixpy.llm.register` and the
``aixpy.llm`` entry points add to it, so config validation sees third-party names as well. Its
built-ins are lazy ``"module:function"`` paths; nothing of :mod:`aixpy.llm` is imported here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from aixpy._registry import Registry
from aixpy.errors import InvalidInputError, UnknownProviderError

__all__ = ["ALIASES", "BUILTINS", "EMBEDDINGS", "PROVIDERS", "VECTORSTORES", "close_provider", "detect", "split",
           "unknown_provider"]

BUILTINS: dict[str, str] = {
    name: f"aixpy.llm.providers.{name}:create"
    for name in ("openai", "anthropic", "gemini", "vertexai", "xai", "huggingface", "ollama", "openai_compatible")
}
BUILTINS["test"] = "aixpy.llm.testing:create"
ALIASES = {"vertex": "vertexai", "google": "gemini", "hf": "huggingface", "grok": "xai", "claude": "anthropic",
           "openai-compatible": "openai_compatible", "vllm": "openai_compatible", "llamacpp": "openai_compatible"}
PROVIDERS: Registry[Any] = Registry("LLM", "aixpy.llm", BUILTINS, ALIASES)
"""Every LLM provider name -> its factory (typed in :mod:`aixpy.llm.registry`)."""

EMBEDDINGS: Registry[Any] = Registry("embeddings", "aixpy.embeddings", {
    name: f"aixpy.embeddings.{module}:create" for name, module in (
        ("local", "local"), ("hash", "hashing"), ("openai", "openai"), ("huggingface", "huggingface"),
        ("huggingface_tei", "tei"), ("ollama", "ollama"))})
"""Every embeddings provider name (:func:`aixpy.embeddings.register` adds to it; the config loader
checks ``embeddings.provider`` against it)."""
VECTORSTORES: Registry[Any] = Registry("vector store", "aixpy.vectorstores", {
    name: f"aixpy.vectorstores.{name}:create" for name in ("memory", "qdrant", "pgvector", "firestore")})
"""Every vector-store backend name (:func:`aixpy.vectorstores.register` adds to it)."""

_OPENAI = re.compile(r"^(?:gpt-|chatgpt-|o[134](?:-|$))")
_TRUE = frozenset({"1", "true", "yes", "on"})


def _vertex_configured(environ: Mapping[str, str]) -> bool:
    """Whether ``gemini*`` models go to Vertex AI rather than the Gemini API, by the environment."""
    if environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in _TRUE:
        return True
    has_key = any(environ.get(k, "").strip() for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY"))
    has_project = any(environ.get(k, "").strip() for k in ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT_ID"))
    return has_project and not has_key


def detect(model: str, *, vertex: bool | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The provider serving a bare model name, or ``None`` when the name does not tell (never OpenAI
    by default). ``vertex`` forces the Gemini choice; by default ``environ`` (``os.environ``) decides."""
    name = model.strip().lower()
    if name.startswith("ft:"):  # an OpenAI fine-tune: ft:gpt-4o-mini:org::id
        return "openai"
    if "/" in name:
        head = name.split("/", 1)[0]
        return "ollama" if "." in head else "huggingface"
    if ":" in name:
        return "ollama"
    if _OPENAI.match(name):
        return "openai"
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith("gemini"):
        env = os.environ if environ is None else environ
        return "vertexai" if (vertex if vertex is not None else _vertex_configured(env)) else "gemini"
    if name.startswith("grok"):
        return "xai"
    return None


def split(spec: str, providers: Registry[Any], *, environ: Mapping[str, str] | None = None
          ) -> tuple[str | None, str | None]:
    """``"provider:model"`` -> ``(provider, model)``; a bare provider name -> ``(provider, None)``; a bare
    model name -> ``(detected provider or None, model)``. ``providers`` is the name table to consult
    (:data:`PROVIDERS`, or a registry of one's own)."""
    text = spec.strip()
    if not text:
        raise InvalidInputError("empty model specification")
    head, sep, rest = text.partition(":")
    if head in providers:
        return providers.canonical(head), (rest.strip() or None) if sep else None
    _refuse_typo(text, head, rest if sep else None, providers)
    return detect(text, environ=environ), text


# ---------------------------------------------------------------------- provider typos

_HOSTED = frozenset({"openai", "anthropic", "gemini", "vertexai", "xai"})


def _distance(a: str, b: str) -> int:
    """Edit distance with transpositions (optimal string alignment): ``opneai`` is 1 from ``openai``."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def close_provider(name: str, providers: Registry[Any]) -> str | None:
    """The provider name (or alias) ``name`` is most likely a typo of, or ``None``.

    Stricter than :mod:`difflib`'s ratio on purpose: real Ollama model names sit near provider names
    (``llama3`` ~ ``llamacpp``, ``gemma`` ~ ``gemini``, ``llama2`` ~ ``ollama``), so a name counts
    only at one edit (a transposition is one) from a provider name of 4-6 letters, two from a longer
    one, and never under 4 letters.
    """
    key = name.strip().lower()
    if len(key) < 4 or key in providers:
        return None
    best: tuple[int, str] | None = None
    for candidate in (*providers.names(), *providers.aliases):
        if candidate == "test" or len(candidate) < 4:
            continue
        d = _distance(key, candidate)
        if d <= (1 if len(candidate) <= 6 else 2) and (best is None or d < best[0]):
            best = (d, candidate)
    return best[1] if best else None


def unknown_provider(kind: str, name: str, known: list[str], suggestion: str | None) -> UnknownProviderError:
    """:class:`~aixpy.errors.UnknownProviderError` for ``name``, with a did-you-mean when there is one."""
    error = UnknownProviderError(kind, name, known)
    if suggestion:
        error.args = (f"{error.args[0].split('; known:')[0]}; did you mean {suggestion!r}?",)
    return error


def _refuse_typo(text: str, head: str, rest: str | None, providers: Registry[Any]) -> None:
    """UnknownProviderError when ``text`` looks like a mistyped ``provider:model`` rather than an Ollama
    ``name:tag``: the part before ``:`` is a near miss of a provider name, or the part after it is a
    hosted provider's model (``antropic:claude-3-5-haiku-latest``). A bare name that is a near miss
    of a provider name (``-m antropic``) is refused the same way."""
    close = close_provider(head, providers)
    owner = detect(rest, vertex=False, environ={}) if rest and ":" not in rest else None
    if close is None and owner not in _HOSTED:
        return
    fix = providers.canonical(close) if close else owner
    suggestion = f"{fix}:{rest.strip()}" if rest else fix
    known = providers.names()
    raise unknown_provider(providers.kind, head.strip(), known, suggestion)
