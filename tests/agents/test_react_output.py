"""The text ReAct protocol (strict parsing, chosen per model) and structured output (native, final tool,
ReAct; validation with retry), plus ``ChatResponse.parse``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from aixpy.agents import Agent, Limits
from aixpy.agents._react import ReactAction, ReactFinal, parse
from aixpy.errors import OutputValidationError, ResponseFormatError, ToolRetriesExceededError
from aixpy.llm import Capabilities, ChatResponse, TestModel, ToolMessage, UserMessage

from ._scripts import calls

TEXT_ONLY = Capabilities(streaming=True, tools=False, json_schema=False)
NO_SCHEMA = Capabilities(streaming=True, tools=True, json_schema=False)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class City(BaseModel):
    name: str
    population: int


# --------------------------------------------------------------------------- ReAct


def test_parse_action_and_final_answer() -> None:
    assert parse('Thought: add them\nAction: add\nAction Input: {"a": 1, "b": 2}', ["add"]) == ReactAction(
        "add", {"a": 1, "b": 2}, "add them")
    assert parse("Thought: done\nFinal Answer: 3\nand more", ["add"]) == ReactFinal("3\nand more", "done")
    assert parse('Thought: x\nAction: add\nAction Input: {"a": 1, "b": 2}\nObservation:', ["add"]).tool == "add"


@pytest.mark.parametrize(("text", "problem"), [
    ("Final Answer: 3", "must start with one 'Thought:'"),
    ("Thought: a\nThought: b\nFinal Answer: 3", "must start with one 'Thought:'"),
    ("Thought: a\nAction: add\nAction Input: {}\nFinal Answer: 3", "exactly one 'Action:' or one 'Final Answer:'"),
    ("Thought: a\nAction: mul\nAction Input: {}", "unknown tool 'mul'"),
    ("Thought: a\nAction: add\nAction Input: {a: 1}", "not valid JSON"),
    ("Thought: a\nAction: add\nAction Input: [1, 2]", "must be a JSON object"),
    ('Thought: a\nAction: add\nAction Input: {"a": 1} trailing', "nothing after it"),
    ('Thought: a\nAction: add\nAction Input: {"a": 1}\nObservation: 3', "do not write 'Observation:'"),
    ("Thought: a\nAction: add", "'Action:' then 'Action Input:'"),
    ("Thought: just chatting", "exactly one 'Action:' or one 'Final Answer:'"),
])
def test_parse_is_strict(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse(text, ["add"])


def test_a_model_without_native_tools_runs_react_with_observations() -> None:
    model = TestModel("Thought: I must add.\nAction: add\nAction Input: {\"a\": 2, \"b\": 3}\nObservation:",
                      "Thought: I know.\nFinal Answer: five", capabilities=TEXT_ONLY)
    agent = Agent("a", "Be exact.", model, tools=[add])
    assert agent.uses_react
    result = agent.run("2+3?")
    assert result.text == "five"
    first, second = model.requests
    assert first.tools == []
    assert first.stop == ["\nObservation:"]
    system = first.messages[0].content
    assert system.startswith("Be exact.\n\n")
    assert "- add: Add two integers." in system
    assert second.messages[-1] == UserMessage("Observation: 5")
    assert second.messages[-2].content == 'Thought: I must add.\nAction: add\nAction Input: {"a": 2, "b": 3}'
    step = result.steps[0]
    assert step.tool_calls[0].name == "add"
    assert step.tool_results[0].content == "5"


def test_malformed_react_replies_are_sent_back_then_bounded() -> None:
    model = TestModel("I think it is 5", "Thought: ok\nFinal Answer: 5", capabilities=TEXT_ONLY)
    result = Agent("a", "", model, tools=[add]).run("2+3?")
    assert result.text == "5"
    sent = model.requests[1].messages[-1]
    assert isinstance(sent, UserMessage)
    assert str(sent.content).startswith("Observation: error: the reply must start")

    bad = TestModel(default="no format at all", capabilities=TEXT_ONLY)
    with pytest.raises(ToolRetriesExceededError) as info:
        Agent("a", "", bad, tools=[add], limits=Limits(max_tool_errors=2)).run("?")
    assert info.value.tool == "react"
    assert len(bad.requests) == 3


def test_native_models_do_not_get_react() -> None:
    assert not Agent("a", "", TestModel(), tools=[add]).uses_react


# --------------------------------------------------------------------------- structured output


def test_native_structured_output_with_response_format() -> None:
    model = TestModel('{"name": "Paris", "population": 2100000}')
    result = Agent("a", "", model, output_type=City).run("Biggest French city?")
    assert result.output == City(name="Paris", population=2100000)
    fmt = model.requests[0].response_format
    assert fmt is not None
    assert fmt.type == "json_schema"
    assert fmt.name == "City"
    assert fmt.strict


def test_a_failed_validation_is_sent_back_once_per_retry() -> None:
    model = TestModel('{"name": "Paris"}', '{"name": "Paris", "population": 2}')
    result = asyncio.run(Agent("a", "", model, output_type=City).arun("?"))
    assert result.output == City(name="Paris", population=2)
    retry = model.requests[1].messages[-1]
    assert "population: Field required" in str(retry.content)

    never = TestModel('{"name": "Paris"}', "not json", default=None)
    with pytest.raises(OutputValidationError) as info:
        Agent("a", "", never, output_type=City, limits=Limits(output_retries=1)).run("?")
    assert "not valid JSON" in str(info.value)
    assert info.value.result.requests == 2


def test_final_result_tool_when_the_model_has_no_native_structured_output() -> None:
    model = TestModel(calls(("f1", "final_result", {"name": "Rome"})),
                      calls(("f2", "final_result", {"name": "Rome", "population": 2800000})),
                      capabilities=NO_SCHEMA)
    result = Agent("a", "", model, tools=[add], output_type=City).run("?")
    assert result.output == City(name="Rome", population=2800000)
    first = model.requests[0]
    assert first.response_format is None
    assert [t.name for t in first.tools] == ["add", "final_result"]
    err = [m for m in model.requests[1].messages if isinstance(m, ToolMessage)]
    assert err[0].is_error
    assert "population: Field required" in err[0].content
    assert isinstance(result.messages[-1], ToolMessage)
    assert result.messages[-1].tool_call_id == "f2"


def test_final_result_tool_is_used_on_models_without_json_schema() -> None:
    model = TestModel(calls(("f", "final_result", {"name": "Oslo", "population": 700000})), capabilities=NO_SCHEMA)
    result = Agent("a", "", model, output_type=City).run("?")
    assert result.output == City(name="Oslo", population=700000)
    assert model.requests[0].response_format is None
    assert model.requests[0].tools[0].name == "final_result"


def test_json_schema_dict_output_and_a_non_object_output_type() -> None:
    schema: dict[str, Any] = {"title": "pair", "type": "object", "additionalProperties": False,
                              "properties": {"x": {"type": "integer"}, "tag": {"enum": ["a", "b"]}},
                              "required": ["x"]}
    model = TestModel('{"x": 1.5}', '{"x": 1, "tag": "c"}', '{"x": 1, "tag": "a"}')
    result = Agent("a", "", model, output_type=schema, limits=Limits(output_retries=2)).run("?")
    assert result.output == {"x": 1, "tag": "a"}
    assert "$.x: expected integer" in str(model.requests[1].messages[-1].content)
    assert "'c' is not one of ['a', 'b']" in str(model.requests[2].messages[-1].content)

    ints = TestModel(calls(("f", "final_result", {"result": [1, 2]})), capabilities=NO_SCHEMA)
    assert Agent("a", "", ints, output_type=list[int]).run("?").output == [1, 2]
    assert ints.requests[0].tools[0].parameters["required"] == ["result"]


def test_react_final_answer_is_validated_against_the_output_type() -> None:
    model = TestModel('Thought: t\nFinal Answer: {"name": "Bern"}',
                      'Thought: t\nFinal Answer: {"name": "Bern", "population": 1}', capabilities=TEXT_ONLY)
    result = Agent("a", "", model, tools=[add], output_type=City).run("?")
    assert result.output == City(name="Bern", population=1)
    assert '"population"' in str(model.requests[0].messages[0].content)  # the schema is in the format prompt
    assert str(model.requests[1].messages[-1].content).startswith("Observation: Your answer was not accepted")


def test_chat_response_parse() -> None:
    resp = ChatResponse(text='{"name": "Lima", "population": 10}', provider="p")
    assert resp.parse(City) == City(name="Lima", population=10)
    assert ChatResponse(text="[1, 2]").parse(list[int]) == [1, 2]
    with pytest.raises(ResponseFormatError, match="not a valid City") as info:
        ChatResponse(text='{"name": 1}', provider="p").parse(City)
    assert info.value.provider == "p"
