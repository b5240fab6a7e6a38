"""The policies' public surface: ``__all__`` complete and importable; lazy package import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = ["aixpy.embeddings.policies.cache", "aixpy.embeddings.policies.redis_cache",
           "aixpy.embeddings.policies.ratelimit", "aixpy.embeddings.policies.retry",
           "aixpy.embeddings.policies.fallback", "aixpy.embeddings.policies.cost",
           "aixpy.embeddings.policies._wrapper", "aixpy.embeddings.policies._compose", "aixpy.embeddings.quality"]


@pytest.mark.parametrize("name", MODULES)
def test_every_public_definition_is_exported(name: str) -> None:
    mod = importlib.import_module(name)
    defined = {k for k, v in vars(mod).items()
               if not k.startswith("_") and getattr(v, "__module__", None) == mod.__name__ and callable(v)}
    assert not defined - set(mod.__all__), f"missing from {name}.__all__"
    package = importlib.import_module("aixpy.embeddings.policies")
    for attr in mod.__all__:
        assert getattr(mod, attr) is not None
        if name.startswith("aixpy.embeddings.policies"):
            assert getattr(package, attr) is getattr(mod, attr), f"{attr} not exported by the package"


def test_package_exports_resolve_lazily() -> None:
    code = ("import sys, aixpy.embeddings.policies as p; retry = 'aixpy.embeddings.policies.retry'; "
            "before = retry in sys.modules; p.CachedEmbeddings; mid = retry in sys.modules; p.RetryingEmbeddings; "
            "print(before, mid, retry in sys.modules, 'aixpy.llm.model' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the retry module is imported only when used; embeddings never pull in the LLM layer (aixpy.policy is below)
    assert out.stdout.split() == ["False", "False", "True", "False"]
