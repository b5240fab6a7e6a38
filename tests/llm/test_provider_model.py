"""The ChatModel base: prompt building, the stream contract, post-processing, the sync bridge for
async-only models, and the public in-memory models (TestModel, FunctionModel)."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

import pytest
from pydantic import BaseModel

from aixpy.errors import InvalidInputError, ProviderConnectionError, ServerError, UserError
from aixpy.http import RequestEvent
from aixpy.llm import (
    AssistantMessage,
    Capabilities,
    ChatModel,
    ChatRequest,
    ChatResponse,
    FunctionModel,
    ManualClock,
    StreamEvent,
    StreamInterruptedError,
    SystemMessage,
    TestModel,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)
from aixpy.llm.deadline import DeadlineExceededError
from aixpy.llm.model import CallContext, EventNormalizer, build_request
from aixpy.llm.providers.openai_compatible import OpenAICompatibleModel

from .test_provider_server import Reply, ScriptedServer, collect, oa_completion

# --------------------------------------------------------------------------- building requests


class Answer(BaseModel):
    value: int


def test_a_plain_string_with_options() -> None:
    req = build_request("Hi", "m", system="Be brief.", temperature=0.1, stop="END", seed=7)
    assert req.messages == [SystemMessage("Be brief."), UserMessage("Hi")]
    assert (req.model, req.temperature, req.stop, req.seed) == ("m", 0.1, ["END"], 7)


def test_messages_as_dicts_and_dataclasses() -> None:
    call = ToolCall("c1", "f", {"x": 1})
    req = build_request([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                         AssistantMessage(None, [call]), {"role": "tool", "content": "42", "tool_call_id": "c1"}], "m")
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[3] == ToolMessage("42", "c1")
    with pytest.raises(InvalidInputError, match="role"):
        build_request([{"role": "robot", "content": "x"}], "m")
    with pytest.raises(InvalidInputError, match=r"messages\[0\]"):
        build_request([{"role": "user", "text": "x"}], "m")
    with pytest.raises(InvalidInputError):
        build_request([], "m")


def test_response_format_shorthands() -> None:
    rf = build_request("x", "m", response_format="json_object").response_format
    assert rf is not None
    assert rf.type == "json_object"
    rf = build_request("x", "m", response_format={"title": "Thing", "type": "object"}).response_format
    assert rf is not None
    assert (rf.type, rf.name) == ("json_schema", "Thing")
    rf = build_request("x", "m", response_format=Answer).response_format
    assert rf is not None
    assert rf.name == "Answer"
    assert rf.schema is not None
    assert "value" in rf.schema["properties"]
    with pytest.raises(InvalidInputError, match="response_format"):
        build_request("x", "m", response_format=3)  # type: ignore[arg-type]


def test_an_existing_request_passes_through_with_overrides() -> None:
    req = ChatRequest("m", [UserMessage("x")])
    assert build_request(req, "other") is req
    changed = build_request(req, "other", temperature=0.5, system="S")
    assert changed.temperature == 0.5
    assert changed.messages[0] == SystemMessage("S")
    with pytest.raises(InvalidInputError, match="unknown chat option"):
        build_request("x", "m", temprature=1)  # type: ignore[call-arg]


def test_model_request_shows_what_would_be_sent() -> None:
    model = TestModel(model="tm")
    assert model.request("hi", max_tokens=3).max_tokens == 3
    assert model.request("hi").model == "tm"


# --------------------------------------------------------------------------- stream contract


def test_normalizer_defers_usage_and_finish_to_the_end() -> None:
    norm = EventNormalizer("p")
    fed = [StreamEvent.usage_update(Usage(1, 0)), StreamEvent.text_delta("a"), StreamEvent.finish("stop"),
           StreamEvent.usage_update(Usage(1, 2))]
    passed = [e for e in (norm.feed(e) for e in fed) if e is not None]
    assert [e.kind for e in passed] == ["text"]
    usage, finish = norm.tail()
    assert usage.usage == Usage(1, 2)
    assert finish.finish_reason == "stop"


def test_normalizer_without_finish_means_a_cut_stream() -> None:
    norm = EventNormalizer("p", "m")
    norm.feed(StreamEvent.text_delta("a"))
    with pytest.raises(ProviderConnectionError, match="cut short"):
        norm.tail()
    norm.feed(StreamEvent.finish("stop"))
    usage, _ = norm.tail()
    assert usage.kind == "usage"
    assert usage.usage is None  # the provider reported none: said so, never invented


def test_stream_response_needs_the_end_and_close_is_idempotent() -> None:
    model = TestModel("one two three")
    s = model.stream("x")
    next(iter(s))
    with pytest.raises(UserError, match="end"):
        _ = s.response
    s.close()
    s.close()
    assert list(s) == []


def test_a_bare_model_reports_a_mid_stream_failure_clearly() -> None:
    model = TestModel(["a", ServerError("boom")], [ServerError("before")])
    seen: list[StreamEvent] = []
    with pytest.raises(StreamInterruptedError) as info:
        collect(model.stream("x"), seen)
    assert [e.text for e in seen] == ["a"]
    assert info.value.provider == "test"
    with pytest.raises(ServerError):  # nothing delivered yet: the error itself
        collect(model.stream("x"), [])


def test_deadline_already_passed() -> None:
    model = TestModel(clock=ManualClock())
    with pytest.raises(DeadlineExceededError):
        model.chat("x", timeout=0)


def test_capabilities() -> None:
    model = TestModel(capabilities=Capabilities(tools=False, json_schema=True, vision=False))
    assert (model.supports_tools, model.supports_json_schema, model.supports_vision) == (False, True, False)


# --------------------------------------------------------------------------- async-only subclasses


class AsyncOnly(ChatModel):
    """A third-party model implementing only the async core."""

    def __init__(self) -> None:
        super().__init__(provider="third", model="party")
        self.threads: set[str] = set()

    async def _achat(self, req: ChatRequest, ctx: CallContext) -> ChatResponse:
        ctx.serving(self.provider, self.model)
        self.threads.add(threading.current_thread().name)
        return ChatResponse(text="async answer")

    async def _astream(self, req: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        ctx.serving(self.provider, self.model)
        self.threads.add(threading.current_thread().name)
        yield StreamEvent.text_delta("x")
        yield StreamEvent("usage")
        yield StreamEvent.finish("stop")


def test_sync_calls_on_an_async_only_model_share_one_bridge_loop() -> None:
    model = AsyncOnly()
    assert model.chat("a").text == "async answer"
    assert model.chat("b").provider == "third"
    with model.stream("c") as s:
        assert s.get_response().text == "x"
    assert model.threads == {"aixpy-sync-bridge"}
    with pytest.raises(UserError, match="cannot list"):
        model.list_models()


# --------------------------------------------------------------------------- TestModel and FunctionModel


def test_test_model_script_and_records() -> None:
    answer = ChatResponse(text="scripted", usage=Usage(3, 1))
    model = TestModel("first", answer, default=None)
    assert model.chat("one").text == "first"
    assert model.chat("two").text == "scripted"
    assert [r.messages[-1] for r in model.requests] == [UserMessage("one"), UserMessage("two")]
    assert model.last_request.messages[-1] == UserMessage("two")
    with pytest.raises(UserError, match="exhausted"):
        model.chat("three")
    model.push("more")
    assert model.chat("four").text == "more"
    assert model.list_models() == ["test"]


def test_test_model_streams_tool_calls_like_a_provider() -> None:
    calls = [ToolCall("c1", "f", {"a": [1, 2]}), ToolCall("c2", "g", {})]
    model = TestModel(ChatResponse(tool_calls=calls, finish_reason="tool_calls", usage=Usage(5, 5)))
    with model.stream("x") as s:
        events = list(s)
    assert s.response.tool_calls == calls
    assert [e.kind for e in events][-2:] == ["usage", "finish"]


def test_function_model_sync_and_async() -> None:
    model = FunctionModel(lambda req: f"echo {len(req.messages)}")
    assert model.chat("x").text == "echo 1"
    assert model.requests[0].messages == [UserMessage("x")]

    async def answer(req: ChatRequest) -> str:
        return "async"

    amodel = FunctionModel(answer)
    with pytest.raises(UserError, match="async"):
        amodel.chat("x")


async def test_function_model_async_function_and_streams() -> None:
    async def answer(req: ChatRequest) -> ChatResponse:
        return ChatResponse(text="from async")

    assert (await FunctionModel(answer).achat("x")).text == "from async"

    def words(req: ChatRequest) -> Iterator[str]:
        yield "a"
        yield "b"

    async def awords(req: ChatRequest) -> AsyncIterator[str | StreamEvent]:
        yield "c"
        yield StreamEvent.finish("length")

    with FunctionModel(stream_fn=words).stream("x") as s:
        assert s.get_response().text == "ab"
    async with FunctionModel(stream_fn=awords).astream("x") as a:
        reply = await a.get_response()
    assert (reply.text, reply.finish_reason) == ("c", "length")
    assert (await FunctionModel(stream_fn=words).achat("x")).text == "ab"
    with pytest.raises(InvalidInputError):
        FunctionModel()
    with pytest.raises(InvalidInputError, match="return a str"):
        FunctionModel(lambda req: 3).chat("x")  # type: ignore[arg-type, return-value]


# --------------------------------------------------------------------------- HTTP hooks


def test_metrics_hook_sees_each_request() -> None:
    seen: list[RequestEvent] = []
    with ScriptedServer(Reply.json(oa_completion("hi"))) as server, \
            OpenAICompatibleModel("m", endpoint=server.url + "/v1", on_request=[seen.append]) as model:
        model.chat("x")
    assert len(seen) == 1
    assert (seen[0].provider, seen[0].model, seen[0].status, seen[0].path) == (
        "openai_compatible", "m", 200, "/v1/chat/completions")
