"""The curated public surface: ``__all__`` lists are sorted, complete and importable."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

PACKAGES = ["aixpy", "aixpy.errors", "aixpy.config", "aixpy.embeddings", "aixpy.vectorstores",
            "aixpy.vectorstores.filters", "aixpy.rag", "aixpy.http", "aixpy.llm", "aixpy.agents"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_unique_and_resolvable(name: str) -> None:
    """(Sorting is enforced by ruff's RUF022.)"""
    mod = importlib.import_module(name)
    exported = list(mod.__all__)
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert getattr(mod, attr) is not None, f"{name}.{attr} missing"


@pytest.mark.parametrize("name", ["aixpy.errors", "aixpy.vectorstores.filters", "aixpy.rag", "aixpy.http", "aixpy.llm",
                                  "aixpy.agents"])
def test_all_lists_every_public_definition(name: str) -> None:
    mod = importlib.import_module(name)
    defined = {k for k, v in vars(mod).items()
               if not k.startswith("_") and getattr(v, "__module__", None) == mod.__name__ and callable(v)}
    missing = defined - set(mod.__all__) - {"FieldRef"}
    assert not missing, f"public names missing from {name}.__all__: {sorted(missing)}"


def test_import_aixpy_is_lazy() -> None:
    """``import aixpy`` must not pull numpy, pydantic, onnxruntime or httpx."""
    code = ("import sys, aixpy; heavy = [m for m in ('numpy', 'pydantic', 'onnxruntime', 'httpx', 'yaml', "
            "'qdrant_edge', 'typer', 'rich') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_submodule_access() -> None:
    import aixpy

    assert aixpy.vectorstores.Document.__name__ == "Document"
    with pytest.raises(AttributeError):
        aixpy.nope  # noqa: B018


def test_import_agents_leaves_rag_and_mcp_for_first_use() -> None:
    """``aixpy.agents`` exports the answerers and the MCP client lazily: importing it pulls neither."""
    code = ("import json, sys, aixpy.agents as a\n"
            "names = ('aixpy.rag', 'aixpy.agents.ask', 'aixpy.agents.mcp', 'mcp')\n"
            "before = [m for m in names if m in sys.modules]\n"
            "found = [a.ask.__module__, a.MCPServer.__module__, a.retrieve_tool.__module__]\n"
            "print(json.dumps([before, found, 'aixpy.rag' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], ["aixpy.agents.ask", "aixpy.agents.mcp", "aixpy.agents.retrieval"], True]
