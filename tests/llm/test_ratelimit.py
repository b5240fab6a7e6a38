"""RateLimitedModel on a ManualClock: requests/tokens per minute wait instead of failing, bounded by
the deadline; reservations corrected by the real usage; a 429 goes through the one retry loop."""

from __future__ import annotations

import pytest

from aixpy.errors import RateLimitError
from aixpy.llm import ManualClock, RetryModel, RetryPolicy, StreamEvent, TestModel
from aixpy.llm.policies import FallbackModel, RateLimitedModel
from aixpy.llm.policies.ratelimit import estimate_tokens
from aixpy.llm.types import ChatResponse, Usage
from aixpy.policy.deadline import DeadlineExceededError
from aixpy.policy.ratelimit import RateLimiter


def limited(*script: object, **kw: float) -> tuple[RateLimitedModel, TestModel, ManualClock]:
    clock = ManualClock()
    inner = TestModel(*script, provider="openai", model="gpt-4o", clock=clock)  # type: ignore[arg-type]
    return RateLimitedModel(inner, **kw), inner, clock


def test_requests_per_minute_wait_rather_than_fail() -> None:
    model, inner, clock = limited(requests_per_minute=3)      # the guide's OpenAI free tier
    for _ in range(5):
        model.chat("hi")
    assert len(inner.requests) == 5
    assert clock.sleeps == pytest.approx([20.0, 20.0])        # a minute's burst of 3, then one every 20 s


async def test_requests_per_minute_async() -> None:
    model, _inner, clock = limited(requests_per_minute=60)
    for _ in range(61):
        await model.achat("hi")
    assert [s for s in clock.sleeps if s > 0] == pytest.approx([1.0])


def test_tokens_per_minute_are_reserved_then_corrected_by_the_usage() -> None:
    answer = ChatResponse(text="x", usage=Usage(50_000, 10_000))
    model, _inner, clock = limited(answer, answer, tokens_per_minute=40_000)
    model.chat("short")                       # reserved 2 tokens, spent 60,000: the bucket is 20,000 short
    model.chat("short")
    assert clock.slept == pytest.approx(30.0, rel=0.01)   # 20,000 tokens at 40,000 a minute


def test_a_stream_is_corrected_by_its_usage_event() -> None:
    events = [StreamEvent.text_delta("x"), StreamEvent.usage_update(Usage(10_000, 5_000)), StreamEvent.finish("stop")]
    model, _, clock = limited(events, "ok", tokens_per_minute=10_000)
    with model.stream("q") as s:
        list(s)
    model.chat("q")
    assert clock.slept == pytest.approx(30.0, rel=0.01)


def test_max_tokens_is_part_of_the_reservation() -> None:
    model, _, _ = limited()
    req = model.request("a" * 400, max_tokens=500)
    assert estimate_tokens(req) == 100 + 500


def test_a_wait_beyond_the_deadline_raises_at_once_and_reserves_nothing() -> None:
    model, inner, clock = limited(requests_per_minute=1)
    model.chat("hi")
    with pytest.raises(DeadlineExceededError):
        model.chat("hi", timeout=30)          # the next slot is 60 s away
    assert clock.sleeps == []
    assert len(inner.requests) == 1
    model.chat("hi", timeout=61)              # nothing was reserved by the failed call
    assert clock.sleeps == pytest.approx([60.0])


def test_a_limited_primary_past_the_deadline_falls_back_at_once() -> None:
    clock = ManualClock()
    primary = RateLimitedModel(TestModel("p", provider="openai", model="gpt-4o", clock=clock), requests_per_minute=1)
    model = FallbackModel([primary, TestModel("f", provider="anthropic", model="claude", clock=clock)], clock=clock)
    assert model.chat("hi", timeout=10).text == "p"
    assert model.chat("hi", timeout=10).text == "f"
    assert clock.sleeps == []


def test_a_429_goes_through_the_one_retry_loop_not_the_limiter() -> None:
    clock = ManualClock()
    inner = TestModel(RateLimitError("slow down", retry_after=7.0), "ok", clock=clock)
    limiter = RateLimiter(requests_per_minute=600, clock=clock)
    model = RetryModel(RateLimitedModel(inner, limiter), RetryPolicy(max_attempts=2, jitter=False), clock=clock)
    assert model.chat("hi").text == "ok"
    assert clock.sleeps == pytest.approx([7.0])
    assert len(inner.requests) == 2


async def test_a_cancelled_wait_gives_its_reservation_back() -> None:
    import asyncio

    class Stuck(ManualClock):
        async def asleep(self, seconds: float) -> None:
            await asyncio.Event().wait()

    clock = Stuck()
    limiter = RateLimiter(requests_per_minute=1, clock=clock)
    model = RateLimitedModel(TestModel(clock=clock), limiter)
    await model.achat("hi")
    task = asyncio.create_task(model.achat("hi"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.advance(60)
    assert limiter.reserve(0, model._context(None, None).deadline) == 0.0


# --------------------------------------------------------------------------- config


def test_an_agents_cache_and_rate_limit_blocks_build_the_documented_stack() -> None:
    from aixpy import llm
    from aixpy.llm.policies import CachedModel, RetryModel

    clock = ManualClock()
    model = llm.new({"name": "a", "providers": [{"model": "test:one"}, {"model": "test:two"}],
                     "retry": {"max_attempts": 2}, "cache": {"ttl": "1h"},
                     "rate_limit": {"requests_per_minute": 3, "tokens_per_minute": 40_000}}, clock=clock)
    assert isinstance(model, CachedModel)
    assert isinstance(model.inner, RetryModel)
    chain = model.inner.inner
    assert isinstance(chain, FallbackModel)
    assert all(isinstance(m, RateLimitedModel) for m in chain.models)
    for _ in range(4):
        model.chat("hi")                                   # not deterministic: every call goes to the provider
    assert clock.sleeps == pytest.approx([20.0])
    assert model.chat("hi", temperature=0).cached is False
    assert model.chat("hi", temperature=0).cached is True


def test_config_errors_name_the_file_and_line() -> None:
    import textwrap

    from aixpy.config import load_config_str
    from aixpy.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config_str(textwrap.dedent("""\
            agents:
              - name: a
                model: gpt-4o
                rate_limit:
                  backend: redis
                  requests_per_minute: 3
            """), "cfg.yaml", env={})
    assert info.value.file == "cfg.yaml"
    assert info.value.line == 4
    assert "needs url" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_config_str("agents:\n  - name: a\n    model: gpt-4o\n    cache:\n      ttl: 1h\n      when: sometimes\n",
                        "cfg.yaml", env={})
    assert (info.value.file, info.value.line) == ("cfg.yaml", 6)
