"""aixpy._registry: the one registry behind aixpy.llm, aixpy.embeddings and aixpy.vectorstores."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pytest

from aixpy import embeddings, vectorstores
from aixpy._registry import Registry
from aixpy.errors import InvalidInputError, UnknownProviderError

Factory = Callable[[], str]


class EP:
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value


def plugins(monkeypatch: pytest.MonkeyPatch, group: str, *eps: EP) -> list[str]:
    """Entry points of ``group`` become ``eps``; returns the list of groups read (to count reads)."""
    reads: list[str] = []

    def entry_points(group: str) -> list[EP]:
        reads.append(group)
        return list(eps) if group == "test.group" else []

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return reads


def test_builtins_load_lazily_case_insensitively_and_through_aliases() -> None:
    sys.modules.pop("json.tool", None)
    reg: Registry[Any] = Registry("thing", "test.group", {"tool": "json.tool:main"}, {"t": "tool"})
    assert "json.tool" not in sys.modules                   # nothing imported at construction
    import json.tool

    assert reg.resolve("TOOL") is json.tool.main
    assert reg.resolve(" t ") is json.tool.main
    assert "Tool" in reg
    assert "t" in reg
    assert "nope" not in reg
    assert 3 not in reg


def test_register_replace_and_bad_names() -> None:
    reg: Registry[Factory] = Registry("thing", "test.group", {})
    reg.register("Mine", lambda: "one")
    assert reg.resolve("mine")() == "one"
    with pytest.raises(InvalidInputError, match="already registered"):
        reg.register("mine", lambda: "two", replace=False)
    reg.register("mine", lambda: "two")                      # replace is the default
    assert reg.resolve("MINE")() == "two"
    with pytest.raises(InvalidInputError, match="invalid thing provider name"):
        reg.register("bad name!", lambda: "x")


def test_unknown_names_list_every_known_one(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins(monkeypatch, "test.group", EP("plug", "json:dumps"))
    reg: Registry[Any] = Registry("thing", "test.group", {"alpha": "json:loads"})
    with pytest.raises(UnknownProviderError) as info:
        reg.resolve("beta")
    assert "alpha" in str(info.value)
    assert "plug" in str(info.value)


def test_entry_points_are_read_once_and_never_override(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    reads = plugins(monkeypatch, "test.group", EP("plug", "json:dumps"), EP("alpha", "json:JSONDecoder"))
    reg: Registry[Any] = Registry("thing", "test.group", {"alpha": "json:loads"})
    assert reg.resolve("alpha") is json.loads                # a built-in never reads plugins
    assert reads == []
    assert reg.resolve("plug") is json.dumps
    assert reg.names() == ["alpha", "plug"]
    assert "other" not in reg
    assert reads == ["test.group"]


def test_embeddings_and_vectorstores_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "_REGISTRY", Registry("embeddings", "aixpy.embeddings", {}))
    monkeypatch.setattr(vectorstores, "_REGISTRY", Registry("vector store", "aixpy.vectorstores", {}))
    embeddings.register("Mine", "aixpy.embeddings.hashing:create")
    assert embeddings.providers() == ["mine"]
    assert embeddings.new({"provider": "mine"}).dimensions() > 0
    vectorstores.register("mem", "aixpy.vectorstores.memory:create")
    assert "mem" in vectorstores.providers()
    with pytest.raises(UnknownProviderError):
        vectorstores._REGISTRY.resolve("pgvector")
