"""HTTP requests as telemetry events, on a real loopback server: the public ``on_request`` hooks keep
receiving :class:`aixpy.http.RequestEvent` unchanged, the bridge turns each request into an
:class:`HttpEvent` (no query string, no header, no body), and nothing is built while nobody listens."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aixpy import telemetry
from aixpy.errors import ServerError
from aixpy.http import HttpClient, HttpConfig, RequestEvent, local_policy
from aixpy.http import _client as http_client_module
from aixpy.llm.policies import InstrumentedModel
from aixpy.llm.providers.openai import OpenAIModel
from aixpy.telemetry import HttpBridge, HttpEvent, LLMEvent
from tests.llm.test_provider_server import Reply, ScriptedServer, oa_completion, oa_text_stream

from .conftest import Events, assert_no_content

KEY = "sk-proj-TestKey0123456789abcdefXYZ"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def openai(server: ScriptedServer, hooks: list[object] | None = None) -> OpenAIModel:
    return OpenAIModel("gpt-4o-mini", api_key=KEY, endpoint=server.url + "/v1", environ={},
                       on_request=hooks or [])  # type: ignore[arg-type]


def host_of(server: ScriptedServer) -> str:
    return server.url.split("://", 1)[1]


def test_on_request_hooks_and_http_events_both_see_each_request(server: ScriptedServer, events: Events) -> None:
    seen: list[RequestEvent] = []
    server.push(Reply.json(oa_completion("zebra-otter says hi")))
    with InstrumentedModel(openai(server, [seen.append])) as model:
        reply = model.chat("tell quokka-lynx")
    assert reply.text == "zebra-otter says hi"
    (req,) = seen  # the public hook, unchanged
    assert isinstance(req, RequestEvent)
    assert (req.provider, req.model, req.method, req.host, req.path, req.status, req.error, req.stream) == (
        "openai", "gpt-4o-mini", "POST", host_of(server), "/v1/chat/completions", 200, None, False)
    (h,) = events.of(HttpEvent)
    assert isinstance(h, HttpEvent)
    assert h.kind == "http.request"
    assert (h.provider, h.model, h.method, h.host, h.path, h.status, h.error, h.stream, h.bytes, h.duration) == (
        req.provider, req.model, req.method, req.host, req.path, req.status, req.error, req.stream, req.bytes,
        req.seconds)
    assert h.bytes > 0
    assert h.timestamp > 0
    (call,) = events.of(LLMEvent)
    assert isinstance(call, LLMEvent)
    assert (call.provider, call.model, call.input_tokens, call.output_tokens, call.attempts) == (
        "openai", "gpt-4o-mini-2024-07-18", 10, 5, 1)
    assert events.index(h) < events.index(call)  # the request ends inside the call
    assert_no_content(events, "zebra-otter", "quokka-lynx", KEY)


def test_a_stream_and_a_server_error(server: ScriptedServer, events: Events) -> None:
    server.push(oa_text_stream(["one", " two"]), Reply.json({"error": {"message": "boom"}}, status=500))
    with InstrumentedModel(openai(server)) as model:
        with model.stream("hi") as s:
            assert s.get_response().text == "one two"
        with pytest.raises(ServerError):
            model.chat("hi")
    ok, failed = events.of(HttpEvent)
    assert isinstance(ok, HttpEvent)
    assert isinstance(failed, HttpEvent)
    assert (ok.stream, ok.status, ok.error) == (True, 200, None)
    assert (failed.stream, failed.status, failed.error) == (False, 500, "ServerError")
    stream, chat = events.of(LLMEvent)
    assert isinstance(stream, LLMEvent)
    assert isinstance(chat, LLMEvent)
    assert stream.time_to_first_token is not None
    assert stream.output_tokens == 5
    assert (chat.error, chat.input_tokens) == ("ServerError", None)


def test_the_path_never_carries_the_query(server: ScriptedServer) -> None:
    server.push(Reply.json({"ok": True}))
    got: list[telemetry.Event] = []
    with HttpClient(HttpConfig(server.url, policy=local_policy())) as client:
        assert telemetry.attach_http(client, got.append) == 1
        assert telemetry.attach_http(client) == 1  # one bridge per client, whoever attaches
        assert sum(isinstance(h, HttpBridge) for h in client.on_request) == 1
        client.request("GET", "/v1/items?key=sk-query-secret", params={"token": "another-secret"})
    (h,) = got
    assert isinstance(h, HttpEvent)
    assert (h.method, h.path, h.status, h.provider) == ("GET", "/v1/items", 200, None)
    assert_no_content([h], "sk-query-secret", "another-secret", "key=")


def test_one_bridge_per_client_even_under_two_wrappers(server: ScriptedServer, events: Events) -> None:
    server.push(Reply.json(oa_completion()))
    inner = openai(server)
    mine: list[telemetry.Event] = []
    with InstrumentedModel(InstrumentedModel(inner), on_event=mine.append) as model:
        model.chat("hi")
    assert len(events.of(HttpEvent)) == 1
    assert len(events.of(LLMEvent)) == 2
    assert [e.kind for e in mine] == ["http.request", "llm.call"]


def test_no_request_event_is_built_while_nobody_listens(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("RequestEvent built while nobody listens")

    caplog.set_level(logging.WARNING, logger="aixpy.http")  # DEBUG logging would need the event
    server.push(Reply.json(oa_completion()), Reply.json(oa_completion()))
    with InstrumentedModel(openai(server)) as model:
        bridges = [h for h in model.inner.http.on_request if isinstance(h, HttpBridge)]  # type: ignore[attr-defined]
        assert len(bridges) == 1
        assert not bridges[0].listening
        monkeypatch.setattr(http_client_module, "RequestEvent", forbidden)
        assert model.chat("hi").text == "Hello!"
        monkeypatch.undo()
        got: list[telemetry.Event] = []
        stop = telemetry.subscribe(got.append)
        try:
            assert bridges[0].listening
            model.chat("hi")
        finally:
            stop()
    assert [e.kind for e in got] == ["http.request", "llm.call"]


def test_a_broken_handler_never_breaks_the_request(server: ScriptedServer) -> None:
    def broken(e: telemetry.Event) -> None:
        raise RuntimeError("exporter down")

    server.push(Reply.json(oa_completion()))
    with InstrumentedModel(openai(server), on_event=broken) as model:
        assert model.chat("hi").text == "Hello!"


def test_the_bridge_reaches_every_client_of_a_stack_and_only_those() -> None:
    from aixpy import llm
    from aixpy.config.embeddings import OpenAIEmbeddingsConfig
    from aixpy.embeddings.openai import OpenAIEmbeddings
    from aixpy.embeddings.policies import CachedEmbeddings, FallbackEmbeddings, RetryingEmbeddings

    chain = llm.new({"name": "a", "providers": [{"provider": "openai", "model": "gpt-4o-mini"},
                                                {"provider": "anthropic", "model": "claude-3-5-haiku-latest"}]},
                    environ={"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"})
    with chain:
        assert telemetry.attach_http(chain) == 2
    services = [OpenAIEmbeddings(OpenAIEmbeddingsConfig(api_key="sk-x", model="text-embedding-3-small"))
                for _ in range(2)]
    with CachedEmbeddings(RetryingEmbeddings(FallbackEmbeddings(services))) as stack:
        assert telemetry.attach_http(stack) == 2
    assert telemetry.attach_http({"not": ["aixpy", 1, None]}) == 0
