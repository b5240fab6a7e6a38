"""``BudgetedModel``: records every call in a usage ledger, enforces daily budgets *before* a call is
sent, and raises a cost alert once per day.

::

    from aixpy.llm.policies import Budget, BudgetedModel
    from aixpy.telemetry.ledger import SQLiteLedger

    model = BudgetedModel(llm.new("openai:gpt-4o-mini"), SQLiteLedger(), agent="support",
                          budget=Budget(daily_token_limit=1_000_000, daily_cost_limit=20.0,
                                        cost_alert_threshold=10.0))
    model.chat("hi")        # BudgetExceededError, no request made, once today's budget would be crossed

The estimate and the rule (why a budget is never crossed by a call it lets through)
    Before a call, its tokens are *estimated*: the prompt at one token per 4 characters of text
    (messages, tool-call arguments, tool schemas, a response schema) + 4 per message +
    :data:`IMAGE_TOKENS` per image, plus the output it may produce: the request's ``max_tokens``, else
    ``Budget.default_output_tokens``. Its cost estimate is that usage priced at the model's list price
    (0 when the price is unknown: a cost limit cannot stop what it cannot price; the token limit still
    can). The ledger then *reserves* the estimate atomically, only if for every limit
    ``used + reserved + estimate <= limit`` — so concurrent calls, in threads, processes or (with the
    Redis ledger) replicas, cannot all slip under the same remaining budget. A call that would cross it
    raises :class:`~aixpy.errors.BudgetExceededError` and is never sent. After the call the reservation is
    released and the *actual* usage recorded (tokens and cost the provider reported). A call with no
    reported usage (a stream stopped early, a server that reports none) is charged its estimate; a call
    that failed is charged nothing. With ``max_tokens`` set the budget is exact up to the prompt estimate;
    without it, a reply longer than ``default_output_tokens`` can end the day slightly over, and then
    every later call is refused.

Scope: ``scope="global"`` counts every call of the ledger's day; ``scope="agent"`` counts only this
wrapper's ``agent`` (every call is recorded under both).

Alert: when the day's total cost (global) passes ``cost_alert_threshold``, the first process to see it
(the ledger decides, so it fires once per day across processes) logs a WARNING, calls ``on_alert`` and
posts ``{"alert": "cost_alert_threshold", ...}`` to ``alert_webhook`` through the SSRF-guarded
:class:`~aixpy.http.HttpClient` (in a background thread; a failure is logged, never raised).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing, closing
from dataclasses import asdict, dataclass
from typing import Literal
from urllib.parse import urlsplit

from aixpy.errors import BudgetExceededError
from aixpy.llm.model import CallContext, ChatModel, finalize
from aixpy.llm.pricing import cost_of
from aixpy.llm.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ImagePart,
    StreamEvent,
    TextPart,
    Usage,
    UserMessage,
)
from aixpy.telemetry.ledger import (
    GLOBAL,
    Limit,
    Refusal,
    Reservation,
    Totals,
    UsageLedger,
    UsageRecord,
    agent_scope,
)

__all__ = ["IMAGE_TOKENS", "Budget", "BudgetedModel", "CostAlert", "estimate_prompt_tokens"]

logger = logging.getLogger("aixpy.llm.budget")

IMAGE_TOKENS = 1000
"""Tokens reserved per image of a prompt (a high-detail image costs ~765-1600 tokens on most providers)."""


@dataclass(frozen=True, slots=True)
class CostAlert:
    """What an alert says: the UTC day, its cost so far and the threshold it passed."""

    day: str
    cost_usd: float
    threshold: float
    alert: str = "cost_alert_threshold"


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits and alerts of a :class:`BudgetedModel` (every field optional; ``None``: no such limit)."""

    daily_token_limit: int | None = None
    daily_cost_limit: float | None = None
    scope: Literal["global", "agent"] = "global"
    default_output_tokens: int = 1024
    cost_alert_threshold: float | None = None
    alert_webhook: str | None = None
    on_alert: Callable[[CostAlert], None] | None = None

    @property
    def limited(self) -> bool:
        return self.daily_token_limit is not None or self.daily_cost_limit is not None


def estimate_prompt_tokens(req: ChatRequest) -> int:
    """The prompt's token estimate (see the module docstring): no tokenizer, deliberately generous."""
    chars, images = 0, 0
    for m in req.messages:
        content = m.content
        if isinstance(m, UserMessage) and not isinstance(content, str):
            for part in m.parts():
                if isinstance(part, TextPart):
                    chars += len(part.text)
                elif isinstance(part, ImagePart):
                    images += 1
        elif isinstance(content, str):
            chars += len(content)
        if isinstance(m, AssistantMessage):
            for call in m.tool_calls:
                chars += len(call.name) + len(json.dumps(call.arguments, default=str))
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters, default=str))
    if req.response_format is not None:
        chars += len(json.dumps(asdict(req.response_format), default=str))
    return math.ceil(chars / 4) + 4 * len(req.messages) + IMAGE_TOKENS * images


class BudgetedModel(ChatModel):
    """Wraps ``inner`` (a provider or a retry/fallback stack): every call is recorded in ``ledger``
    under ``agent``; ``budget`` adds daily limits (checked before sending) and the cost alert.

    Put it *outside* the retry loop: one reservation covers every attempt of a call.
    """

    def __init__(self, inner: ChatModel, ledger: UsageLedger, budget: Budget | None = None, *,
                 agent: str | None = None) -> None:
        super().__init__(provider=inner.provider, model=inner.model, capabilities=inner.capabilities,
                         timeout=inner.timeout, clock=inner.clock)
        self.inner = inner
        self.ledger = ledger
        self.budget = budget or Budget()
        self.agent = agent or ""
        b = self.budget
        if b.scope == "agent" and not self.agent and b.limited:
            raise ValueError("a budget with scope='agent' needs the agent's name (agent=...)")
        scope = agent_scope(self.agent) if b.scope == "agent" else GLOBAL
        limits = []
        if b.daily_token_limit is not None:
            limits.append(Limit(scope, "tokens", float(b.daily_token_limit), "daily_token_limit"))
        if b.daily_cost_limit is not None:
            limits.append(Limit(scope, "cost", float(b.daily_cost_limit), "daily_cost_limit"))
        self._limits = tuple(limits)

    def __repr__(self) -> str:
        return f"BudgetedModel({self.inner!r}, agent={self.agent!r})"

    # ------------------------------------------------------------------ shared decisions (no I/O but the ledger)

    def _begin(self, req: ChatRequest) -> _Held:
        """Estimate the call and, when a limit applies, reserve it (or raise: nothing is sent)."""
        tokens = estimate_prompt_tokens(req)
        output = req.max_tokens or self.budget.default_output_tokens
        held = _Held(tokens, output)
        if not self._limits:
            return held
        cost = cost_of(self.model, Usage(input_tokens=tokens, output_tokens=output), provider=self.provider).usd or 0.0
        scopes = (GLOBAL, agent_scope(self.agent)) if self.agent else (GLOBAL,)
        got = self.ledger.reserve(scopes, tokens + output, cost, self._limits)
        if isinstance(got, Refusal):
            raise BudgetExceededError(limit=got.limit.name, scope=got.limit.scope, day=got.day, used=got.used,
                                      requested=got.requested, allowed=got.limit.value)
        held.reservation = got
        return held

    def _end(self, held: _Held, ctx: CallContext, usage: Usage | None, model: str, *, charged: bool) -> None:
        """Release the reservation and record what the call used (``charged``: it was served). An answer
        from a response cache below (``ctx.cached``) sent nothing: it is not charged."""
        record = None
        charged = charged and not ctx.cached
        if charged:
            if usage is None:  # unknown: charge the estimate
                usage = Usage(input_tokens=held.prompt, output_tokens=held.output)
            model = model or ctx.model or self.model
            cost = finalize(ChatResponse(usage=usage, model=model), ctx, 0.0).cost_usd
            record = UsageRecord(provider=ctx.provider or self.inner.provider, model=model, agent=self.agent,
                                 input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                 cached_tokens=usage.cached_input_tokens, cost_usd=cost)
        try:
            day = held.reservation.day if held.reservation is not None else self.ledger.today()
            totals = self.ledger.settle(held.reservation, record, day)
        except Exception:
            logger.warning("could not record usage in %r", self.ledger, exc_info=True)
            return
        if record is not None:
            self._check_alert(totals, day)

    def _check_alert(self, totals: Totals, day: str) -> None:
        threshold = self.budget.cost_alert_threshold
        if threshold is None or totals.cost_usd <= threshold:
            return
        if not self.ledger.first_alert("cost_alert_threshold", day):
            return
        alert = CostAlert(day=day, cost_usd=totals.cost_usd, threshold=threshold)
        logger.warning("daily LLM cost alert: %g USD spent on %s (UTC) passed cost_alert_threshold %g USD",
                       alert.cost_usd, day, threshold)
        if self.budget.on_alert is not None:
            try:
                self.budget.on_alert(alert)
            except Exception:
                logger.warning("the cost alert callback failed", exc_info=True)
        if self.budget.alert_webhook:
            threading.Thread(target=post_alert, args=(self.budget.alert_webhook, alert), daemon=True,
                             name="aixpy-cost-alert").start()

    def _served(self, held: _Held, ctx: CallContext, resp: ChatResponse) -> ChatResponse:
        self._end(held, ctx, resp.usage, resp.model, charged=True)
        return resp

    # ------------------------------------------------------------------ async

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        held = await asyncio.to_thread(self._begin, req)
        try:
            resp = await self.inner._achat(req, ctx)
        except BaseException:
            await asyncio.to_thread(self._end, held, ctx, None, "", charged=False)
            raise
        return await asyncio.to_thread(self._served, held, ctx, resp)

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        held = await asyncio.to_thread(self._begin, req)
        watch = _Watch()
        try:
            async with aclosing(self.inner._astream(req, ctx)) as events:
                async for event in events:
                    watch.saw(event)
                    yield event
        except BaseException as e:
            await asyncio.to_thread(self._end, held, ctx, watch.usage, watch.model, charged=watch.charged(e))
            raise
        await asyncio.to_thread(self._end, held, ctx, watch.usage, watch.model, charged=True)

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.inner._alist_models(ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()

    # ------------------------------------------------------------------ sync

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        held = self._begin(req)
        try:
            resp = self.inner._chat(req, ctx)
        except BaseException:
            self._end(held, ctx, None, "", charged=False)
            raise
        return self._served(held, ctx, resp)

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        held = self._begin(req)  # on the first next(): before the inner stream sends anything
        watch = _Watch()
        try:
            with closing(self.inner._stream(req, ctx)) as events:
                for event in events:
                    watch.saw(event)
                    yield event
        except BaseException as e:
            self._end(held, ctx, watch.usage, watch.model, charged=watch.charged(e))
            raise
        self._end(held, ctx, watch.usage, watch.model, charged=True)

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.inner._list_models(ctx)

    def close(self) -> None:
        self.inner.close()


class _Held:
    __slots__ = ("output", "prompt", "reservation")

    def __init__(self, prompt: int, output: int) -> None:
        self.prompt, self.output = prompt, output
        self.reservation: Reservation | None = None


class _Watch:
    """The usage and model a stream reported so far."""

    __slots__ = ("delivered", "model", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.model = ""
        self.delivered = 0

    def saw(self, event: StreamEvent) -> None:
        self.delivered += 1
        if event.kind == "usage":
            self.usage = event.usage
        if event.model and not self.model:
            self.model = event.model

    def charged(self, e: BaseException) -> bool:
        """A stream the caller stopped (GeneratorExit) was served as far as it went; a failed one was not,
        unless the provider already reported its usage."""
        return (isinstance(e, GeneratorExit | asyncio.CancelledError) and self.delivered > 0) or self.usage is not None


def post_alert(url: str, alert: CostAlert, *, timeout: float = 10.0) -> None:
    """POST ``alert`` as JSON to ``url`` through the SSRF-guarded HTTP client (loopback and private hosts
    get the local policy, any other host https + public addresses only); failures are logged."""
    from aixpy.http import HttpClient, HttpConfig, endpoint_target

    try:
        base, policy = endpoint_target(url, url, (), key="observability.cost_alert_webhook")
        parts = urlsplit(base)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        with HttpClient(HttpConfig(base_url=f"{parts.scheme}://{parts.netloc}", policy=policy,
                                   provider="cost-alert")) as client:
            client.request("POST", path, json=asdict(alert), timeout=timeout)
    except Exception as e:
        logger.warning("could not post the cost alert to its webhook: %s: %s", type(e).__name__, e)
