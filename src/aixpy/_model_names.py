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
from aixpy.errors import InvalidInputError

__all__ = ["ALIASES", "BUILTINS", "EMBEDDINGS", "PROVIDERS", "VECTORSTORES", "detect", "split"]

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
    return detect(text, environ=environ), text
