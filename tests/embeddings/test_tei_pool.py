"""The TEI endpoint pool: selection, ejection, re-probing, failover (pure) and with three real loopback servers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from aixpy.config.embeddings import TEIEmbeddingsConfig
from aixpy.embeddings._tei_pool import EndpointPool
from aixpy.embeddings.tei import TEIEmbeddings
from aixpy.errors import InvalidInputError, ProviderConnectionError, RateLimitError, ServerError

from ._hf_tei import DIMS, TEIFake, tei_vectors
from ._servers import LoopbackServer, Reply


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(n: int = 3, **kw: object) -> EndpointPool[str]:
    urls = [f"http://user:pw@tei-{i}:8080/?key=k" for i in range(n)]
    return EndpointPool.of(urls, [f"c{i}" for i in range(n)], **kw)


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# --------------------------------------------------------------------------- pure bookkeeping


def test_round_robin_rotates() -> None:
    p = pool(selection="round_robin")
    order = []
    for _ in range(6):
        pick = p.pick()
        assert pick is not None
        assert not pick.probe
        order.append(pick.endpoint.index)
        p.done(pick.endpoint)
    assert order == [0, 1, 2, 0, 1, 2]


def test_least_outstanding_prefers_the_idle_endpoint() -> None:
    p = pool(selection="least_outstanding")
    a, b = p.pick(), p.pick()
    assert a is not None
    assert b is not None
    p.done(a.endpoint)  # 0 is idle again, 1 busy, 2 idle
    c, d = p.pick(), p.pick()
    assert c is not None
    assert d is not None
    assert {c.endpoint.index, d.endpoint.index} == {0, 2}
    e = p.pick()
    assert e is not None
    assert e.endpoint.outstanding == 2


def test_exclude_skips_tried_endpoints() -> None:
    p = pool()
    pick = p.pick(exclude={0, 1})
    assert pick is not None
    assert pick.endpoint.index == 2
    assert p.pick(exclude={0, 1, 2}) is None


def test_ejection_cooldown_and_probe() -> None:
    clock = Clock()
    p = pool(eject_after=2, cooldown=30, clock=clock)
    ep = p.endpoints[1]
    for _ in range(2):
        ep.outstanding += 1
        p.done(ep, ServerError("boom"))
    assert ep.ejected
    picked = Counter()
    for _ in range(6):
        pick = p.pick()
        assert pick is not None
        picked[pick.endpoint.index] += 1
        p.done(pick.endpoint)
    assert picked[1] == 0
    assert picked[0] == picked[2] == 3
    # all others busy-excluded: the ejected one is not used before its cool-down
    assert p.pick(exclude={0, 2}) is None
    clock.now += 31
    probe = p.pick(exclude={0, 2})
    assert probe is not None
    assert probe.probe
    assert probe.endpoint is ep
    assert p.pick(exclude={0, 2}) is None  # one prober at a time
    p.probed(ep, ok=False, error="connect refused")
    assert ep.ejected
    assert ep.outstanding == 0
    clock.now += 31
    probe = p.pick(exclude={0, 2})
    assert probe is not None
    assert probe.probe
    p.probed(ep, ok=True)
    p.done(ep)
    assert not ep.ejected
    assert ep.failures == 0


def test_rate_limits_do_not_eject_and_success_resets() -> None:
    p = pool(eject_after=2)
    ep = p.endpoints[0]
    for err in (ServerError("x"), RateLimitError("busy"), RateLimitError("busy")):
        ep.outstanding += 1
        p.done(ep, err, counts=not isinstance(err, RateLimitError))
    assert not ep.ejected
    assert ep.failures == 1
    ep.outstanding += 1
    p.done(ep)
    assert ep.failures == 0


def test_unavailable_names_every_endpoint_without_secrets() -> None:
    clock = Clock()
    p = pool(eject_after=1, cooldown=30, clock=clock, provider="huggingface_tei")
    p.endpoints[2].outstanding += 1
    p.done(p.endpoints[2], ServerError("HTTP 500"))
    err = p.unavailable([(p.endpoints[0], ProviderConnectionError("refused")),
                         (p.endpoints[1], ServerError("HTTP 503"))])
    text = str(err)
    assert isinstance(err, ProviderConnectionError)
    assert err.retryable
    for i in range(3):
        assert f"tei-{i}:8080" in text
    assert "refused" in text
    assert "HTTP 503" in text
    assert "ejected after 1 consecutive failures" in text
    assert "pw" not in text
    assert "key=k" not in text


def test_bad_settings_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        EndpointPool([], selection="round_robin")
    with pytest.raises(InvalidInputError):
        pool(selection="random")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- three loopback servers


@pytest.fixture
def three() -> Iterator[tuple[list[LoopbackServer], list[TEIFake]]]:
    servers = [LoopbackServer() for _ in range(3)]
    fakes = [TEIFake(max_client_batch_size=64) for _ in range(3)]
    for s, f in zip(servers, fakes, strict=True):
        s.handler = f
    try:
        yield servers, fakes
    finally:
        for s in servers:
            s.close()


def make(servers: list[LoopbackServer], clock: Clock | None = None, **over: object) -> TEIEmbeddings:
    cfg = TEIEmbeddingsConfig(**{"endpoint": [s.url for s in servers], "dimensions": DIMS, "model": "m",
                                 "batch_size": 64, **over})  # type: ignore[arg-type]
    return TEIEmbeddings(cfg, environ={}, clock=clock or Clock())


@pytest.mark.parametrize("selection", ["round_robin", "least_outstanding"])
def test_traffic_is_spread(three: tuple[list[LoopbackServer], list[TEIFake]], selection: str) -> None:
    servers, fakes = three
    with make(servers, selection=selection, max_concurrency=3) as svc:
        texts = [f"t{i}" for i in range(64 * 9)]
        assert np.allclose(svc.embed_array(texts), unit(tei_vectors(texts)), atol=1e-6)
    counts = [f.embedded for f in fakes]
    assert sum(counts) == len(texts)
    assert min(counts) >= 64


def test_failed_sub_batch_is_resent_and_endpoint_ejected(
        three: tuple[list[LoopbackServer], list[TEIFake]]) -> None:
    servers, fakes = three
    clock = Clock()
    fakes[1].fail_embed = Reply.error(500, {"error": "backend crashed"})
    with make(servers, clock, selection="round_robin", eject_after=2, eject_cooldown=30) as svc:
        texts = [f"t{i}" for i in range(64 * 6)]
        assert np.allclose(svc.embed_array(texts), unit(tei_vectors(texts)), atol=1e-6)
        status = svc.pool_status()
        assert status[1]["healthy"] is False
        assert status[1]["failures"] == 2
        assert fakes[0].embedded + fakes[2].embedded == len(texts)
        servers[1].take()
        svc.embed_array(texts)
        assert servers[1].take() == []  # ejected: no traffic during the cool-down
        fakes[1].fail_embed = None
        clock.now += 31
        svc.embed_array(texts)
        paths = [r.path for r in servers[1].take()]
        assert paths[0] == "/health"
        assert "/embed" in paths
        assert svc.pool_status()[1]["healthy"] is True


def test_all_endpoints_down_names_them(three: tuple[list[LoopbackServer], list[TEIFake]]) -> None:
    servers, fakes = three
    key = "tei-pool-secret-123456"
    with make(servers, api_key=key) as svc:
        for f in fakes:
            f.fail_embed = Reply.error(503, {"error": "Unhealthy", "error_type": "Unhealthy"})
        with pytest.raises(ProviderConnectionError) as info:
            svc.embed_batch(["a", "b"])
    text = str(info.value)
    assert text.startswith("all 3 TEI endpoints failed")
    assert all(s.url in text for s in servers)
    assert key not in text
    assert isinstance(info.value.__cause__, ServerError)


def test_4xx_is_not_resent(three: tuple[list[LoopbackServer], list[TEIFake]]) -> None:
    servers, fakes = three
    for f in fakes:
        f.fail_embed = Reply.error(422, {"error": "input too long", "error_type": "Validation"})
    with make(servers) as svc, pytest.raises(Exception, match="input too long"):
        svc.embed("x")
    assert sum(len(s.take()) for s in servers) == 1


def test_10k_texts_one_endpoint_dies_midway(three: tuple[list[LoopbackServer], list[TEIFake]]) -> None:
    """10k texts, 3 endpoints, one dies after a few requests: every vector arrives, in order."""
    servers, fakes = three
    victim = fakes[1]
    calls = {"n": 0}
    inner = servers[1].handler
    assert inner is not None

    def dying(rec):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 10:
            victim.dead = True
        return inner(rec)

    servers[1].handler = dying
    texts = [f"document {i} about topic {i % 97}" for i in range(10_000)]
    with make(servers, max_concurrency=8, batch_size=64, selection="least_outstanding") as svc:
        out = svc.embed_array(texts)
        status = svc.pool_status()
    assert out.shape == (10_000, DIMS)
    assert np.allclose(out, unit(tei_vectors(texts)), atol=1e-6)
    assert victim.dead
    assert status[1]["healthy"] is False
    assert fakes[0].embedded + fakes[1].embedded + fakes[2].embedded >= 10_000


async def test_async_failover(three: tuple[list[LoopbackServer], list[TEIFake]]) -> None:
    servers, fakes = three
    fakes[0].dead = True
    svc = make(servers, max_concurrency=4, eject_after=1)  # the first pick goes to endpoint 0
    texts = [f"t{i}" for i in range(64 * 8)]
    try:
        assert np.allclose(await svc.aembed_array(texts), unit(tei_vectors(texts)), atol=1e-6)
        assert svc.pool_status()[0]["healthy"] is False
    finally:
        await svc.aclose()
