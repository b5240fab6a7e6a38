"""One plugin registry for LLM providers, embedding providers and vector-store backends.

A name maps to a factory, given as an object or as a lazy ``"module:function"`` path, so a built-in
is imported only when first used. Third-party packages add entries through an entry-point group
(``aixpy.llm``, ``aixpy.embeddings``, ``aixpy.vectorstores``), read once, on the first lookup of a
name that is not known yet. Names are case-insensitive (stored lower case) and aliases point at a
canonical name. Thread-safe.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from aixpy.errors import InvalidInputError, UnknownProviderError

__all__ = ["Registry"]

F = TypeVar("F")
_NAME = re.compile(r"[a-z][a-z0-9_.-]*")


class Registry(Generic[F]):
    """Names -> factories of one kind (``kind`` names it in errors: ``"LLM"``, ``"embeddings"`` ...)."""

    def __init__(self, kind: str, group: str, builtins: Mapping[str, str],
                 aliases: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.group = group
        self.builtins = dict(builtins)
        self.aliases = dict(aliases or {})
        self._entries: dict[str, F | str] = dict(self.builtins)
        self._lock = threading.Lock()
        self._plugins_read = False

    def canonical(self, name: str) -> str:
        key = name.strip().lower()
        return self.aliases.get(key, key)

    def register(self, name: str, factory: F | str, *, replace: bool = True) -> None:
        """Add ``name``; with ``replace=False`` a name already taken raises InvalidInputError."""
        key = name.strip().lower()
        if not _NAME.fullmatch(key):
            raise InvalidInputError(f"invalid {self.kind} provider name {name!r}")
        with self._lock:
            if key in self._entries and not replace:
                raise InvalidInputError(f"provider {key!r} is already registered; pass replace=True to override it")
            self._entries[key] = factory

    def names(self) -> list[str]:
        """Every registered name (built-ins, :meth:`register`, entry points), sorted."""
        self._read_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self.canonical(name)
        if key not in self._entries and _NAME.fullmatch(key):
            self._read_plugins()
        return key in self._entries

    def resolve(self, name: str) -> F:
        """The factory of ``name`` (imported on first use); UnknownProviderError lists the known names."""
        key = self.canonical(name)
        if key not in self._entries:
            self._read_plugins()
        target = self._entries.get(key)
        if target is None:
            raise UnknownProviderError(self.kind, name, self.names())
        if not isinstance(target, str):
            return target
        module, _, attr = target.partition(":")
        loaded: F = getattr(importlib.import_module(module), attr)
        with self._lock:
            if self._entries.get(key) == target:  # not replaced meanwhile
                self._entries[key] = loaded
        return loaded

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        from importlib.metadata import entry_points

        found: dict[str, Any] = {ep.name.strip().lower(): ep.value for ep in entry_points(group=self.group)}
        with self._lock:
            for key, value in found.items():
                self._entries.setdefault(key, value)
            self._plugins_read = True
