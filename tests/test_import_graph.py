"""The import graph of ``src/aixpy``, read statically (``ast``): config is a leaf, and no two packages
import each other, directly or round a longer loop.

Every ``import`` statement counts, ``if TYPE_CHECKING:`` blocks included (import-linter counts them too);
``module_level`` leaves out the ones inside functions and classes (imports run on first use).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aixpy

SRC = Path(aixpy.__file__).parent


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    module_level: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def _imports(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, module_level
        nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda)
        yield from _imports(child, module_level and not nested)


def edges_of(name: str, path: Path) -> Iterator[Edge]:
    """The aixpy modules ``name`` imports; ``from pkg import mod`` counts as importing ``pkg.mod``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node, module_level in _imports(ast.parse(path.read_text(encoding="utf-8")), True):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            while target and target not in MODULES:  # `import aixpy.x.y` of a name inside a module
                target = target.rpartition(".")[0]
            if target.startswith("aixpy"):
                yield Edge(name, target, node.lineno, module_level)


EDGES = [edge for name, path in sorted(MODULES.items()) for edge in edges_of(name, path)]


def package_of(module: str) -> str:
    """``aixpy.llm.providers.openai`` -> ``aixpy.llm``; the bottom modules (``aixpy.errors``...) are their own."""
    return ".".join(module.split(".")[:2])


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def package_graph(*, module_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for e in EDGES:
        if (e.module_level or not module_level_only) and package_of(e.source) != package_of(e.target):
            graph[package_of(e.source)].add(package_of(e.target))
    return graph


def test_the_graph_is_read() -> None:
    """The reader sees the imports it must (so the tests below cannot pass on an empty graph)."""
    edges = {(e.source, e.target, e.module_level) for e in EDGES}
    assert ("aixpy.llm._build", "aixpy.config.llm", True) in edges
    assert ("aixpy.llm._new", "aixpy.llm._build", False) in edges     # function-local, `from aixpy.llm import _build`
    assert ("aixpy.config.llm", "aixpy._model_names", True) in edges  # `from aixpy import _model_names`
    assert ("aixpy.config.stores", "aixpy.config.embeddings", True) in edges  # a multi-line `from ... import (...)`
    assert package_graph(module_level_only=True)["aixpy.rag"] >= {"aixpy.embeddings", "aixpy.vectorstores"}


def test_find_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"a"}, "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


CONFIG_MAY_IMPORT = {"aixpy.errors", "aixpy._registry", "aixpy._version", "aixpy._lazy", "aixpy._model_names"}


def test_config_is_a_leaf() -> None:
    """aixpy.config (schema only) imports nothing of aixpy but itself, errors and the bottom utilities —
    not even inside a function."""
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in EDGES
           if package_of(e.source) == "aixpy.config" and package_of(e.target) != "aixpy.config"
           and e.target not in CONFIG_MAY_IMPORT]
    assert bad == []


def test_bottom_utilities_import_only_the_bottom() -> None:
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in EDGES
           if e.source in CONFIG_MAY_IMPORT and e.target not in CONFIG_MAY_IMPORT]
    assert bad == []


def test_llm_imports_config_at_module_level_only() -> None:
    """No hidden coupling: where aixpy.llm reads config, the import is at the top of the module."""
    hidden = [f"{e.source}:{e.line}" for e in EDGES if package_of(e.source) == "aixpy.llm"
              and package_of(e.target) == "aixpy.config" and not e.module_level]
    assert hidden == []


def test_no_cycle_between_packages() -> None:
    assert find_cycle(package_graph(module_level_only=True)) is None


def test_no_cycle_between_packages_even_through_function_local_imports() -> None:
    assert find_cycle(package_graph(module_level_only=False)) is None
