"""The two ledgers under load: several OS processes incrementing one SQLite file (no lost increment), and
competing for one budget (never more granted than the limit); the same against a real Redis server, and
a BudgetedModel over Redis shared by two wrappers standing in for two replicas."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aixpy.llm import TestModel
from aixpy.llm.policies import Budget, BudgetedModel
from aixpy.telemetry.ledger import GLOBAL, Limit, RedisLedger, Refusal, SQLiteLedger, UsageRecord

from .test_budget import serve_until_refused

PROCS, EACH = 4, 60
DAY = "2027-01-15"

_WORKER = textwrap.dedent("""
    import sys
    from aixpy.telemetry.ledger import GLOBAL, Limit, RedisLedger, Refusal, SQLiteLedger, UsageRecord
    kind, where, prefix, each, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    ledger = SQLiteLedger(where) if kind == "sqlite" else RedisLedger(where, prefix=prefix)
    granted = 0
    for i in range(each):
        limits = [Limit(GLOBAL, "tokens", float(limit), "daily_token_limit")] if limit else []
        got = ledger.reserve([GLOBAL, "agent:w"], 3, 0.5, limits, day="2027-01-15")
        if isinstance(got, Refusal):
            continue
        granted += 1
        ledger.settle(got, UsageRecord("openai", "gpt-4o-mini", "w", 2, 1, 1, 0.25), day="2027-01-15")
    ledger.close()
    print(granted)
""")


def _run_workers(kind: str, where: str, prefix: str = "", limit: int = 0) -> list[int]:
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, kind, where, prefix, str(EACH), str(limit)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(PROCS)]
    done = [(p, *p.communicate(timeout=120)) for p in procs]
    for p, _, stderr in done:
        assert p.returncode == 0, stderr.decode()
    return [int(stdout) for _, stdout, _ in done]


def _check_no_lost_increment(ledger: Any, granted: int) -> None:
    (row,) = ledger.rows(DAY, DAY)
    assert (row.calls, row.input_tokens, row.output_tokens, row.cached_tokens) == (granted, 2 * granted, granted,
                                                                                   granted)
    assert row.cost_usd == pytest.approx(0.25 * granted)
    t = ledger.totals(GLOBAL, DAY)
    assert (t.tokens, t.reserved_tokens) == (3 * granted, 0)
    assert t.cost_usd == pytest.approx(0.25 * granted)
    assert t.reserved_cost == pytest.approx(0.0, abs=1e-9)
    assert ledger.totals("agent:w", DAY).tokens == 3 * granted


def test_sqlite_several_processes_lose_no_increment(tmp_path: Path) -> None:
    path = str(tmp_path / "usage.sqlite3")
    granted = _run_workers("sqlite", path)
    assert granted == [EACH] * PROCS
    with_ledger = SQLiteLedger(path)
    _check_no_lost_increment(with_ledger, PROCS * EACH)
    with_ledger.close()


def test_sqlite_budget_holds_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "usage.sqlite3")
    granted = _run_workers("sqlite", path, limit=300)  # each call reserves 3 and uses 3: exactly 100 calls fit
    assert sum(granted) == 100
    ledger = SQLiteLedger(path)
    _check_no_lost_increment(ledger, 100)
    assert isinstance(ledger.reserve([GLOBAL], 1, 0.0, [Limit(GLOBAL, "tokens", 300.0)], day=DAY), Refusal)
    ledger.close()


def test_redis_several_processes_lose_no_increment_and_budget_holds(redis_url: str, redis_prefix: str) -> None:
    granted = _run_workers("redis", redis_url, redis_prefix)
    assert granted == [EACH] * PROCS
    ledger = RedisLedger(redis_url, prefix=redis_prefix)
    _check_no_lost_increment(ledger, PROCS * EACH)
    ledger.close()
    limited = redis_prefix + "limited:"
    assert sum(_run_workers("redis", redis_url, limited, limit=300)) == 100
    ledger = RedisLedger(redis_url, prefix=limited)
    _check_no_lost_increment(ledger, 100)
    ledger.close()


def test_redis_ledger_alert_marker_and_rows_match_sqlite(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    now = lambda: 1_800_000_000.0  # noqa: E731 - 2027-01-15
    redis_ledger = RedisLedger(redis_url, prefix=redis_prefix, now=now)
    sqlite_ledger = SQLiteLedger(tmp_path / "u.sqlite3", now=now)
    for ledger in (redis_ledger, sqlite_ledger):
        ledger.settle(None, UsageRecord("openai", "gpt-4o", "a", 10, 5, 2, 0.01), DAY)
        ledger.settle(None, UsageRecord("openai", "gpt-4o", "a", 1, 1, 0, None), DAY)
        ledger.settle(None, UsageRecord("anthropic", "claude", "", 3, 4, 0, 0.5), "2027-01-16")
        assert ledger.first_alert("cost_alert_threshold", DAY)
        assert not ledger.first_alert("cost_alert_threshold", DAY)
        assert ledger.first_alert("cost_alert_threshold", "2027-01-16")
        assert ledger.today() == DAY
    assert redis_ledger.rows(DAY, "2027-01-16") == sqlite_ledger.rows(DAY, "2027-01-16")
    assert [r.unpriced_calls for r in redis_ledger.rows(DAY, DAY)] == [1]
    redis_ledger.close()
    sqlite_ledger.close()


def test_budgeted_model_over_redis_is_shared_by_replicas(redis_url: str, redis_prefix: str) -> None:
    budget = Budget(daily_token_limit=40)
    replicas = [TestModel(provider="openai", model="gpt-4o-mini") for _ in range(2)]
    models = [BudgetedModel(m, RedisLedger(redis_url, prefix=redis_prefix), budget) for m in replicas]
    # "a": 5 estimated + 10 reserved; actual 2 per call
    served, _ = serve_until_refused(lambda i: models[i % 2].chat("a", max_tokens=10))
    assert served == 13  # used 0, 2, ..., 24 (+15 <= 40); 26 + 15 > 40
    assert sum(len(m.requests) for m in replicas) == 13
    for m in models:
        m.ledger.close()
