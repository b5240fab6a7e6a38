"""The server side of the OpenAI wire is the mirror of the client codec: what aixpy's OpenAI codec sends
parses back to the same request, and the chunks the gateway writes fold back to the same answer."""

from __future__ import annotations

import pytest

from aixpy.llm.codecs import openai_chat as codec
from aixpy.llm.model import build_request
from aixpy.llm.testing import response_events
from aixpy.llm.types import (
    AssistantMessage,
    ChatResponse,
    ResponseFormat,
    StreamEvent,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
    fold_stream,
)
from aixpy.serve import _openai_wire as wire

TOOLS = [ToolSpec(name="lookup", description="find a thing",
                  parameters={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})]
MESSAGES = [SystemMessage("be brief"), UserMessage("hi"),
            AssistantMessage("", tool_calls=[ToolCall(id="call_1", name="lookup", arguments={"q": "x"})]),
            ToolMessage(content="42", tool_call_id="call_1")]


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_built_by_the_client_codec_parses_back_to_the_same_request(stream: bool) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    req = build_request(MESSAGES, "gpt-4o-mini", tools=TOOLS, tool_choice="auto", temperature=0.0, top_p=0.5,
                        max_tokens=50, stop=["END"], seed=7, response_format=ResponseFormat.json_schema("ans", schema))
    call = wire.parse_chat(codec.build_request(req, stream=stream))
    assert (call.model, call.stream, call.include_usage) == ("gpt-4o-mini", stream, stream)
    assert build_request(call.messages, call.model, **call.options) == req


def test_the_gateways_chunks_fold_back_to_the_same_answer() -> None:
    resp = ChatResponse(text="the answer is 42", finish_reason="tool_calls", usage=Usage(11, 7), model="m",
                        tool_calls=[ToolCall(id="call_9", name="lookup", arguments={"q": "x y"})])
    writer = wire.ChunkWriter(id="c1", created=1, model="m", include_usage=True)
    out = writer.start() + b"".join(b for e in response_events(resp) if (b := writer.feed(e))) + writer.end()
    assert out.endswith(b"data: [DONE]\n\n")
    parser = codec.StreamParser()
    events: list[StreamEvent] = []
    for block in out.decode().split("\n\n"):
        if block.strip():
            events += parser.feed(block.removeprefix("data: "))
    events += parser.end()
    got = fold_stream(events)
    assert (got.text, got.finish_reason, got.usage) == (resp.text, "tool_calls", resp.usage)
    assert [(c.id, c.name, c.arguments) for c in got.tool_calls] == [("call_9", "lookup", {"q": "x y"})]


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "extra_headers"])
def test_fields_that_would_redirect_or_authenticate_a_provider_are_refused(field: str) -> None:
    with pytest.raises(wire.WireError, match=field):
        wire.parse_chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], field: "x"})
