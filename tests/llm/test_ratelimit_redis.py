"""RedisRateLimiter: two processes sharing a real redis-server draw from one quota (their own sleeps
go to a ManualClock, so the test measures the waits Redis hands out instead of sleeping them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aixpy.llm import ManualClock, TestModel
from aixpy.llm.policies import RateLimitedModel
from aixpy.policy.deadline import DeadlineExceededError
from aixpy.policy.ratelimit_redis import RedisRateLimiter
from tests._services._proc import free_port
from tests._services.redis import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]

WORKER = textwrap.dedent("""
    import json, sys
    from aixpy.llm import ManualClock, TestModel
    from aixpy.llm.policies import RateLimitedModel
    from aixpy.policy.ratelimit_redis import RedisRateLimiter

    url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    clock = ManualClock()
    limiter = RedisRateLimiter(url, name="openai:gpt-4o", prefix=prefix, requests_per_minute=6, clock=clock)
    model = RateLimitedModel(TestModel(clock=clock), limiter)
    for _ in range(n):
        model.chat("hi")
    print(json.dumps(clock.sleeps))
""")


def test_two_processes_stay_under_one_shared_quota(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path("src").resolve()), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(script), redis_url, redis_prefix, "6"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    waits = sorted(w for out, _ in outs for w in json.loads(out))
    # 12 requests at 6 a minute: 6 at once (a minute's burst), then one every 10 s — whichever process sends
    assert len(waits) == 6
    assert waits == pytest.approx([10, 20, 30, 40, 50, 60], abs=1.0)


def test_the_deadline_bounds_a_shared_wait(redis_url: str, redis_prefix: str) -> None:
    clock = ManualClock()
    limiter = RedisRateLimiter(redis_url, name="anthropic:claude", prefix=redis_prefix, requests_per_minute=5,
                               tokens_per_minute=25_000, clock=clock)
    model = RateLimitedModel(TestModel(clock=clock), limiter)
    for _ in range(5):
        model.chat("hi")
    with pytest.raises(DeadlineExceededError):
        model.chat("hi", timeout=5)               # the next request is ~12 s away
    assert clock.sleeps == []
    model.chat("hi", timeout=13)                  # nothing was reserved by the refused call
    assert clock.sleeps == pytest.approx([12.0], abs=0.5)
    limiter.close()


async def test_async_calls_share_the_same_buckets(redis_url: str, redis_prefix: str) -> None:
    clock = ManualClock()
    a = RedisRateLimiter(redis_url, name="m", prefix=redis_prefix, requests_per_minute=2, clock=clock)
    b = RedisRateLimiter(redis_url, name="m", prefix=redis_prefix, requests_per_minute=2, clock=clock)
    await RateLimitedModel(TestModel(clock=clock), a).achat("x")
    RateLimitedModel(TestModel(clock=clock), b).chat("x")
    await RateLimitedModel(TestModel(clock=clock), a).achat("x")
    assert [s for s in clock.sleeps if s > 0] == pytest.approx([30.0], abs=0.5)
    await a.aclose()
    b.close()


def test_redis_down_sends_unlimited_and_hides_the_password() -> None:
    url = f"redis://:s3cretpassw0rd@127.0.0.1:{free_port()}/0"
    limiter = RedisRateLimiter(url, name="m", requests_per_minute=1, socket_timeout=0.2)
    model = RateLimitedModel(TestModel(), limiter)
    assert model.chat("a").text == model.chat("b").text == "ok"
    assert limiter.stats()["errors"] == 4           # per call: the reservation and its correction by the usage
    assert "s3cretpassw0rd" not in repr(model)
