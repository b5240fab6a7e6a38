"""The built-in retrieve tool over an indexed collection."""

from __future__ import annotations

from typing import Any

import pytest

from aixpy.agents import Agent, RunContext
from aixpy.agents.retrieval import PassageLog, retrieve_tool
from aixpy.errors import EmbeddingMismatchError
from aixpy.llm.testing import TestModel
from aixpy.rag.answer import DEFAULT_MIN_SCORE, retrieve
from aixpy.vectorstores.filters import field
from tests.agents._corpus import corpus
from tests.agents._scripts import calls

__all__ = ["corpus"]


def _call(tool: Any, **args: Any) -> Any:
    return tool.call(RunContext(None, None, 0), tool.validate(args))  # type: ignore[arg-type]


def test_passages_carry_source_ids_and_scores_best_first(corpus: tuple[Any, Any]) -> None:
    tool = retrieve_tool(*corpus)
    rows = _call(tool, query="How often should I water tomatoes?", limit=3)
    assert len(rows) == 3
    assert rows[0]["id"] == "gardening.md#0"
    assert rows[0]["source"] == "gardening.md"
    assert "twice a week" in rows[0]["text"]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(not r["id"].startswith("_aixpy") for r in rows)  # index records are never passages


def test_filter_from_the_model_and_the_tool_combine(corpus: tuple[Any, Any]) -> None:
    rows = _call(retrieve_tool(*corpus), query="cooking time", limit=10, filter={"source": "pasta.txt"})
    assert rows
    assert {r["source"] for r in rows} == {"pasta.txt"}
    fixed = retrieve_tool(*corpus, filter=field("source").eq("sourdough.md"))
    rows = _call(fixed, query="cooking time", limit=10, filter={"source": "pasta.txt"})
    assert rows == []


def test_min_score_drops_irrelevant_passages(corpus: tuple[Any, Any]) -> None:
    tool = retrieve_tool(*corpus, min_score=DEFAULT_MIN_SCORE)
    assert _call(tool, query="Who won the 1998 football world cup?") == []
    assert _call(tool, query="What is server-side request forgery?")[0]["source"] == "security-ssrf.md"


def test_bad_arguments_are_errors_for_the_model(corpus: tuple[Any, Any]) -> None:
    tool = retrieve_tool(*corpus, limit=2, max_limit=4)
    with pytest.raises(ValueError, match="limit"):
        _call(tool, query="x", limit=5)
    with pytest.raises(ValueError, match="empty"):
        _call(tool, query="  ")
    with pytest.raises(ValueError, match="between 1 and max_limit"):
        retrieve_tool(*corpus, limit=0)


def test_log_numbers_each_passage_once(corpus: tuple[Any, Any]) -> None:
    log = PassageLog()
    tool = retrieve_tool(*corpus, log=log)
    first = _call(tool, query="tomatoes", limit=2)
    again = _call(tool, query="tomatoes", limit=3)
    assert [r["n"] for r in first] == [1, 2]
    assert [r["n"] for r in again][:2] == [1, 2]
    assert again[2]["n"] == 3
    assert log.numbered[1].id == first[0]["id"]


def test_collection_of_another_model_is_an_error(corpus: tuple[Any, Any]) -> None:
    from aixpy import embeddings

    with pytest.raises(EmbeddingMismatchError):
        retrieve(embeddings.new({"provider": "hash"}), corpus[1], "tomatoes")


def test_an_agent_calls_it_and_sees_the_passages(corpus: tuple[Any, Any]) -> None:
    model = TestModel(calls(("c1", "retrieve", {"query": "sourdough starter", "limit": 2})), "done")
    result = Agent("a", "", model, tools=[retrieve_tool(*corpus)]).run("starter?")
    sent = result.steps[0].tool_results[0]
    assert not sent.is_error
    assert sent.value[0]["id"] == "sourdough.md#0"
    assert "sourdough.md#0" in model.requests[1].messages[-1].content  # type: ignore[union-attr]
