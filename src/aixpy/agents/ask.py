"""``ask``: retrieval-augmented answers with citations, one-shot or agentic, with sessions.

::

    from aixpy.agents.ask import Asker

    asker = Asker(model, embedder, collection)                  # one-shot: retrieve, then one model call
    answer = asker.ask("How often should I water tomatoes?")
    print(answer.text, answer.sources)                          # "... [1]."  ['gardening.md#0']

    agentic = AgenticAsker(model, embedder, collection)  # the model calls `retrieve` as it needs
    for event in agentic.stream("Compare sourdough and pasta dough", session="s1"):
        ...                                                     # AnswerDelta..., then AnswerDone

The one-shot form is :class:`aixpy.rag.answer.Answerer` (it needs only the LLM and RAG layers); this
module adds the agentic form and sessions. In the agentic form every passage the ``retrieve`` tool
returns gets a number for the whole run (the same passage keeps its number), the answer's citations
map to them, and a run in which no call found a relevant passage gives :data:`NO_CONTEXT_ANSWER`
whatever the model wrote (its reply stays in ``answer.run``, and is not streamed: text deltas are
passed on only once some relevant passage was found).

With ``session=`` the conversation continues across calls: the one-shot form keeps each question and
answer (not the passages); the agentic form keeps the whole run, tool calls included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from aixpy.agents.agent import Agent
from aixpy.agents.result import FinalResult, Limits, RunEvent, RunResult, TextDelta
from aixpy.agents.retrieval import PassageLog, retrieve_tool
from aixpy.agents.sessions import SessionStore, default_store
from aixpy.embeddings.base import EmbeddingService
from aixpy.llm.model import ChatModel
from aixpy.rag.answer import (
    DEFAULT_MIN_SCORE,
    NO_CONTEXT_ANSWER,
    Answer,
    AnswerDelta,
    AnswerDone,
    Answerer,
    AnswerEvent,
    cite,
    turn,
)
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter

__all__ = ["AGENTIC_INSTRUCTIONS", "AgenticAsker", "Asker", "ask"]

AGENTIC_INSTRUCTIONS = (
    "Answer the user's question from the indexed documents. Call the retrieve tool (as often as you need, "
    "with focused queries) to find passages; each passage has a number n. After each claim, cite the passages "
    "it comes from by their number in square brackets, like [1] or [2][3]. If the passages do not contain the "
    "answer, say that you do not know; never invent facts or citations."
)


class _AgenticRun:
    """One agentic ask: a fresh passage numbering, the agent that uses it, and the answer it gives."""

    def __init__(self, asker: Asker, question: str) -> None:
        self.question = question
        self.log = PassageLog()
        a = asker.answerer
        tool = retrieve_tool(a.embedder, a.collection, limit=a.limit, min_score=a.min_score, filter=a.filter,
                             log=self.log)
        prompt = AGENTIC_INSTRUCTIONS if asker.instructions is None else \
            f"{asker.instructions}\n\n{AGENTIC_INSTRUCTIONS}"
        self.agent: Agent[Any] = Agent("ask", prompt, a.model, tools=[tool], limits=asker.limits,
                                       temperature=a.temperature, max_tokens=a.max_tokens,
                                       sessions=asker.sessions)

    def answer(self, result: RunResult) -> Answer:
        response = result.steps[-1].response if result.steps else None
        if not self.log.numbered:
            return Answer(self.question, NO_CONTEXT_ANSWER, grounded=False, response=response, run=result)
        citations, invalid = cite(result.text, self.log.numbered)
        return Answer(self.question, result.text, list(self.log.numbered.values()), citations, invalid, True,
                      response, run=result)

    def event(self, event: RunEvent) -> AnswerEvent | None:
        if isinstance(event, TextDelta):  # held back until some relevant passage was found
            return AnswerDelta(event.text) if self.log.numbered else None
        if isinstance(event, FinalResult):
            return AnswerDone(self.answer(event.result))
        return None


class Asker:
    """Answers questions from an indexed collection, citing the passages (see the module docstring).

    Args:
        model: the chat model.
        embedder: the embedding service the collection was indexed with.
        collection: the indexed collection.
        instructions: put before the citation rules (an agent's ``prompt:``).
        limit: passages per retrieval.
        min_score: passages scoring below it are not relevant (default: measured for the local model).
        filter: restricts every retrieval.
        limits: the agentic run's :class:`~aixpy.agents.Limits`.
        sessions: where ``session=`` conversations are kept (default: files under ``./.aixpy/sessions``).
        timeout: seconds for the one-shot model call (the agentic run uses ``limits.timeout``).
    """

    def __init__(self, model: ChatModel, embedder: EmbeddingService, collection: BaseCollection, *,
                 instructions: str | None = None, limit: int = 5,
                 min_score: float | None = DEFAULT_MIN_SCORE, filter: Filter | None = None,
                 limits: Limits | None = None, temperature: float | None = None, max_tokens: int | None = None,
                 sessions: SessionStore | None = None, timeout: float | None = None) -> None:
        self.instructions = instructions  # the caller's; the answerer holds the retrieval settings and the model
        self.limits = limits
        self._sessions = sessions
        self.answerer = Answerer(model, embedder, collection, limit=limit, min_score=min_score, filter=filter,
                                 instructions=instructions, temperature=temperature, max_tokens=max_tokens,
                                 timeout=timeout)

    @property
    def sessions(self) -> SessionStore:
        if self._sessions is None:
            self._sessions = default_store()
        return self._sessions

    def _history(self, session: str | None) -> list[Any]:
        return [] if session is None else self.sessions.load(session)

    def _remember(self, event: AnswerEvent, session: str | None) -> AnswerEvent:
        if session is not None and isinstance(event, AnswerDone):
            self.sessions.append(session, turn(event.answer))
        return event

    # ------------------------------------------------------------------ sync

    def ask(self, question: str, *, session: str | None = None) -> Answer:
        """The answer to ``question``, with its citations."""
        answer = self.answerer.answer(question, history=self._history(session))
        self._remember(AnswerDone(answer), session)
        return answer

    def stream(self, question: str, *, session: str | None = None) -> Iterator[AnswerEvent]:
        """:class:`~aixpy.rag.answer.AnswerDelta` s, then :class:`~aixpy.rag.answer.AnswerDone`."""
        for event in self.answerer.stream(question, history=self._history(session)):
            yield self._remember(event, session)

    # ------------------------------------------------------------------ async

    async def aask(self, question: str, *, session: str | None = None) -> Answer:
        """Async twin of :meth:`ask`."""
        answer = await self.answerer.aanswer(question, history=self._history(session))
        self._remember(AnswerDone(answer), session)
        return answer

    async def astream(self, question: str, *, session: str | None = None) -> AsyncIterator[AnswerEvent]:
        """Async twin of :meth:`stream`."""
        async for event in self.answerer.astream(question, history=self._history(session)):
            yield self._remember(event, session)


class AgenticAsker(Asker):
    """The agentic form: an :class:`~aixpy.agents.Agent` with the ``retrieve`` tool, called as often as
    the model needs (same arguments as :class:`Asker`)."""

    def ask(self, question: str, *, session: str | None = None) -> Answer:
        run = _AgenticRun(self, question)
        return run.answer(run.agent.run(question, session=session))

    def stream(self, question: str, *, session: str | None = None) -> Iterator[AnswerEvent]:
        run = _AgenticRun(self, question)
        for event in run.agent.stream(question, session=session):
            out = run.event(event)
            if out is not None:
                yield out

    async def aask(self, question: str, *, session: str | None = None) -> Answer:
        run = _AgenticRun(self, question)
        return run.answer(await run.agent.arun(question, session=session))

    async def astream(self, question: str, *, session: str | None = None) -> AsyncIterator[AnswerEvent]:
        run = _AgenticRun(self, question)
        async for event in run.agent.astream(question, session=session):
            out = run.event(event)
            if out is not None:
                yield out


def ask(question: str, model: ChatModel, embedder: EmbeddingService, collection: BaseCollection, *,
        agentic: bool = False, session: str | None = None, **options: Any) -> Answer:
    """One question: ``Asker(...).ask(question)``, or :class:`AgenticAsker` with ``agentic=True``."""
    cls = AgenticAsker if agentic else Asker
    return cls(model, embedder, collection, **options).ask(question, session=session)
