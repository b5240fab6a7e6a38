"""Lazy package attributes (PEP 562): one loader for every package ``__init__`` that imports on first use.

::

    __getattr__, __dir__ = attach(__name__, submodules=["llm"], attributes={".types": ["ChatRequest"]})

``submodules`` become attributes when first read (``aixpy.llm``); ``attributes`` maps a module (absolute,
or relative to the package with a leading dot) to the names it defines that the package re-exports.
A name read once is stored on the package, so the loader runs once per name. ``dir()`` lists the
package's ``__all__`` and every lazy name. Bottom layer: imports nothing from aixpy.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(
    package: str, *, submodules: Iterable[str] = (), attributes: Mapping[str, Iterable[str]] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the module ``package`` (pass ``__name__``)."""
    modules = frozenset(submodules)
    where: dict[str, str] = {}
    for module, names in (attributes or {}).items():
        for name in names:
            if name in where or name in modules:
                raise ValueError(f"{package}: lazy name {name!r} is declared twice")
            where[name] = module

    def __getattr__(name: str) -> Any:
        if name in modules:
            return importlib.import_module(f"{package}.{name}")  # the import sets it on the package
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}", name=name,
                                 obj=sys.modules.get(package))
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        public = getattr(sys.modules[package], "__all__", ())
        return sorted({*public, *modules, *where})

    return __getattr__, __dir__
