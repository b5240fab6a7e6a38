"""``RateLimitedModel``: stay under a provider's requests and tokens per minute by waiting, not failing.

Limits are per provider/model and come from your plan with the provider; nothing is hard-coded. The
provider integration guide's table, as examples::

    provider   tier          requests/min  tokens/min
    OpenAI     Free          3             40,000
    OpenAI     Paid Tier 1   500           90,000
    Anthropic  Free          5             25,000
    Anthropic  Paid          50            100,000
    Vertex AI  Default       60            60,000

    RateLimitedModel(openai_gpt4o, requests_per_minute=500, tokens_per_minute=90_000)

How it waits
    Each limit is a token bucket holding a minute's worth, refilled continuously
    (:class:`aixpy.policy.ratelimit.RateLimiter`). A call reserves one request and its estimated tokens
    — the prompt's characters / 4 (text, tool definitions, response schema) plus ``max_tokens`` when set
    — and sleeps on the model's clock until the buckets cover them, within the call's deadline: a wait
    that would pass the deadline raises :class:`~aixpy.policy.deadline.DeadlineExceededError` at once,
    reserving nothing (a :class:`~aixpy.llm.policies.FallbackModel` above then moves on to the next
    provider). When the answer's usage arrives, the reservation is corrected to the real input + output
    tokens. A cancelled wait gives its reservation back.

Shared quotas
    Pass a :class:`aixpy.policy.ratelimit_redis.RedisRateLimiter` (``backend: redis`` in config): every
    process using the same Redis and ``name`` draws from one quota, refilled on the Redis server's clock.

The limiter never retries: a provider's 429 (with ``Retry-After``) is an error like any other, handled
by the one retry loop (:class:`~aixpy.llm.policies.RetryModel`). Put this wrapper on each provider,
below retry and fallback, so every request actually sent — retries included — is counted against the
quota of the provider it goes to.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from dataclasses import dataclass

from aixpy.llm.model import CallContext, ChatModel
from aixpy.llm.types import ChatRequest, ChatResponse, StreamEvent, TextPart, Usage
from aixpy.policy.deadline import Clock
from aixpy.policy.ratelimit import Limiter, RateLimiter

__all__ = ["RateLimitedModel", "RateLimits", "estimate_tokens"]


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A provider/model's quota: ``requests_per_minute`` and ``tokens_per_minute`` (``None``: unlimited)."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


def _chars(content: object) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p.text) for p in content if isinstance(p, TextPart))
    return 0


def estimate_tokens(req: ChatRequest, default_max_tokens: int | None = None) -> int:
    """Tokens a request is reserved for before it is sent (see the module docstring)."""
    chars = 0
    for m in req.messages:
        chars += _chars(getattr(m, "content", None))
        for call in getattr(m, "tool_calls", None) or ():
            chars += len(call.arguments_json)
    if req.tools:
        chars += len(json.dumps([[t.name, t.description, t.parameters] for t in req.tools]))
    if req.response_format is not None and req.response_format.schema is not None:
        chars += len(json.dumps(req.response_format.schema))
    output = req.max_tokens if req.max_tokens is not None else default_max_tokens
    return math.ceil(chars / 4) + (output or 0)


def _spent(usage: Usage | None) -> int | None:
    return None if usage is None else usage.input_tokens + usage.output_tokens


class RateLimitedModel(ChatModel):
    """Applies ``limiter`` (or one built from ``requests_per_minute``/``tokens_per_minute``) to ``inner``."""

    def __init__(self, inner: ChatModel, limiter: Limiter | None = None, *,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 clock: Clock | None = None) -> None:
        clock = clock or (limiter.clock if limiter is not None else inner.clock)
        super().__init__(provider=inner.provider, model=inner.model, capabilities=inner.capabilities,
                         timeout=inner.timeout, clock=clock)
        self.inner = inner
        self.limiter: Limiter = limiter or RateLimiter(tokens_per_minute=tokens_per_minute, clock=clock,
                                                       requests_per_minute=requests_per_minute)
        self._max_tokens: int | None = getattr(inner, "max_tokens", None)

    def __repr__(self) -> str:
        return f"RateLimitedModel({self.inner!r}, {self.limiter!r})"

    def _estimate(self, req: ChatRequest) -> int:
        return estimate_tokens(req, self._max_tokens)

    # ------------------------------------------------------------------ sync

    def _acquire(self, tokens: int, ctx: CallContext) -> None:
        wait = self.limiter.reserve(tokens, ctx.deadline)
        if wait > 0:
            self.clock.sleep(wait)

    def _settle(self, reserved: int, usage: Usage | None) -> None:
        spent = _spent(usage)
        if spent is not None and spent != reserved:
            self.limiter.adjust(spent - reserved)

    def _chat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        tokens = self._estimate(req)
        self._acquire(tokens, ctx)
        resp = self.inner._chat(req, ctx)
        self._settle(tokens, resp.usage)
        return resp

    def _stream(self, req: ChatRequest, ctx: CallContext) -> Generator[StreamEvent, None, None]:
        tokens = self._estimate(req)
        self._acquire(tokens, ctx)
        usage: Usage | None = None
        with closing(self.inner._stream(req, ctx)) as events:
            for event in events:
                usage = event.usage if event.kind == "usage" else usage
                yield event
        self._settle(tokens, usage)

    def _list_models(self, ctx: CallContext) -> list[str]:
        return self.inner._list_models(ctx)

    def close(self) -> None:
        self.inner.close()

    # ------------------------------------------------------------------ async

    async def _aacquire(self, tokens: int, ctx: CallContext) -> None:
        wait = await self.limiter.areserve(tokens, ctx.deadline)
        if wait > 0:
            try:
                await self.clock.asleep(wait)
            except BaseException:
                await self.limiter.arefund(tokens)
                raise

    async def _asettle(self, reserved: int, usage: Usage | None) -> None:
        spent = _spent(usage)
        if spent is not None and spent != reserved:
            await self.limiter.aadjust(spent - reserved)

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        tokens = self._estimate(req)
        await self._aacquire(tokens, ctx)
        resp = await self.inner._achat(req, ctx)
        await self._asettle(tokens, resp.usage)
        return resp

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        tokens = self._estimate(req)
        await self._aacquire(tokens, ctx)
        usage: Usage | None = None
        async with aclosing(self.inner._astream(req, ctx)) as events:
            async for event in events:
                usage = event.usage if event.kind == "usage" else usage
                yield event
        await self._asettle(tokens, usage)

    async def _alist_models(self, ctx: CallContext) -> list[str]:
        return await self.inner._alist_models(ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()
