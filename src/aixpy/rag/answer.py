"""Retrieval-augmented answers, one shot: retrieve passages from a collection, then ONE model call that
answers from them, citing them as ``[1]``, ``[2]``.

::

    from aixpy.rag.answer import Answerer

    answerer = Answerer(model, embedder, collection)
    answer = answerer.answer("How often should I water tomatoes?")
    print(answer.text)                       # "... twice a week [1]."
    for c in answer.citations:               # [1] -> gardening.md#0
        print(c.number, c.passage.id)

When no passage scores at least ``min_score`` the model is NOT called: the answer is
:data:`NO_CONTEXT_ANSWER` and ``answer.grounded`` is false. The default threshold
(:data:`DEFAULT_MIN_SCORE`, cosine similarity) was measured with the default local model
(all-MiniLM-L6-v2) on the bundled ``examples/corpus``: on-topic questions scored 0.37-0.73, off-topic
ones 0.06-0.20. Another embedding model needs its own threshold.

The citations of an answer are parsed from its text: a number that names a passage maps to its
``source#chunk``; one that names none is listed in ``answer.invalid_citations``, never kept as a source.

The logic is written once, as a plan (:func:`_plan`) that yields the I/O it needs; a sync and an async
driver do that I/O (the async one runs the search, which is sync, in a worker thread).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from aixpy.embeddings.base import EmbeddingService
from aixpy.llm.model import ChatModel
from aixpy.llm.types import AssistantMessage, ChatRequest, ChatResponse, Message, SystemMessage, UserMessage
from aixpy.rag.indexer import search
from aixpy.vectorstores.base import BaseCollection
from aixpy.vectorstores.filters import Filter

__all__ = [
    "ANSWER_INSTRUCTIONS",
    "DEFAULT_MIN_SCORE",
    "NO_CONTEXT_ANSWER",
    "Answer",
    "AnswerDelta",
    "AnswerDone",
    "AnswerEvent",
    "Answerer",
    "Citation",
    "Passage",
    "aretrieve",
    "cite",
    "format_passages",
    "retrieve",
    "turn",
]

DEFAULT_MIN_SCORE = 0.3
"""Passages scoring below this are not relevant (cosine, measured for the default local model)."""

NO_CONTEXT_ANSWER = "I found nothing relevant to this question in the indexed documents, so I cannot answer it."

ANSWER_INSTRUCTIONS = (
    "Answer the question using only the numbered passages given with it. After each claim, cite the "
    "passages it comes from by their number in square brackets, like [1] or [2][3]. If the passages do not "
    "contain the answer, say that you do not know; never invent facts or citations."
)

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_NO_TEXT = 10**9  # search's snippet length that keeps a passage whole


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk: ``id`` is ``source#chunk`` (what citations map to), ``text`` the whole chunk,
    ``score`` its similarity to the query, ``doc_id`` the collection's document id."""

    id: str
    source: str
    chunk: int
    text: str
    score: float
    doc_id: str = ""
    path: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "chunk": self.chunk, "score": round(self.score, 6),
                "text": self.text}


@dataclass(frozen=True, slots=True)
class Citation:
    """``[number]`` in an answer and the passage it names."""

    number: int
    passage: Passage


@dataclass(slots=True)
class Answer:
    """A retrieval-augmented answer.

    ``passages`` are those the model was given (numbered from 1), ``citations`` the valid numbers the
    text cites (in order of first use), ``invalid_citations`` the cited numbers that name no passage.
    ``grounded`` is false when nothing relevant was found (then the model was not called and
    ``response`` is ``None``). ``run`` is the agent's run result in the agentic form
    (:class:`aixpy.agents.ask.AgenticAsker`).
    """

    question: str
    text: str
    passages: list[Passage] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    grounded: bool = True
    response: ChatResponse | None = None
    run: Any = None

    @property
    def sources(self) -> list[str]:
        """The cited ``source#chunk`` ids, in order of first citation."""
        return [c.passage.id for c in self.citations]

    def as_dict(self) -> dict[str, Any]:
        usage = self.response.usage if self.response is not None else None
        return {
            "question": self.question, "answer": self.text, "grounded": self.grounded,
            "citations": [{"number": c.number, "source": c.passage.id, "score": round(c.passage.score, 6)}
                          for c in self.citations],
            "invalid_citations": self.invalid_citations,
            "passages": [p.as_dict() for p in self.passages],
            "model": None if self.response is None else f"{self.response.provider}:{self.response.model}",
            "usage": None if usage is None else {"input_tokens": usage.input_tokens,
                                                 "output_tokens": usage.output_tokens},
            "cost_usd": None if self.response is None else self.response.cost_usd,
        }


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """A piece of the answer's text, as it streams."""

    text: str
    kind: Literal["answer_delta"] = "answer_delta"


@dataclass(frozen=True, slots=True)
class AnswerDone:
    """The answer is complete; always the last event. ``answer.citations`` are its sources."""

    answer: Answer
    kind: Literal["answer_done"] = "answer_done"


AnswerEvent: TypeAlias = AnswerDelta | AnswerDone


def _passages(embedder: EmbeddingService, collection: BaseCollection, query: str, limit: int,
              filter: Filter | None, min_score: float | None) -> list[Passage]:
    hits = search(embedder, collection, query, limit=limit, filter=filter, min_score=min_score,
                  snippet_chars=_NO_TEXT)
    return [Passage(f"{h.source}#{h.chunk}", h.source, h.chunk, h.snippet, h.score, h.id, h.path) for h in hits]


def retrieve(embedder: EmbeddingService, collection: BaseCollection, query: str, *, limit: int = 5,
             filter: Filter | None = None, min_score: float | None = None) -> list[Passage]:
    """The ``limit`` best passages for ``query`` (best first), skipping the collection's index records.

    Raises :class:`~aixpy.errors.EmbeddingMismatchError` when the collection was built with another
    embedding model."""
    return _passages(embedder, collection, query, limit, filter, min_score)


async def aretrieve(embedder: EmbeddingService, collection: BaseCollection, query: str, *, limit: int = 5,
                    filter: Filter | None = None, min_score: float | None = None) -> list[Passage]:
    """Async twin of :func:`retrieve` (the search runs in a worker thread)."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(_passages, embedder, collection, query, limit, filter, min_score)


def format_passages(passages: Sequence[Passage], start: int = 1) -> str:
    """Passages as the model sees them: ``[n] (source#chunk)`` and the text, numbered from ``start``."""
    return "\n\n".join(f"[{i}] ({p.id})\n{p.text}" for i, p in enumerate(passages, start))


def cite(text: str, numbered: Sequence[Passage] | dict[int, Passage]) -> tuple[list[Citation], list[int]]:
    """The citations in ``text`` (``[1]``, ``[2, 3]``): those naming a passage (``numbered`` is a list
    numbered from 1, or a ``{number: passage}`` map), in order of first use, and the numbers naming none."""
    table = numbered if isinstance(numbered, dict) else dict(enumerate(numbered, 1))
    valid: dict[int, Citation] = {}
    invalid: list[int] = []
    for m in _CITATION.finditer(text):
        for raw in m.group(1).split(","):
            n = int(raw)
            passage = table.get(n)
            if passage is None:
                if n not in invalid:
                    invalid.append(n)
            elif n not in valid:
                valid[n] = Citation(n, passage)
    return list(valid.values()), invalid


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True)
class _Retrieve:
    query: str


@dataclass(frozen=True, slots=True)
class _Call:
    request: ChatRequest


_Plan: TypeAlias = Generator[_Retrieve | _Call, Any, Answer]


class Answerer:
    """Answers questions from a collection with one model call each (see the module docstring).

    Args:
        model: the chat model that writes the answer.
        embedder: the embedding service the collection was indexed with.
        collection: the indexed collection.
        limit: passages given to the model.
        min_score: passages scoring below it are dropped; when none is left the model is not called.
        filter: restricts the search (e.g. ``field("source").eq("guide.md")``).
        instructions: the system prompt (default :data:`ANSWER_INSTRUCTIONS`; an agent's ``prompt:`` is
            put before the citation rules).
        timeout: seconds for the model call (retries included), default the model's.
    """

    def __init__(self, model: ChatModel, embedder: EmbeddingService, collection: BaseCollection, *, limit: int = 5,
                 min_score: float | None = DEFAULT_MIN_SCORE, filter: Filter | None = None,
                 instructions: str | None = None, temperature: float | None = None,
                 max_tokens: int | None = None, timeout: float | None = None) -> None:
        self.model = model
        self.embedder = embedder
        self.collection = collection
        self.limit = limit
        self.min_score = min_score
        self.filter = filter
        self.instructions = ANSWER_INSTRUCTIONS if instructions is None else f"{instructions}\n\n{ANSWER_INSTRUCTIONS}"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout

    def _plan(self, question: str, history: Sequence[Message]) -> _Plan:
        found: list[Passage] = yield _Retrieve(question)
        passages = [p for p in found if self.min_score is None or p.score >= self.min_score]
        if not passages:
            return Answer(question, NO_CONTEXT_ANSWER, grounded=False)
        prompt = f"Passages:\n\n{format_passages(passages)}\n\nQuestion: {question}"
        messages: list[Message] = [SystemMessage(self.instructions),
                                   *(m for m in history if not isinstance(m, SystemMessage)), UserMessage(prompt)]
        response: ChatResponse = yield _Call(ChatRequest(self.model.model, messages, temperature=self.temperature,
                                                         max_tokens=self.max_tokens))
        citations, invalid = cite(response.text, passages)
        return Answer(question, response.text, passages, citations, invalid, True, response)

    # ------------------------------------------------------------------ sync

    def _drive(self, question: str, history: Sequence[Message], stream: bool) -> Iterator[AnswerEvent]:
        plan = self._plan(question, history)
        try:
            step = next(plan)
            while True:
                if isinstance(step, _Retrieve):
                    step = plan.send(_passages(self.embedder, self.collection, step.query, self.limit, self.filter,
                                               None))
                elif not stream:
                    step = plan.send(self.model.chat(step.request, timeout=self.timeout))
                else:
                    with self.model.stream(step.request, timeout=self.timeout) as s:
                        for delta in s.text_deltas():
                            yield AnswerDelta(delta)
                    step = plan.send(s.response)
        except StopIteration as done:
            yield AnswerDone(done.value)

    def answer(self, question: str, *, history: Sequence[Message] = ()) -> Answer:
        """Retrieve, then answer with one model call (none when nothing relevant was found)."""
        *_, last = self._drive(question, history, stream=False)
        assert isinstance(last, AnswerDone)
        return last.answer

    def stream(self, question: str, *, history: Sequence[Message] = ()) -> Iterator[AnswerEvent]:
        """:class:`AnswerDelta` s as the model writes, then :class:`AnswerDone` with the sources."""
        return self._drive(question, history, stream=True)

    # ------------------------------------------------------------------ async

    async def _adrive(self, question: str, history: Sequence[Message], stream: bool) -> AsyncIterator[AnswerEvent]:
        plan = self._plan(question, history)
        try:
            step = next(plan)
            while True:
                if isinstance(step, _Retrieve):
                    step = plan.send(await aretrieve(self.embedder, self.collection, step.query, limit=self.limit,
                                                     filter=self.filter))
                elif not stream:
                    step = plan.send(await self.model.achat(step.request, timeout=self.timeout))
                else:
                    async with self.model.astream(step.request, timeout=self.timeout) as s:
                        async for delta in s.text_deltas():
                            yield AnswerDelta(delta)
                    step = plan.send(s.response)
        except StopIteration as done:
            yield AnswerDone(done.value)

    async def aanswer(self, question: str, *, history: Sequence[Message] = ()) -> Answer:
        """Async twin of :meth:`answer`."""
        last: AnswerEvent | None = None
        async for last in self._adrive(question, history, stream=False):  # noqa: B007
            pass
        assert isinstance(last, AnswerDone)
        return last.answer

    def astream(self, question: str, *, history: Sequence[Message] = ()) -> AsyncIterator[AnswerEvent]:
        """Async twin of :meth:`stream`."""
        return self._adrive(question, history, stream=True)


def turn(answer: Answer) -> list[Message]:
    """The exchange to keep in a conversation's history: the question and the answer (not the passages)."""
    return [UserMessage(answer.question), AssistantMessage(answer.text)]
