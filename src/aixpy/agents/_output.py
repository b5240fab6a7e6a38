"""The agent's output type: a pydantic model (or any type pydantic validates) or a JSON schema dict.

A model class is validated by pydantic. A schema dict is checked by :func:`check_schema`, which covers the
keywords structured output uses (``type``, ``properties``, ``required``, ``additionalProperties``,
``items``, ``enum``, ``const``, ``anyOf``/``oneOf``, local ``$ref``); others are not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from aixpy.llm.types import ResponseFormat, ToolSpec

__all__ = ["FINAL_TOOL", "OutputSpec", "check_schema", "problems_of"]

FINAL_TOOL = "final_result"

_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
                                       "integer": (int,), "number": (int, float), "null": (type(None),)}


def problems_of(error: ValidationError) -> str:
    """A pydantic validation error as one line the model can act on."""
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(value)'}: {err['msg']}"
                     for err in error.errors(include_url=False))


def _type_ok(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def check_schema(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, path: str = "$") -> list[str]:
    """The problems of ``value`` against ``schema`` (empty: it validates)."""
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return check_schema(value, target, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            if any(not check_schema(value, s, root, path) for s in schema[key]):
                return []
            return [f"{path}: matches none of the allowed shapes"]
    problems: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(value, t) for t in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {schema['const']!r}")
    return problems + _nested(value, schema, root, path)


def _nested(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    """The problems of an object's properties or of an array's items."""
    problems: list[str] = []
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        problems += [f"{path}: missing required property {k!r}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                problems += check_schema(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: unexpected property {k!r}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += check_schema(item, schema["items"], root, f"{path}[{i}]")
    return problems


@dataclass(slots=True)
class OutputSpec:
    """How the run's final answer is asked for and validated."""

    output_type: Any
    name: str
    schema: dict[str, Any]

    @classmethod
    def of(cls, output_type: Any) -> OutputSpec:
        if isinstance(output_type, dict):
            return cls(output_type, str(output_type.get("title") or "response"), output_type)
        schema = TypeAdapter(output_type).json_schema()
        return cls(output_type, getattr(output_type, "__name__", "response"), schema)

    def response_format(self) -> ResponseFormat:
        """The native structured-output request (strict form for a pydantic model)."""
        if isinstance(self.output_type, dict):
            return ResponseFormat.json_schema(self.name, self.schema, strict=None)
        if isinstance(self.output_type, type) and hasattr(self.output_type, "model_json_schema"):
            return ResponseFormat.from_model(self.output_type)
        return ResponseFormat.json_schema(self.name, self.schema, strict=None)

    def final_tool(self) -> ToolSpec:
        """The tool a model without native structured output calls with its final answer."""
        schema = self.schema if self.schema.get("type") == "object" else {
            "type": "object", "properties": {"result": self.schema}, "required": ["result"]}
        return ToolSpec(FINAL_TOOL, f"Give your final answer ({self.name}) by calling this tool.", schema)

    @property
    def wrapped(self) -> bool:
        """The final tool wraps a non-object schema in ``{"result": ...}``."""
        return self.schema.get("type") != "object"

    def validate_text(self, text: str) -> Any:
        """Parse and validate a JSON answer; raises ValueError with a message for the model."""
        stripped = text.strip()
        if stripped.startswith("```"):  # a fenced block: the fence is not part of the answer
            stripped = stripped.strip("`").removeprefix("json").strip()
        try:
            data = json.loads(stripped)
        except ValueError as e:
            raise ValueError(f"the answer is not valid JSON ({e}); answer with JSON matching the schema "
                             f"{json.dumps(self.schema)}") from None
        return self.validate_data(data)

    def validate_data(self, data: Any) -> Any:
        if isinstance(self.output_type, dict):
            problems = check_schema(data, self.schema)
            if problems:
                raise ValueError("the answer does not match the schema: " + "; ".join(problems[:10]))
            return data
        try:
            return TypeAdapter(self.output_type).validate_python(data)
        except ValidationError as e:
            raise ValueError(f"the answer does not validate as {self.name}: {problems_of(e)}") from None

    def validate_tool_args(self, arguments: dict[str, Any]) -> Any:
        return self.validate_data(arguments.get("result") if self.wrapped else arguments)
