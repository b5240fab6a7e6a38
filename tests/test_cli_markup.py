"""Data never becomes terminal markup or escape sequences: every command that prints data, fed
markup-like text (``[/etc]``, ``[link=...]``), a path and a config name containing ``[/b]``, and raw
ANSI/OSC escape sequences. Runs the real Typer app in-process (hash embedder, memory store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aixpy.cli import app
from aixpy.llm.testing import TestModel
from aixpy.llm.types import ChatResponse, ToolCall
from aixpy.vectorstores.memory import MemoryStore
from aixpy.vectorstores.types import Document

LINK = "[link=https://evil.example]click[/link]"
ESCAPES = "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07osc-link\x1b]8;;\x07 \x1b]0;pwned\x07 bell\x07 \x9b2J"
DOC = f"# Notes\n\nsee [/usr/local/bin] and {LINK} and [bold]x[/bold] :smile: {ESCAPES} ok\n"
QUERY = "what does [/etc] mean :smile:"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("AIXPY_CONFIG", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs" / "x[" / "b]"  # the path contains "[/b]"
    docs.mkdir(parents=True)
    (docs / "notes.md").write_text(DOC)
    conf = tmp_path / "conf[" / "b]"
    conf.mkdir(parents=True)
    (conf / "aixpy.yaml").write_text("embeddings:\n  provider: hash\nvectorstore:\n  provider: memory\n")
    return tmp_path


CONFIG = "conf[/b]/aixpy.yaml"


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def shown(res: Result, code: int = 0) -> str:
    """Everything printed, after checking the exit code and that nothing leaked or crashed."""
    text = res.stdout + res.stderr
    assert res.exit_code == code, text
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    for bad in ("Traceback", "MarkupError", "\x1b", "\x07", "\x9b", "\u0007"):
        assert bad not in text, (bad, text)
    return text


def test_index_search_embed_print_brackets_as_text(work: Path) -> None:
    out = shown(cli("index", "docs", "--config", CONFIG))
    assert f"config: {CONFIG})" in out  # the config name with [/b] is printed as is
    assert "holds 1 chunk(s)" in out

    out = shown(cli("search", QUERY, "--config", CONFIG))
    assert f"results for “{QUERY}”" in out  # no emoji, no vanished brackets
    assert "x[/b]/notes.md#0" in out
    assert "[/usr/local/bin]" in out
    assert LINK in out  # printed, not turned into a hyperlink
    assert "[bold]x[/bold] :smile:" in out
    assert "red" in out
    assert "osc-link" in out
    assert "pwned" not in out

    hits = json.loads(shown(cli("search", QUERY, "--config", CONFIG, "--json")))
    assert "\x1b[31mred" in hits[0]["snippet"]  # JSON keeps the data, escaped (checked by shown())
    assert "\x9b2J" in hits[0]["snippet"]
    assert hits[0]["source"] == "x[/b]/notes.md"

    out = shown(cli("embed", "see [/usr/bin]", f"{LINK} \x1b[2J", "--config", CONFIG))
    assert "'see [/usr/bin]'" in out
    assert LINK in out
    data = json.loads(shown(cli("embed", "see [/usr/bin] \x1b[2J", "--config", CONFIG, "--json")))
    assert data["texts"] == 1


def test_errors_with_markup_in_them_are_one_plain_line(work: Path) -> None:
    out = shown(cli("search", "x", "--config", "conf[/b]/missing.yaml"), 2)
    assert out.startswith("error:")
    assert "conf[/b]/missing.yaml" in out
    assert out.strip().count("\n") == 0
    bad = work / "conf[" / "b]" / "bad.yaml"
    bad.write_text("embeddings:\n  provider: hash\n  [/b]: {}\n")
    out = shown(cli("index", "docs", "--config", str(bad)), 2)
    assert "[/b]" in out
    assert out.strip().count("\n") == 0
    out = shown(cli("index", "no[/b]such \x1b[31mdir", "--config", CONFIG), 2)
    assert "no[/b]such" in out
    out = shown(cli("search", "x", "--collection", "[/b]\x1b[2J", "--config", CONFIG), 2)
    assert "[/b]" in out
    out = shown(cli("search", "x", "--filter", '{"[/b]": {"$[/i]": 1}}', "--config", CONFIG), 2)
    assert "[/i]" in out


def test_collections_print_names_and_models_as_text(work: Path) -> None:
    store = MemoryStore(path=".aixpy/memory.snapshot")
    store.collection("kb").upsert(Document(id="d[/b]", content=DOC, embedding=[1.0, 0.0, 0.0],
                                           embedding_model=f"model[/b] {LINK} \x1b[31m"))
    store.save()
    out = shown(cli("collections", "list", "--config", CONFIG))
    assert "kb" in out
    out = shown(cli("collections", "stats", "kb", "--config", CONFIG))
    assert f"model[/b] {LINK}" in out
    info = json.loads(shown(cli("collections", "stats", "kb", "--config", CONFIG, "--json")))
    assert info["embedding_model"] == f"model[/b] {LINK} \x1b[31m"
    for command in (["stats", "[/b]x"], ["drop", "[/b]x", "--yes"], ["drop", "no-such", "--yes"]):
        out = shown(cli("collections", *command, "--config", CONFIG), 1)
        assert out.startswith("error: no collection '")
    out = shown(cli("collections", "drop", "kb", "--config", CONFIG, "--yes"))
    assert "dropped collection kb" in out


def test_models_and_bench_print_names_as_text(work: Path) -> None:
    out = shown(cli("models"))
    assert "prices in $ per 1M tokens" in out
    out = shown(cli("models", "--provider", "[/b]\x1b[31m"), 2)   # an unknown provider (issue 13 item 9)
    assert out.startswith("error: unknown LLM provider '[/b]")
    out = shown(cli("models", "--live", "--provider", "[/b]x"), 2)
    assert out.startswith("error:")
    res = cli("bench", "embeddings", "--providers", "hash,[/b]x\x1b[2J", "--texts", "3", "--single", "1",
              "--rounds", "1", "--config", CONFIG)
    out = shown(res, 1)
    assert "hash-bow" in out
    assert "[/b]x" in out
    assert "failed" in out


def test_doctor_prints_config_names_as_text(work: Path) -> None:
    out = shown(cli("doctor", "--config", CONFIG))
    assert f"│ {CONFIG} " in out
    assert "MemoryStore, path .aixpy/memory.snapshot" in out


class _Scripted(TestModel):
    """The test provider answering with markup and escapes, its model name too."""

    def __init__(self) -> None:
        answer = ChatResponse(text=f"answer [/b] {LINK} :smile: {ESCAPES}",
                              tool_calls=[ToolCall(id="1", name="tool[/b]", arguments={"q": "[/i]\x1b[2J"})])
        super().__init__(answer, model="m[/b]\x1b[31m")


@pytest.mark.parametrize("flags", [[], ["--no-stream"], ["--json"]])
def test_chat_prints_answers_as_text(work: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]) -> None:
    monkeypatch.setattr("aixpy.cli._llm._resolve_model", lambda *a, **k: _Scripted())
    out = shown(cli("chat", "--model", "test", "[/b] prompt", *flags))
    if flags == ["--json"]:
        data: Any = json.loads(out[: out.rindex("}") + 1])
        assert data["text"].startswith("answer [/b]")
        return
    assert f"answer [/b] {LINK} :smile: red" in out
    assert "tool call tool[/b]" in out
    assert "test:m[/b]" in out


def test_clean_and_styled() -> None:
    from aixpy.cli._output import clean, styled

    assert clean("a\x1b[1;31mb\x1b[0mc") == "abc"
    assert clean("\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert clean("x\x07y\rz\r\n\tw") == "x\ufffdy\ufffdz\n\tw"
    assert clean("rtl\u202eevil") == "rtl\ufffdevil"
    assert clean("plain [b] é 漢字") == "plain [b] é 漢字"
    assert styled(("[/b]", "bold"), " [link=x]y[/link]").plain == "[/b] [link=x]y[/link]"
