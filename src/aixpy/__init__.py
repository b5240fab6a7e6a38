"""aixpy: one clean API over LLM providers, embedding providers and vector stores.

Runs offline out of the box: local embeddings (all-MiniLM-L6-v2 on ONNX Runtime) and an embedded
Qdrant store. Submodules load lazily so ``import aixpy`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aixpy._version import __version__

if TYPE_CHECKING:
    from aixpy import config, embeddings, errors, rag, vectorstores

__all__ = ["__version__", "config", "embeddings", "errors", "rag", "vectorstores"]

_SUBMODULES = frozenset({"config", "embeddings", "errors", "rag", "vectorstores"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"aixpy.{name}")
    raise AttributeError(f"module 'aixpy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
