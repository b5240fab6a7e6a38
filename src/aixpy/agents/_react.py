"""The text ReAct protocol, for models without native tool calling (``Capabilities.tools`` false).

The model is told the format in the system prompt and must answer with exactly one of::

    Thought: <reasoning>                     Thought: <reasoning>
    Action: <tool name>                      Final Answer: <the answer>
    Action Input: <one JSON object>

Parsing is strict: the ``Thought:`` line first, exactly one ``Action`` (with a known tool and a JSON
object as input, nothing after it) or ``Final Answer``. Anything else is a malformed reply, sent back
as an ``Observation:`` saying what was wrong. The tool's result goes back as ``Observation: <result>``
in a user turn. ``\\nObservation:`` is a stop sequence, and a reply that still ends with an empty
``Observation:`` (some servers keep the stop text) is accepted without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aixpy.llm.types import ToolSpec

__all__ = ["STOP", "ReactAction", "ReactFinal", "instructions", "observation", "parse"]

STOP = ["\nObservation:"]

_ACTION = re.compile(r"\AThought:(?P<thought>.*?)\nAction:[ \t]*(?P<tool>[^\n]*?)[ \t]*\nAction Input:[ \t]*"
                     r"(?P<input>.*)\Z", re.S)
_FINAL = re.compile(r"\AThought:(?P<thought>.*?)\nFinal Answer:[ \t]*(?P<answer>.*?)\s*\Z", re.S)
_MARKERS = re.compile(r"^(Action|Action Input|Final Answer|Observation|Thought):", re.M)
_FORMAT = ("Answer with 'Thought:' then either 'Action:' and 'Action Input:' (one JSON object), or "
           "'Final Answer:'.")


@dataclass(frozen=True, slots=True)
class ReactAction:
    tool: str
    arguments: dict[str, Any]
    thought: str


@dataclass(frozen=True, slots=True)
class ReactFinal:
    answer: str
    thought: str


def instructions(tools: Sequence[ToolSpec], output_schema: dict[str, Any] | None) -> str:
    """The format explanation appended to the system prompt."""
    listed = "\n".join(f"- {t.name}: {t.description}\n  arguments (JSON schema): {json.dumps(t.parameters)}"
                       for t in tools) or "(none)"
    final = "<the answer>" if output_schema is None else (
        f"<one JSON value matching this schema: {json.dumps(output_schema)}>")
    return ("You can use tools. Reply in exactly one of these two formats and nothing else.\n\n"
            "To use a tool:\nThought: <your reasoning>\nAction: <the tool name>\n"
            "Action Input: <the tool's arguments as one JSON object>\n\n"
            "You then get:\nObservation: <the tool's result>\n\n"
            f"When you know the answer:\nThought: <your reasoning>\nFinal Answer: {final}\n\n"
            f"Tools:\n{listed}")


def observation(text: str) -> str:
    return f"Observation: {text}"


def parse(text: str, tool_names: Sequence[str]) -> ReactAction | ReactFinal:
    """One reply parsed strictly; raises ValueError with a message for the model when malformed."""
    body = text.strip().replace("\r\n", "\n")
    if body.endswith("Observation:"):
        body = body.removesuffix("Observation:").rstrip()
    markers = [m.group(1) for m in _MARKERS.finditer(body)]
    if markers.count("Thought") != 1 or not body.startswith("Thought:"):
        raise ValueError("the reply must start with one 'Thought:' line. " + _FORMAT)
    if "Observation" in markers:
        raise ValueError("do not write 'Observation:' yourself; it comes from the tool. " + _FORMAT)
    if markers.count("Action") + markers.count("Final Answer") != 1:
        raise ValueError("give exactly one 'Action:' or one 'Final Answer:'. " + _FORMAT)
    final = _FINAL.match(body)
    if final is not None:
        if "Action Input" in markers:
            raise ValueError("'Action Input:' without 'Action:'. " + _FORMAT)
        return ReactFinal(final["answer"], final["thought"].strip())
    action = _ACTION.match(body)
    if action is None or markers != ["Thought", "Action", "Action Input"]:
        raise ValueError("an action needs 'Action:' then 'Action Input:' on the next line. " + _FORMAT)
    tool = action["tool"]
    if tool not in tool_names:
        raise ValueError(f"unknown tool {tool!r}; the tools are {list(tool_names)}")
    raw = action["input"].strip()
    try:
        value, end = json.JSONDecoder().raw_decode(raw)
    except ValueError as e:
        raise ValueError(f"'Action Input' is not valid JSON ({e}); give one JSON object") from None
    if raw[end:].strip():
        raise ValueError("'Action Input' must be one JSON object with nothing after it")
    if not isinstance(value, dict):
        raise ValueError(f"'Action Input' must be a JSON object, not a {type(value).__name__}")
    return ReactAction(tool, value, action["thought"].strip())
