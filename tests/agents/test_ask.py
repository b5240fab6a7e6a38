"""Retrieval-augmented answers on the bundled corpus with scripted models: one-shot and agentic."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio

from aixpy.agents.ask import AgenticAsker, Asker, ask
from aixpy.agents.sessions import MemorySessionStore
from aixpy.llm.testing import FunctionModel, TestModel
from aixpy.llm.types import ChatRequest, ToolMessage, UserMessage
from aixpy.rag.answer import NO_CONTEXT_ANSWER, AnswerDelta, AnswerDone, cite
from tests.agents._corpus import corpus
from tests.agents._scripts import calls

__all__ = ["corpus"]

WATER = "How often should I water tomatoes?"
OFF_TOPIC = "Who won the 1998 football world cup?"


def _number_of(prompt: str, source: str) -> int:
    """The number the prompt gave to ``source``'s first passage."""
    m = re.search(rf"^\[(\d+)\] \({re.escape(source)}#\d+\)$", prompt, re.M)
    assert m, prompt
    return int(m.group(1))


def _citing(req: ChatRequest) -> str:
    prompt = req.messages[-1].content
    assert isinstance(prompt, str)
    return f"Water deeply twice a week [{_number_of(prompt, 'gardening.md')}]. Also [42]."


def test_one_shot_citations_map_to_the_chunks(corpus: tuple[Any, Any]) -> None:
    model = FunctionModel(_citing)
    answer = Asker(model, *corpus).ask(WATER)
    assert len(model.requests) == 1
    assert answer.grounded
    assert answer.sources == ["gardening.md#0"]
    (c,) = answer.citations
    assert "twice a week" in c.passage.text
    assert c.passage is answer.passages[c.number - 1]
    assert answer.invalid_citations == [42]  # flagged, not kept as a source
    system = model.requests[0].messages[0].content
    assert isinstance(system, str)
    assert "cite" in system


def test_nothing_relevant_does_not_call_the_model(corpus: tuple[Any, Any]) -> None:
    model = TestModel(default=None)  # would raise if called
    answer = Asker(model, *corpus).ask(OFF_TOPIC)
    assert model.requests == []
    assert answer.text == NO_CONTEXT_ANSWER
    assert not answer.grounded
    assert answer.citations == []
    lenient = Asker(FunctionModel(lambda r: "guess [1]"), *corpus, min_score=None).ask(OFF_TOPIC)
    assert lenient.grounded
    assert lenient.citations


def test_stream_sync_and_async_agree(corpus: tuple[Any, Any]) -> None:
    asker = Asker(FunctionModel(_citing), *corpus)
    events = list(asker.stream(WATER))
    assert isinstance(events[-1], AnswerDone)
    deltas = [e.text for e in events[:-1] if isinstance(e, AnswerDelta)]
    assert len(deltas) == len(events) - 1 > 1
    assert "".join(deltas) == events[-1].answer.text

    async def both() -> tuple[list[Any], Any]:
        got = [e async for e in asker.astream(WATER)]
        return got, await asker.aask(WATER)

    got, answer = anyio.run(both)
    assert [type(e) for e in got] == [type(e) for e in events]
    assert got[-1].answer.sources == answer.sources == events[-1].answer.sources == asker.ask(WATER).sources


def test_session_keeps_questions_and_answers(corpus: tuple[Any, Any]) -> None:
    store = MemorySessionStore()
    model = FunctionModel(_citing)
    asker = Asker(model, *corpus, sessions=store)
    first = asker.ask(WATER, session="s")
    asker.ask("When should tomatoes be planted?", session="s")
    sent = model.requests[1].messages
    assert [m.content for m in sent[1:3]] == [WATER, first.text]  # the plain question, not the passages
    assert len(store.load("s")) == 4


def _agentic_model() -> FunctionModel:
    """Asks retrieve twice, then cites the gardening passage by the number the tool gave it."""

    def reply(req: ChatRequest) -> Any:
        results = [m for m in req.messages if isinstance(m, ToolMessage)]
        if len(results) == 0:
            return calls(("c1", "retrieve", {"query": "sourdough starter", "limit": 2}))
        if len(results) == 1:
            return calls(("c2", "retrieve", {"query": "watering tomatoes", "limit": 2}))
        rows = [r for m in results for r in json.loads(m.content)]
        n = next(r["n"] for r in rows if r["id"] == "gardening.md#0")
        return f"Twice a week [{n}], and feed the starter [1]. See also [9]."

    return FunctionModel(reply)


def test_agentic_ask_calls_retrieve_as_needed(corpus: tuple[Any, Any]) -> None:
    model = _agentic_model()
    answer = AgenticAsker(model, *corpus).ask(WATER)
    assert len(model.requests) == 3
    assert answer.sources[0] == "gardening.md#0"
    assert answer.sources[1].startswith("sourdough.md#")
    assert answer.invalid_citations == [9]
    assert [p.id for p in answer.passages][:1] == [answer.citations[1].passage.id]
    assert answer.run is not None
    assert answer.run.tool_calls == 2

    streamed = list(AgenticAsker(_agentic_model(), *corpus).stream(WATER))
    assert isinstance(streamed[-1], AnswerDone)
    assert streamed[-1].answer.sources == answer.sources
    assert "".join(e.text for e in streamed if isinstance(e, AnswerDelta)) == answer.text
    assert anyio.run(AgenticAsker(_agentic_model(), *corpus).aask, WATER).sources == answer.sources


def test_agentic_nothing_relevant_is_said_not_invented(corpus: tuple[Any, Any]) -> None:
    model = TestModel(calls(("c1", "retrieve", {"query": "1998 world cup winner"})), "France won [1].")
    events = list(AgenticAsker(model, *corpus).stream(OFF_TOPIC))
    assert [type(e) for e in events] == [AnswerDone]  # the invented text is not streamed
    answer = events[-1].answer
    assert answer.text == NO_CONTEXT_ANSWER
    assert not answer.grounded
    assert answer.citations == []
    assert answer.run.text == "France won [1]."


def test_agentic_session_keeps_the_tool_calls(corpus: tuple[Any, Any]) -> None:
    store = MemorySessionStore()
    ask(WATER, _agentic_model(), *corpus, agentic=True, session="a", sessions=store)
    kept = store.load("a")
    assert isinstance(kept[0], UserMessage)
    assert sum(isinstance(m, ToolMessage) for m in kept) == 2


def test_cite_parses_lists_and_flags_unknown_numbers() -> None:
    from aixpy.rag.answer import Passage

    ps = [Passage(f"s.md#{i}", "s.md", i, "t", 0.5) for i in range(3)]
    valid, invalid = cite("a [2] b [1, 3] c [2][7] d [0]", ps)
    assert [c.number for c in valid] == [2, 1, 3]
    assert [c.passage.id for c in valid] == ["s.md#1", "s.md#0", "s.md#2"]
    assert invalid == [7, 0]
