"""aixpy: one clean API over LLM providers, embedding providers and vector stores.

Runs offline out of the box: local embeddings (all-MiniLM-L6-v2 on ONNX Runtime) and an embedded
Qdrant store. Submodules load lazily so ``import aixpy`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aixpy._lazy import attach
from aixpy._version import __version__

if TYPE_CHECKING:
    from aixpy import agents, config, embeddings, errors, http, llm, policy, rag, telemetry, vectorstores

__all__ = ["__version__", "agents", "config", "embeddings", "errors", "http", "llm", "policy", "rag", "telemetry",
           "vectorstores"]

__getattr__, __dir__ = attach(__name__, submodules=["agents", "config", "embeddings", "errors", "http", "llm",
                                                    "policy", "rag", "telemetry", "vectorstores"])
