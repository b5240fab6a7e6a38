"""``BudgetedModel`` over a real SQLite ledger: usage recorded by day/provider/model/agent, budgets that
stop the call that would cross them before any request (sync, async, streams, concurrent threads), per
agent or global, the daily cost alert (log, callback, webhook through the guarded client) firing once."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aixpy.errors import BudgetExceededError, RateLimitError
from aixpy.llm import TestModel
from aixpy.llm.policies import Budget, BudgetedModel, CostAlert
from aixpy.llm.policies.budget import IMAGE_TOKENS, estimate_prompt_tokens
from aixpy.llm.types import ChatRequest, ImagePart, TextPart, UserMessage
from aixpy.telemetry.ledger import GLOBAL, SQLiteLedger, agent_scope
from tests._services.loopback_http import LoopbackHTTPServer, Reply

DAY1 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
PRICE_IN, PRICE_OUT = 0.15 / 1e6, 0.60 / 1e6  # gpt-4o-mini


class Clock:
    def __init__(self, t: float = DAY1) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[SQLiteLedger]:
    led = SQLiteLedger(tmp_path / "usage.sqlite3", now=clock)
    yield led
    led.close()


def gpt(*script: object) -> TestModel:
    return TestModel(*script, provider="openai", model="gpt-4o-mini")  # type: ignore[arg-type]


def test_every_call_is_recorded_by_day_provider_model_and_agent(ledger: SQLiteLedger, clock: Clock) -> None:
    model = BudgetedModel(gpt("one two three"), ledger, agent="support")
    reply = model.chat("a b c d")            # TestModel counts words: 4 in, 3 out
    model.chat("a b")
    clock.t += 86400
    model.chat("x")
    rows = ledger.rows("2027-01-15")
    assert [(r.day, r.provider, r.model, r.agent, r.calls, r.input_tokens, r.output_tokens) for r in rows] == [
        ("2027-01-15", "openai", "gpt-4o-mini", "support", 2, 6, 4),
        ("2027-01-16", "openai", "gpt-4o-mini", "support", 1, 1, 1)]
    assert rows[0].cost_usd == pytest.approx(6 * PRICE_IN + 4 * PRICE_OUT)
    assert reply.cost_usd == pytest.approx(4 * PRICE_IN + 3 * PRICE_OUT)
    day1 = ledger.totals(GLOBAL, "2027-01-15")
    assert (day1.tokens, day1.reserved_tokens) == (10, 0)
    assert ledger.totals(agent_scope("support"), "2027-01-15").tokens == 10


def test_unknown_price_is_an_unpriced_call_not_free(ledger: SQLiteLedger) -> None:
    BudgetedModel(TestModel("hi", provider="test", model="mystery"), ledger).chat("x")
    (row,) = ledger.rows("2027-01-01")
    assert (row.calls, row.unpriced_calls, row.cost_usd, row.agent) == (1, 1, 0.0, "")


def test_token_budget_stops_the_call_that_would_cross_it_before_sending(ledger: SQLiteLedger) -> None:
    inner = gpt()
    # each call: prompt "a b c d" = ceil(7/4)+4 = 6 tokens estimated, + max_tokens 10 reserved = 16
    model = BudgetedModel(inner, ledger, Budget(daily_token_limit=40))
    # actual per call: 4 in + 1 out ("ok") = 5; used 0, 5, ..., 20 (+ 16 <= 40), then 25 + 16 > 40
    served, e = serve_until_refused(lambda _: model.chat("a b c d", max_tokens=10))
    assert served == 5
    assert (e.limit, e.scope, e.day, e.used, e.requested, e.allowed) == (
        "daily_token_limit", GLOBAL, "2027-01-15", 25.0, 16.0, 40.0)
    assert len(inner.requests) == 5  # the refused call never reached the model
    assert "not sent" in str(e)
    t = ledger.totals()
    assert (t.tokens, t.reserved_tokens) == (25, 0)


def serve_until_refused(call: Callable[[int], object], most: int = 50) -> tuple[int, BudgetExceededError]:
    """How many calls were served before the first refusal, and that refusal."""
    for i in range(most):
        try:
            call(i)
        except BudgetExceededError as e:
            return i, e
    raise AssertionError(f"no call was refused in {most}")


def test_reservations_make_concurrent_calls_respect_the_budget(ledger: SQLiteLedger) -> None:
    release = threading.Event()
    inner = gpt()
    original = inner._chat

    def slow(req: ChatRequest, ctx: object) -> object:
        release.wait(5)
        return original(req, ctx)  # type: ignore[arg-type]

    inner._chat = slow  # type: ignore[method-assign,assignment]
    model = BudgetedModel(inner, ledger, Budget(daily_token_limit=50))  # each call reserves 5 + 10 = 15
    results: list[str] = []

    def call() -> None:
        try:
            model.chat("a", max_tokens=10)
            results.append("ok")
        except BudgetExceededError:
            results.append("refused")

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for _ in range(200):  # three are in flight holding 45 tokens; the other three are refused at once
        if results.count("refused") == 3:
            break
        threading.Event().wait(0.01)
    assert results.count("refused") == 3
    release.set()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 3
    assert len(inner.requests) == 3
    assert ledger.totals().reserved_tokens == 0


def test_cost_limit_and_a_failed_call_is_not_charged(ledger: SQLiteLedger) -> None:
    inner = gpt(RateLimitError("slow down", provider="openai"))
    # estimate: 5 prompt + max_tokens output at gpt-4o-mini prices: 0.00060075 $ for 1000, 0.00120075 for 2000
    model = BudgetedModel(inner, ledger, Budget(daily_cost_limit=0.0012))
    with pytest.raises(RateLimitError):
        model.chat("a", max_tokens=1000)
    assert ledger.totals().tokens == 0
    assert ledger.totals().reserved_cost == 0
    model.chat("a", max_tokens=1000)
    with pytest.raises(BudgetExceededError) as info:
        model.chat("a", max_tokens=2000)
    assert info.value.limit == "daily_cost_limit"
    assert info.value.requested == pytest.approx(0.00120075)
    assert info.value.used == pytest.approx(PRICE_IN + PRICE_OUT)   # the served call's actual cost
    assert len(inner.requests) == 2


def test_agent_scope_counts_only_that_agent_and_the_next_day_starts_fresh(ledger: SQLiteLedger,
                                                                          clock: Clock) -> None:
    budget = Budget(daily_token_limit=20, scope="agent")
    a = BudgetedModel(gpt(), ledger, budget, agent="a")
    b = BudgetedModel(gpt(), ledger, budget, agent="b")
    for _ in range(3):                   # each reserves 5 + 10 = 15 and uses 2: a at 0, 2, 4 (+15 <= 20)
        a.chat("x", max_tokens=10)
    b.chat("x", max_tokens=10)
    with pytest.raises(BudgetExceededError) as info:
        a.chat("x", max_tokens=10)       # a: 6 + 15 > 20
    assert (info.value.scope, info.value.used) == ("agent:a", 6.0)
    assert ledger.totals().tokens == 8   # the global total holds both agents
    b.chat("x", max_tokens=10)           # b has its own budget
    clock.t += 86400
    a.chat("x", max_tokens=10)
    with pytest.raises(ValueError, match="agent"):
        BudgetedModel(gpt(), ledger, budget)


def test_a_stream_is_checked_before_it_sends_and_settled_with_its_usage(ledger: SQLiteLedger) -> None:
    inner = gpt("alpha beta")
    model = BudgetedModel(inner, ledger, Budget(daily_token_limit=30))
    with model.stream("a b", max_tokens=10) as s:   # reserves 5 + 10 = 15
        assert "".join(s.text_deltas()) == "alpha beta"
    t = ledger.totals()
    assert (t.tokens, t.reserved_tokens) == (4, 0)
    with pytest.raises(BudgetExceededError), model.stream("a b", max_tokens=22) as s:   # 4 + 5 + 22 > 30
        list(s)
    assert len(inner.requests) == 1


def test_a_stream_stopped_early_is_charged_its_estimate(ledger: SQLiteLedger) -> None:
    model = BudgetedModel(gpt(["one ", "two ", "three"]), ledger, Budget(daily_token_limit=100))
    with model.stream("a", max_tokens=7) as s:
        next(iter(s))
    t = ledger.totals()
    assert (t.tokens, t.reserved_tokens) == (5 + 7, 0)


async def test_async_twins_reserve_and_settle_the_same(ledger: SQLiteLedger) -> None:
    inner = gpt()
    model = BudgetedModel(inner, ledger, Budget(daily_token_limit=32))
    await model.achat("a b c d", max_tokens=10)
    async with model.astream("a b c d", max_tokens=10) as s:
        await s.get_response()
    assert ledger.totals().tokens == 10
    with pytest.raises(BudgetExceededError):
        await model.achat("a b c d", max_tokens=20)
    assert len(inner.requests) == 2
    assert ledger.totals().reserved_tokens == 0


def test_prompt_estimate_counts_text_tools_and_images() -> None:
    req = ChatRequest(model="m", messages=[UserMessage([TextPart("x" * 40), ImagePart.from_url("https://e/i.png")])])
    assert estimate_prompt_tokens(req) == 10 + 4 + IMAGE_TOKENS


def test_cost_alert_fires_once_per_day_with_log_callback_and_webhook(ledger: SQLiteLedger, clock: Clock,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    got: list[CostAlert] = []
    with LoopbackHTTPServer(reply=Reply(b"{}")) as hook:
        budget = Budget(cost_alert_threshold=0.000002, on_alert=got.append, alert_webhook=hook.url + "/alerts")
        model = BudgetedModel(gpt(*["one two three four five"] * 3), ledger, budget)
        # a second wrapper (another process would do the same) shares the ledger's once-per-day marker
        other = BudgetedModel(gpt("one two three four five"), ledger, budget)
        with caplog.at_level(logging.WARNING, "aixpy.llm.budget"):
            model.chat("a")            # 1 in + 5 out = 0.00000315 $ > threshold
            model.chat("a")
            other.chat("a")
        assert len(got) == 1
        assert (got[0].day, got[0].threshold) == ("2027-01-15", 0.000002)
        assert got[0].cost_usd == pytest.approx(PRICE_IN + 5 * PRICE_OUT)
        assert [r.levelname for r in caplog.records if "cost alert" in r.getMessage()] == ["WARNING"]
        rec = _wait_one(hook)
        assert rec.method == "POST"
        assert rec.path == "/alerts"
        assert rec.json["alert"] == "cost_alert_threshold"
        assert rec.json["day"] == "2027-01-15"
        clock.t += 86400
        model.chat("a")
        assert len(got) == 2
        assert got[1].day == "2027-01-16"
        _wait_one(hook)


def _wait_one(hook: LoopbackHTTPServer) -> Any:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = hook.take()
        if got:
            assert len(got) == 1
            return got[0]
        time.sleep(0.02)
    raise AssertionError("the webhook was not called")


def test_a_webhook_to_a_metadata_address_is_refused_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    from aixpy.llm.policies.budget import post_alert

    with caplog.at_level(logging.WARNING, "aixpy.llm.budget"):
        post_alert("http://169.254.169.254/latest", CostAlert("2027-01-15", 2.0, 1.0))
    assert any("BlockedURLError" in r.getMessage() for r in caplog.records)


def test_budget_model_sync_and_async_record_the_same(tmp_path: Path, clock: Clock) -> None:
    a = SQLiteLedger(tmp_path / "a.sqlite3", now=clock)
    b = SQLiteLedger(tmp_path / "b.sqlite3", now=clock)
    BudgetedModel(gpt("x y"), a, agent="p").chat("q r s")
    asyncio.run(BudgetedModel(gpt("x y"), b, agent="p").achat("q r s"))
    assert a.rows("2027-01-15") == b.rows("2027-01-15")
    a.close()
    b.close()


def test_an_answer_from_the_response_cache_below_is_not_charged(ledger: SQLiteLedger) -> None:
    from aixpy.llm.policies import CachedModel, MemoryResponseCache

    inner = gpt("one two three")
    model = BudgetedModel(CachedModel(inner, MemoryResponseCache(), when="always"), ledger)
    first = model.chat("a b c d")
    again = model.chat("a b c d")
    assert (first.cached, again.cached, len(inner.requests)) == (False, True, 1)
    (row,) = ledger.rows("2027-01-15")
    assert (row.calls, row.input_tokens, row.output_tokens) == (1, 4, 3)  # the hit sent nothing: no charge
    assert ledger.totals().reserved_tokens == 0
