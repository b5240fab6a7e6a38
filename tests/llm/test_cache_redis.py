"""CachedModel on a real redis-server: shared between models (as between processes), TTL via EX,
stream replay, password never shown, Redis down means uncached rather than failed."""

from __future__ import annotations

import pytest

from aixpy.errors import StoreError
from aixpy.llm import StreamEvent, TestModel
from aixpy.llm.policies import CachedModel, RedisResponseCache
from aixpy.llm.types import Usage
from tests._services._proc import free_port
from tests._services.redis import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]


def test_two_models_share_answers_through_redis(redis_url: str, redis_prefix: str) -> None:
    a_inner, b_inner = TestModel("from a", provider="openai", model="gpt-4o"), TestModel("from b", provider="openai",
                                                                                          model="gpt-4o")
    a = CachedModel(a_inner, RedisResponseCache(redis_url, prefix=redis_prefix))
    b = CachedModel(b_inner, RedisResponseCache(redis_url, prefix=redis_prefix))
    assert a.chat("q", temperature=0).text == "from a"
    hit = b.chat("q", temperature=0)
    assert (hit.text, hit.cached, hit.cost_usd, len(b_inner.requests)) == ("from a", True, 0.0, 0)
    a.close()
    b.close()


async def test_stream_replay_and_ttl_through_redis(redis_url: str, redis_prefix: str) -> None:
    import redis

    events = [StreamEvent.text_delta("a"), StreamEvent.text_delta("b"), StreamEvent.usage_update(Usage(2, 2)),
              StreamEvent.finish("stop")]
    inner = TestModel(events)
    model = CachedModel(inner, RedisResponseCache(redis_url, prefix=redis_prefix, ttl=3600))
    async with model.astream("q", temperature=0) as s:
        first = [e async for e in s]
    async with model.astream("q", temperature=0) as s2:
        assert [e async for e in s2] == first
    assert s2.response.cached
    assert len(inner.requests) == 1
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(redis_prefix + "*")
    assert len(keys) == 1
    assert 3590 < client.ttl(keys[0]) <= 3600
    client.close()
    await model.aclose()


def test_redis_down_calls_uncached_and_hides_the_password() -> None:
    url = f"redis://:s3cretpassw0rd@127.0.0.1:{free_port()}/0"
    inner = TestModel("a", "b")
    model = CachedModel(inner, RedisResponseCache(url, socket_timeout=0.2))
    assert model.chat("q", temperature=0).text == "a"
    assert model.chat("q", temperature=0).text == "b"
    assert model.stats()["errors"] == 4                    # 2 lookups + 2 writes
    assert "s3cretpassw0rd" not in repr(model)
    assert "***" in repr(model)
    strict = CachedModel(TestModel(), RedisResponseCache(url, socket_timeout=0.2, strict=True))
    with pytest.raises(StoreError) as e:
        strict.chat("q", temperature=0)
    assert "s3cretpassw0rd" not in str(e.value)
