"""Sync and async twins of CachedModel and RateLimitedModel give the same answers, events, hits and waits."""

from __future__ import annotations

from aixpy.llm import ManualClock, StreamEvent, TestModel
from aixpy.llm.policies import CachedModel, RateLimitedModel
from aixpy.llm.types import ChatResponse, Usage

EVENTS = [StreamEvent.text_delta("a"), StreamEvent.text_delta("b"), StreamEvent.usage_update(Usage(900, 300)),
          StreamEvent.finish("stop")]


def stack() -> tuple[CachedModel, ManualClock]:
    clock = ManualClock()
    inner = TestModel(ChatResponse(text="x", usage=Usage(600, 600)), EVENTS, "z", clock=clock)
    return CachedModel(RateLimitedModel(inner, requests_per_minute=2, tokens_per_minute=2000)), clock


async def test_sync_and_async_agree() -> None:
    sync, sclock = stack()
    asyn, aclock = stack()
    s_chat = [sync.chat("q", temperature=0), sync.chat("q", temperature=0)]
    a_chat = [await asyn.achat("q", temperature=0), await asyn.achat("q", temperature=0)]
    with sync.stream("r", temperature=0) as s1:
        s_events = list(s1)
    with sync.stream("r", temperature=0) as s2:
        assert list(s2) == s_events
    async with asyn.astream("r", temperature=0) as a1:
        a_events = [e async for e in a1]
    async with asyn.astream("r", temperature=0) as a2:
        assert [e async for e in a2] == a_events
    assert s_chat == a_chat
    assert [r.cached for r in s_chat] == [False, True]
    assert s_events == a_events
    assert (s1.response, s2.response) == (a1.response, a2.response)
    assert sync.chat("t").text == (await asyn.achat("t")).text == "z"
    assert [s for s in sclock.sleeps if s > 0] == [s for s in aclock.sleeps if s > 0]
    assert sclock.slept > 0
    assert sync.stats() == asyn.stats()
