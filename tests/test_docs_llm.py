"""Every Python block of docs/llm.md runs, in order, in one namespace (with the test provider only)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "llm.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 7


def test_every_block_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for i, block in enumerate(BLOCKS):
            try:
                exec(compile(block, f"docs/llm.md block {i + 1}", "exec"), namespace)
            except Exception as e:  # pragma: no cover - the failure message names the block
                pytest.fail(f"docs/llm.md block {i + 1} raised {type(e).__name__}: {e}\n{block}")
    out = printed.getvalue()
    for expected in ("test test", "['city']", "It is 18 degrees in Paris.", "18.0", "failed: True",
                     "you said hello", "test 503"):
        assert expected in out, out
