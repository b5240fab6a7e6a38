"""``aixpy ask``: answer a question from the indexed collection, citing the passages."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated, Any

import typer
from rich.text import Text

from aixpy.cli._output import clean, error_line, print_json, styled
from aixpy.errors import UserError

#: Seconds ``aixpy ask`` waits for the answer by default (``--timeout``), retries included.
ASK_TIMEOUT = 120.0


def ask(
    question: Annotated[str, typer.Argument(help="The question ('-' reads stdin).")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="provider:model, e.g. openai:gpt-4o-mini "
                                              "(default: the config's agent).", show_default=False)] = None,
    agent: Annotated[str | None, typer.Option(help="Answer with this agent of the config: its model(s), retry, "
                                              "timeout and prompt (default: the first agent).",
                                              show_default=False)] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (default: "
                                               "$AIXPY_CONFIG, then ./aixpy.yaml).", show_default=False)] = None,
    collection: Annotated[str | None, typer.Option(help="Collection name (default: from config, or "
                                                   "knowledge_base).", show_default=False)] = None,
    store: Annotated[str | None, typer.Option(help="Vector store, overriding vectorstore.provider.",
                                              show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", "-k", help="Passages given to the model.", min=1, max=50)] = 5,
    min_score: Annotated[float | None, typer.Option(help="Passages scoring below this are not relevant; with "
                                                    "none left the model is not asked (default: 0.3, measured "
                                                    "for the local embedding model).", show_default=False)] = None,
    agentic: Annotated[bool, typer.Option("--agentic", help="Let the model call the retrieve tool as often as "
                                          "it needs, instead of one retrieval then one answer.")] = False,
    session: Annotated[str | None, typer.Option(help="Continue this conversation (kept where the config's "
                                                "sessions: block says, else in Redis at "
                                                "$AIXPY_SESSIONS_REDIS_URL, else under ./.aixpy/sessions).",
                                                show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer, citations and passages as "
                                          "JSON.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, max=3600.0, help="Give up after this many seconds (the "
                                           "answer, retries included).")] = ASK_TIMEOUT,
) -> None:
    """Answer a question from the indexed documents with an LLM, citing the passages used: streams the
    answer, then prints the cited sources. Nothing relevant found: says so, without asking the model."""
    from aixpy.agents.ask import AgenticAsker, Asker
    from aixpy.agents.result import Limits
    from aixpy.agents.sessions import default_store
    from aixpy.cli import _errors, _open_checked, err, out
    from aixpy.cli._llm import resolve_model_and_agent
    from aixpy.cli._runtime import resolve
    from aixpy.rag.answer import DEFAULT_MIN_SCORE
    from aixpy.rag.manifest import CHUNKS

    with _errors():
        if question == "-":
            question = sys.stdin.read()
        if not question.strip():
            raise UserError("the question is empty")
        if model and agent:
            raise UserError("--model and --agent both choose the model: pass one")
        rt = resolve(config, store=store)
        llm_model, chosen = resolve_model_and_agent(model, agent, config, {})
        sessions = default_store(rt.sessions) if session is not None else None  # the config's, else the default
        with llm_model, rt.open_embedder() as emb, rt.open_store() as vs, \
                contextlib.closing(sessions) if sessions is not None else contextlib.nullcontext():
            name = rt.collection_name(collection)
            coll = _open_checked(rt, vs, emb, collection, "ask") if name in vs.list_collections() else None
            if coll is None or coll.count(CHUNKS) == 0:
                raise UserError(f"collection {name!r} is empty; run `aixpy index PATH` first")
            cls = AgenticAsker if agentic else Asker
            asker = cls(llm_model, emb, coll, instructions=chosen.prompt if chosen is not None else None,
                        limit=limit, min_score=DEFAULT_MIN_SCORE if min_score is None else min_score,
                        limits=Limits(timeout=timeout), timeout=timeout, sessions=sessions)
            if as_json:
                print_json(out, asker.ask(question, session=session).as_dict())
                return
            answer: Any = None
            streamed = False
            for event in asker.stream(question, session=session):
                if event.kind == "answer_delta":
                    streamed = True
                    out.print(Text(clean(event.text)), end="", soft_wrap=True)
                else:
                    answer = event.answer
    _print_sources(answer, streamed, out, err)


def _print_sources(answer: Any, streamed: bool, out: Any, err: Any) -> None:
    if streamed:
        out.print()
    else:  # nothing relevant was found: the model was not asked (or its reply is not shown)
        out.print(Text(clean(answer.text)), soft_wrap=True)
    if answer.citations:
        out.print(styled(("sources:", "bold")))
        for c in answer.citations:
            out.print(styled(f"  [{c.number}] ", (c.passage.id, "cyan"), (f"  score {c.passage.score:.3f}", "dim")),
                      soft_wrap=True)
    elif answer.grounded:
        err.print(error_line("the answer cites none of the passages", "note:", "yellow"), soft_wrap=True)
    for n in answer.invalid_citations:
        err.print(error_line(f"the answer cites [{n}], which is not among the passages given to the model",
                             "warning:", "yellow"), soft_wrap=True)
    if answer.response is not None:
        from aixpy.cli._llm import _summary

        err.print(styled((_summary(answer.response), "dim")), soft_wrap=True)
