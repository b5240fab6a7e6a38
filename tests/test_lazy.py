"""aixpy._lazy: the one loader behind every package that imports its names on first use."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from aixpy._lazy import attach

LAZY_PACKAGES = ["aixpy", "aixpy.config", "aixpy.llm", "aixpy.embeddings.policies"]


@pytest.fixture
def fakepkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway package ``lazyfake`` whose ``__init__`` uses :func:`attach`; its modules count their imports."""
    root = tmp_path / "lazyfake"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text(textwrap.dedent("""
        from aixpy._lazy import attach
        __all__ = ["Thing", "helper", "other", "sub"]
        LOADS = []
        __getattr__, __dir__ = attach(__name__, submodules=["sub"],
                                      attributes={".things": ["Thing", "helper"], "lazyfake.sub.deep": ["other"]})
    """))
    (root / "things.py").write_text("import lazyfake\nlazyfake.LOADS.append('things')\n"
                                    "class Thing: pass\ndef helper(): return 42\n")
    (root / "sub" / "__init__.py").write_text("import lazyfake\nlazyfake.LOADS.append('sub')\n")
    (root / "sub" / "deep.py").write_text("other = 'deep'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "lazyfake"
    for name in [m for m in sys.modules if m == "lazyfake" or m.startswith("lazyfake.")]:
        del sys.modules[name]


def test_names_load_on_first_use_and_once(fakepkg: str) -> None:
    pkg = importlib.import_module(fakepkg)
    assert pkg.LOADS == []
    assert "lazyfake.things" not in sys.modules
    assert pkg.helper() == 42                                  # relative module path
    assert pkg.LOADS == ["things"]
    assert "helper" in vars(pkg)                               # stored: __getattr__ is not called again
    assert pkg.Thing.__module__ == "lazyfake.things"
    assert pkg.LOADS == ["things"]
    assert pkg.other == "deep"                                 # absolute module path
    assert pkg.sub is sys.modules["lazyfake.sub"]              # a submodule
    assert pkg.LOADS == ["things", "sub"]


def test_unknown_name_is_an_attribute_error(fakepkg: str) -> None:
    pkg = importlib.import_module(fakepkg)
    with pytest.raises(AttributeError, match="module 'lazyfake' has no attribute 'nope'") as err:
        pkg.nope  # noqa: B018
    assert err.value.name == "nope"
    assert not hasattr(pkg, "things")  # a module of the package is not a lazy name...
    from lazyfake import things  # ...yet `from package import module` imports it, as without the loader

    assert things is sys.modules["lazyfake.things"]


def test_dir_lists_all_and_the_lazy_names_before_loading(fakepkg: str) -> None:
    pkg = importlib.import_module(fakepkg)
    assert dir(pkg) == ["Thing", "helper", "other", "sub"]
    assert pkg.LOADS == []


def test_a_name_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'x' is declared twice"):
        attach("somepkg", attributes={".a": ["x"], ".b": ["x"]})
    with pytest.raises(ValueError, match="'sub' is declared twice"):
        attach("somepkg", submodules=["sub"], attributes={".a": ["sub"]})


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_every_lazy_package_resolves_its_all_and_lists_it(name: str) -> None:
    mod = importlib.import_module(name)
    assert set(mod.__all__) <= set(dir(mod))
    for attr in mod.__all__:
        assert getattr(mod, attr) is not None, f"{name}.{attr}"
    with pytest.raises(AttributeError, match=f"module '{name}' has no attribute 'no_such_name'"):
        mod.no_such_name  # noqa: B018


def test_aixpy_reaches_llm_and_http_lazily() -> None:
    import aixpy

    assert {"llm", "http"} <= set(dir(aixpy))
    assert dir(aixpy) == sorted(aixpy.__all__)
    assert aixpy.llm is sys.modules["aixpy.llm"]
    assert aixpy.llm.new is importlib.import_module("aixpy.llm._new").new
    assert aixpy.http.HttpClient.__name__ == "HttpClient"


def test_registry_new_is_llm_new() -> None:
    from aixpy.llm import new, registry
    from aixpy.llm.registry import new as registry_new

    assert registry.new is new
    assert registry_new is new
    with pytest.raises(AttributeError):
        registry.no_such_name  # noqa: B018


def test_import_aixpy_imports_no_subpackage() -> None:
    """``import aixpy`` loads none of its subpackages (nor pydantic/httpx); reading ``aixpy.llm`` loads only it."""
    code = ("import sys, aixpy; before = sorted(m for m in sys.modules if m.startswith('aixpy.') "
            "or m in ('httpx', 'pydantic')); aixpy.llm; "
            "after = sorted(m for m in sys.modules if m.startswith('aixpy.') or m in ('httpx', 'pydantic')); "
            "print(before, after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['aixpy._lazy', 'aixpy._version'] ['aixpy._lazy', 'aixpy._version', 'aixpy.llm']"
