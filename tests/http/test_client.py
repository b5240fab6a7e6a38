"""HttpClient against real loopback servers: pooling, deadlines, caps, errors, streams, secrets."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from aixpy import __version__
from aixpy.errors import (
    AuthenticationError,
    BlockedURLError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    UserError,
)
from aixpy.http import (
    HttpClient,
    HttpConfig,
    RequestEvent,
    Response,
    URLPolicy,
    aiter_ndjson,
    aiter_sse,
    iter_ndjson,
    iter_sse,
    local_policy,
    public_policy,
)

from .conftest import HttpServer

KEY = "sk-proj-SuperSecretValue1234567890"
LOCAL = local_policy(environ={})
LOOPBACK = URLPolicy(name="loopback", schemes={"http"}, allow_loopback=True)


def make(server: HttpServer, **kw: Any) -> HttpClient:
    kw.setdefault("policy", LOCAL)
    kw.setdefault("provider", "test")
    return HttpClient(HttpConfig(server.url + "/v1", **kw))


def drain(client: HttpClient, path: str, params: dict[str, str], seen: list[bytes] | None = None) -> None:
    """Stream ``path`` and read it to the end, line by line."""
    with client.stream("GET", path, params=params) as r:
        for line in r.iter_lines():
            if seen is not None:
                seen.append(line.encode())


async def adrain(client: HttpClient, path: str, params: dict[str, str]) -> None:
    async with client.astream("GET", path, params=params) as r:
        async for _ in r.aiter_lines():
            pass


# --------------------------------------------------------------------------- pooling and basics


def test_pooling_reuses_one_connection(server: HttpServer) -> None:
    with make(server) as client:
        first = client._sync()
        for i in range(10):
            r = client.request("POST", "/echo", json={"i": i}, params={"q": "1"})
            assert r.json()["path"] == "/v1/echo?q=1"
            assert r.json()["body"] == f'{{"i":{i}}}'
        assert client._sync() is first
    assert server.accepted == 1
    assert len(server.requests) == 10


async def test_pooling_reuses_one_connection_async(server: HttpServer) -> None:
    async with make(server) as client:
        for _ in range(10):
            assert (await client.arequest("GET", "/echo")).json()["label"] == "server"
    assert server.accepted == 1


def test_headers_and_user_agent(server: HttpServer) -> None:
    with make(server, headers={"X-Trace": "t1"}, secret_headers={"Authorization": f"Bearer {KEY}"}) as client:
        h = client.request("GET", "/echo", headers={"X-Call": "c"}).json()["headers"]
    assert h["user-agent"] == f"aixpy/{__version__}"
    assert (h["x-trace"], h["x-call"], h["authorization"]) == ("t1", "c", f"Bearer {KEY}")


def test_closed_client_refuses(server: HttpServer) -> None:
    client = make(server)
    client.request("GET", "/echo")
    client.close()
    with pytest.raises(UserError, match="closed"):
        client.request("GET", "/echo")


# --------------------------------------------------------------------------- the base URL is configuration only


@pytest.mark.parametrize("path", [
    "http://127.0.0.1:1/echo", "https://evil.example/x", "//evil.example/x", "HTTP://localhost/x",
    "javascript:alert(1)", "/../admin", "/v1/%2e%2e/admin", "/a/./b", "/a\\b", "/a b", "/a\r\nHost: evil",
])
def test_absolute_or_escaping_paths_are_refused(server: HttpServer, path: str) -> None:
    with make(server) as client, pytest.raises(BlockedURLError):
        client.request("GET", path)
    assert server.accepted == 0


def test_host_override_and_bad_base_url_are_refused(server: HttpServer) -> None:
    with make(server) as client, pytest.raises(BlockedURLError, match="Host"):
        client.request("GET", "/echo", headers={"Host": "evil.example"})
    with pytest.raises(BlockedURLError, match="not in the allowed hosts"):
        HttpClient(HttpConfig("https://evil.example/v1", policy=public_policy("api.openai.com")))
    with pytest.raises(BlockedURLError, match="metadata"):
        HttpClient(HttpConfig("http://169.254.169.254/", policy=URLPolicy(schemes={"http"})))


# --------------------------------------------------------------------------- timeouts and the total deadline


def test_read_timeout(server: HttpServer) -> None:
    with make(server, read_timeout=0.3) as client:
        t0 = time.monotonic()
        with pytest.raises(ProviderTimeoutError) as info:
            client.request("GET", "/sleep", params={"s": "3"})
    assert time.monotonic() - t0 < 2.0
    assert info.value.retryable
    assert info.value.provider == "test"


def test_total_deadline_beats_a_long_read_timeout(server: HttpServer) -> None:
    with make(server, read_timeout=30, total_timeout=0.5) as client:
        t0 = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            client.request("GET", "/sleep", params={"s": "3"})
    assert time.monotonic() - t0 < 2.0


def test_total_deadline_on_slow_drip_stream(server: HttpServer) -> None:
    """A byte every 50 ms never trips the read timeout; only the total deadline stops it."""
    with make(server, read_timeout=5, total_timeout=0.8) as client:
        t0 = time.monotonic()
        lines: list[bytes] = []
        with pytest.raises(ProviderTimeoutError, match="timeout"):
            drain(client, "/drip", {"n": "400", "delay": "0.05"}, lines)
    elapsed = time.monotonic() - t0
    assert 0.7 < elapsed < 2.5
    assert 3 < len(lines) < 400


def test_total_deadline_on_slow_drip_request(server: HttpServer) -> None:
    with make(server, read_timeout=5, total_timeout=0.6) as client:
        t0 = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            client.request("GET", "/drip", params={"n": "400", "delay": "0.05"})
    assert time.monotonic() - t0 < 2.5


async def test_total_deadline_on_slow_drip_stream_async(server: HttpServer) -> None:
    async with make(server, read_timeout=5, total_timeout=0.8) as client:
        t0 = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            await adrain(client, "/drip", {"n": "400", "delay": "0.05"})
    assert time.monotonic() - t0 < 2.5


def test_per_call_timeout_override(server: HttpServer) -> None:
    with make(server, total_timeout=30) as client:
        t0 = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            client.request("GET", "/sleep", params={"s": "3"}, timeout=0.4)
    assert time.monotonic() - t0 < 2.0


# --------------------------------------------------------------------------- size cap


@pytest.mark.parametrize("route", [{"n": "5000"}, {"n": "5000", "chunked": "1"}])
def test_size_cap(server: HttpServer, route: dict[str, str]) -> None:
    with make(server, max_response_bytes=4096) as client:
        assert len(client.request("GET", "/big", params={"n": "4096"}).content) == 4096
        with pytest.raises(ResponseFormatError, match="4096-byte cap"):
            client.request("GET", "/big", params=route)
        with pytest.raises(ResponseFormatError, match="cap"):
            drain(client, "/big", route)


def test_size_cap_counts_decompressed_bytes(server: HttpServer) -> None:
    with make(server, max_response_bytes=100_000) as client:
        assert len(client.request("GET", "/gzip", params={"n": "50000"}).content) == 50_000
        with pytest.raises(ResponseFormatError, match="cap"):
            client.request("GET", "/gzip", params={"n": "10000000"})  # ~10 KB on the wire, 10 MB inflated


def _assert_decoded_read(r: Response) -> None:
    assert r.content == b"\0" * 5000
    assert r.is_closed
    assert "content-encoding" not in r.headers
    assert r.headers["content-length"] == "5000"
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.request.url.path.endswith("/gzip")
    assert r.elapsed.total_seconds() >= 0
    assert r.http_version == "HTTP/1.1"


def test_a_read_response_holds_the_decoded_body_and_says_so(server: HttpServer) -> None:
    """request() hands back a closed response with the decoded body: the wire-encoding headers go."""
    with make(server) as client:
        _assert_decoded_read(client.request("GET", "/gzip", params={"n": "5000"}))


async def test_a_read_response_holds_the_decoded_body_async(server: HttpServer) -> None:
    async with make(server) as client:
        _assert_decoded_read(await client.arequest("GET", "/gzip", params={"n": "5000"}))


async def test_size_cap_async(server: HttpServer) -> None:
    async with make(server, max_response_bytes=4096) as client:
        with pytest.raises(ResponseFormatError):
            await client.arequest("GET", "/big", params={"n": "5000", "chunked": "1"})
        with pytest.raises(ResponseFormatError):
            await adrain(client, "/big", {"n": "5000", "chunked": "1"})


# --------------------------------------------------------------------------- status mapping


@pytest.mark.parametrize(("status", "error", "retryable"), [
    (400, InvalidRequestError, False), (404, InvalidRequestError, False), (409, InvalidRequestError, False),
    (413, InvalidRequestError, False), (422, InvalidRequestError, False), (401, AuthenticationError, False),
    (403, AuthenticationError, False), (408, ProviderTimeoutError, True), (429, RateLimitError, True),
    (500, ServerError, True), (502, ServerError, True), (503, ServerError, True), (529, ServerError, True),
    (302, ProviderError, False),
])
def test_status_mapping(server: HttpServer, status: int, error: type[ProviderError], retryable: bool) -> None:
    with make(server) as client:
        with pytest.raises(error) as info:
            client.request("POST", f"/status/{status}", json={}, model="m-1", params={"h_Location": "/x"})
        with pytest.raises(error), client.stream("POST", f"/status/{status}", json={}, model="m-1"):
            pytest.fail("the with body must not run")
    e = info.value
    assert type(e) is error
    assert e.retryable is retryable
    assert (e.status_code, e.provider, e.model) == (status, "test", "m-1")
    if status >= 400:
        assert "nope" in str(e)
        assert e.body is not None
        assert "nope" in e.body
    assert "?" not in str(e)  # no query string in messages


def test_retry_after_seconds_and_date(server: HttpServer) -> None:
    with make(server) as client:
        with pytest.raises(RateLimitError) as info:
            client.request("GET", "/status/429", params={"h_Retry-After": "7"})
        assert info.value.retry_after == 7.0
        with pytest.raises(RateLimitError) as info:
            client.request("GET", "/status/429", params={"date": "30"})
        assert info.value.retry_after is not None
        assert 27 <= info.value.retry_after <= 31
        with pytest.raises(RateLimitError) as info:
            client.request("GET", "/status/429", params={"h_retry-after-ms": "1500", "h_Retry-After": "2"})
        assert info.value.retry_after == 1.5
        with pytest.raises(RateLimitError) as info:
            client.request("GET", "/status/429", params={"h_x-ratelimit-reset-requests": "1m30s",
                                                         "h_x-ratelimit-remaining-requests": "0",
                                                         "h_x-ratelimit-reset-tokens": "6m0s"})
        assert info.value.retry_after == 90.0
        with pytest.raises(RateLimitError) as info:
            client.request("GET", "/status/429")
        assert info.value.retry_after is None


def test_connection_refused(refused_port: int) -> None:
    client = HttpClient(HttpConfig(f"http://127.0.0.1:{refused_port}", policy=LOCAL, provider="ollama",
                                   secret_headers={"Authorization": f"Bearer {KEY}"}))
    with client, pytest.raises(ProviderConnectionError) as info:
        client.request("GET", "/api/tags", params={"key": KEY})
    assert info.value.retryable
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)


def test_resolution_failure_is_a_connection_error(server: HttpServer) -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    client = HttpClient(HttpConfig(f"http://ollama:{server.port}", policy=LOCAL, resolver=fail))
    with client, pytest.raises(ProviderConnectionError, match="could not resolve 'ollama'"):
        client.request("GET", "/api/tags")


# --------------------------------------------------------------------------- redirects through HttpClient


def test_redirects_not_followed_by_default(make_server: Callable[..., HttpServer]) -> None:
    front = make_server("127.0.0.1")
    with make(front) as client, pytest.raises(ProviderError, match="unexpected redirect"):
        client.request("GET", "/redirect", params={"to": "/v1/echo"})


def test_followed_redirects_keep_origin_secrets(make_server: Callable[..., HttpServer]) -> None:
    front, other = make_server("127.0.0.2", label="front"), make_server("127.0.0.3", label="other")
    policy = URLPolicy(name="lab", schemes={"http"}, allow_loopback=True)
    secrets = {"x-api-key": KEY, "Authorization": f"Bearer {KEY}"}
    with make(front, policy=policy, follow_redirects=True, secret_headers=secrets) as client:
        same = client.request("GET", "/redirect", params={"to": "/v1/echo"}).json()
        assert same["label"] == "front"
        assert same["headers"]["x-api-key"] == KEY
        moved = client.request("GET", "/redirect", params={"to": f"{other.url}/echo"}).json()
        assert moved["label"] == "other"
        assert "x-api-key" not in moved["headers"]
        assert "authorization" not in moved["headers"]
    strict = URLPolicy(name="front-only", schemes={"http"}, allowed_hosts={"127.0.0.2"}, allow_loopback=True)
    with make(front, policy=strict, follow_redirects=True) as client, pytest.raises(BlockedURLError):
        client.request("GET", "/redirect", params={"to": f"{other.url}/echo"})
    assert other.accepted == 1


# --------------------------------------------------------------------------- SSE and NDJSON


def test_sse_and_ndjson(server: HttpServer) -> None:
    with make(server) as client:
        with client.stream("POST", "/sse", json={"stream": True}) as r:
            events = list(iter_sse(r))
        assert [e.data for e in events] == ['{"n": 0}', '{"n": 1}', '{"n": 2}', "[DONE]"]
        assert events[0].json() == {"n": 0}
        assert events[0].event == "message"
        with client.stream("POST", "/ndjson") as r:
            assert list(iter_ndjson(r)) == [{"n": 0}, {"n": 1}, {"n": 2, "done": True}]
        with pytest.raises(ResponseFormatError, match="NDJSON"), client.stream("GET", "/badjson") as r:
            list(iter_ndjson(r))
        with pytest.raises(ResponseFormatError, match="event"), client.stream("GET", "/ndjson") as r:
            list(iter_sse(r))


async def test_sse_and_ndjson_async(server: HttpServer) -> None:
    async with make(server) as client:
        async with client.astream("POST", "/sse") as r:
            data = [e.data async for e in aiter_sse(r)]
        assert data == ['{"n": 0}', '{"n": 1}', '{"n": 2}', "[DONE]"]
        async with client.astream("POST", "/ndjson") as r:
            assert [x async for x in aiter_ndjson(r)] == [{"n": 0}, {"n": 1}, {"n": 2, "done": True}]
        with pytest.raises(ResponseFormatError):
            async with client.astream("GET", "/ndjson") as r:
                [e async for e in aiter_sse(r)]
    assert server.accepted == 1


# --------------------------------------------------------------------------- secrets, logs, hooks


def test_secrets_never_logged_or_shown(server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aixpy.http")
    config = HttpConfig(server.url, policy=LOCAL, provider="openai", headers={"X-Api-Key": KEY},
                        secret_headers={"Authorization": f"Bearer {KEY}"})
    client = HttpClient(config)
    assert KEY not in repr(config)
    assert "authorization=***" in repr(config).lower()
    assert KEY not in repr(client)
    with client:
        client.request("GET", "/echo", params={"api_key": KEY})
        body = f'{{"error": {{"message": "invalid key {KEY}"}}}}'
        with pytest.raises(AuthenticationError) as info:
            client.request("GET", "/status/401", params={"body": body})
        with pytest.raises(ProviderTimeoutError):
            client.request("GET", "/sleep", params={"s": "2", "token": KEY}, timeout=0.2)
    for text in (caplog.text, str(info.value), repr(info.value), info.value.body or ""):
        assert KEY not in text
        assert "SuperSecret" not in text
    assert "invalid key ***" in str(info.value)
    records = [r for r in caplog.records if r.name == "aixpy.http"]
    assert len(records) == 3
    fields = records[0].aixpy_http  # type: ignore[attr-defined]
    assert fields["path"] == "/echo"
    assert fields["status"] == 200
    assert fields["bytes"] > 0
    assert fields["host"] == f"127.0.0.1:{server.port}"
    assert fields["provider"] == "openai"


def test_hooks_receive_events_and_cannot_break_calls(server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    events: list[RequestEvent] = []

    def broken(event: RequestEvent) -> None:
        raise RuntimeError("instrumentation bug")

    client = HttpClient(HttpConfig(server.url, policy=LOCAL, provider="p"), on_request=[events.append, broken])
    with client:
        client.request("GET", "/echo", model="m")
        with pytest.raises(ServerError):
            client.request("GET", "/status/503")
        with client.stream("GET", "/ndjson") as r:
            list(iter_ndjson(r))
    ok, failed, streamed = events
    assert (ok.provider, ok.model, ok.method, ok.path, ok.status, ok.error) == ("p", "m", "GET", "/echo", 200, None)
    assert ok.bytes > 0
    assert ok.seconds > 0
    assert not ok.stream
    assert (failed.status, failed.error) == (503, "ServerError")
    assert streamed.stream
    assert streamed.bytes > 0
    assert "instrumentation bug" in caplog.text


# --------------------------------------------------------------------------- sync / async parity


SCENARIOS: list[tuple[str, dict[str, Any]]] = [
    ("/echo", {}), ("/status/404", {}), ("/status/429", {"h_Retry-After": "3"}), ("/status/500", {}),
    ("/big", {"n": "9000"}), ("/sleep", {"s": "2"}),
]


def _outcome(result: Any) -> tuple[Any, ...]:
    if isinstance(result, Exception):
        return (type(result).__name__, getattr(result, "status_code", None), getattr(result, "retry_after", None))
    return ("ok", result.status_code, result.json()["path"])


async def test_sync_async_parity(server: HttpServer) -> None:
    config = HttpConfig(server.url, policy=LOCAL, total_timeout=0.5, max_response_bytes=8192)
    sync_results, async_results = [], []
    client = HttpClient(config)
    for path, params in SCENARIOS:
        try:
            sync_results.append(_outcome(client.request("GET", path, params=params)))
        except ProviderError as e:
            sync_results.append(_outcome(e))
        try:
            async_results.append(_outcome(await client.arequest("GET", path, params=params)))
        except ProviderError as e:
            async_results.append(_outcome(e))
    await client.aclose()
    assert sync_results == async_results
    assert [r[0] for r in sync_results] == ["ok", "InvalidRequestError", "RateLimitError", "ServerError",
                                             "ResponseFormatError", "ProviderTimeoutError"]


def test_header_secrets_absent_from_every_logger(server: HttpServer, caplog: pytest.LogCaptureFixture) -> None:
    """httpx and httpcore debug logs included: header values are never written."""
    caplog.set_level(logging.DEBUG)
    client = HttpClient(HttpConfig(server.url, policy=LOCAL, secret_headers={"x-api-key": KEY}))
    with client:
        client.request("POST", "/echo", json={"q": 1})
        with client.stream("GET", "/sse") as r:
            list(iter_sse(r))
        with pytest.raises(ServerError):
            client.request("GET", "/status/500", params={"body": f"echo {KEY}"})
    assert any(r.name == "aixpy.http" for r in caplog.records)
    assert KEY not in caplog.text


def test_per_call_secret_headers_are_scrubbed(server: HttpServer) -> None:
    token = "ya29.PerCallOAuthToken0123456789"  # e.g. a refreshed Vertex access token
    with make(server) as client, pytest.raises(InvalidRequestError) as info:
        client.request("GET", "/status/400", headers={"Authorization": f"Bearer {token}"},
                       params={"body": f'{{"error": "bad token {token}"}}'})
    assert token not in str(info.value)
    assert token not in (info.value.body or "")
