"""Implementation of :func:`aixpy.llm.types.tool_from_function` (imports pydantic, hence apart)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import Field, create_model

from aixpy.errors import InvalidInputError
from aixpy.llm.types import ToolSpec, strict_json_schema

__all__ = ["parse_docstring", "spec_from_function"]

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?|"
                      r"See Also|Attributes|Keyword Args|Other Parameters)\s*:?\s*$")
_GOOGLE_ARG = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^\s*(\w+)\s*(?::\s*.*)?$")
_SPHINX = re.compile(r":param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*?)(?=\n\s*:|\Z)", re.S)


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {param: description})`` from a Google, Sphinx or NumPy style docstring."""
    if not doc:
        return "", {}
    text = inspect.cleandoc(doc)
    params: dict[str, str] = {m.group(1): " ".join(m.group(2).split()) for m in _SPHINX.finditer(text)}
    lines = text.splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line) or line.lstrip().startswith(":"):
            break
        summary_lines.append(line.strip())
    i = 0
    while i < len(lines):
        m = _SECTION.match(lines[i])
        if not m or m.group(1) not in ("Args", "Arguments", "Parameters", "Params", "Keyword Args"):
            i += 1
            continue
        i += 1
        if i < len(lines) and set(lines[i].strip()) == {"-"}:  # NumPy underline
            i += 1
            i = _numpy_params(lines, i, params)
        else:
            i = _google_params(lines, i, params)
    return " ".join(summary_lines), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_params(lines: list[str], i: int, params: dict[str, str]) -> int:
    base: int | None = None
    current: str | None = None
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if _indent(line) == 0 or _SECTION.match(line):
            break
        base = _indent(line) if base is None else base
        m = _GOOGLE_ARG.match(line)
        if _indent(line) == base and m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
        i += 1
    return i


def _numpy_params(lines: list[str], i: int, params: dict[str, str]) -> int:
    current: str | None = None
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
            break  # next section header
        if not line.strip():
            i += 1
            continue
        m = _NUMPY_ARG.match(line)
        if _indent(line) == 0 and m:
            current = m.group(1)
            params[current] = ""
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
        i += 1
    return i


def _strip_titles(node: Any, *, in_properties: bool = False) -> Any:
    """Drop pydantic's auto-generated ``title`` keys (noise for the model; keeps property names)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "title" and not in_properties and isinstance(v, str):
                continue
            out[k] = _strip_titles(v, in_properties=(k in ("properties", "$defs", "definitions")))
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def spec_from_function(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None,
                       strict: bool | None = None) -> ToolSpec:
    """See :func:`aixpy.llm.types.tool_from_function`."""
    fn_name = getattr(fn, "__name__", None) or type(fn).__name__
    try:
        sig = inspect.signature(fn)
        hints = get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as e:
        raise InvalidInputError(f"cannot read the signature of {fn_name!r}: {e}") from e
    summary, docs = parse_docstring(inspect.getdoc(fn))
    fields: dict[str, Any] = {}
    for pname, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise InvalidInputError(f"tool function {fn_name!r} has *{pname}; tools need named parameters only")
        if pname in ("self", "cls") and p.annotation is p.empty:
            continue
        annotation = hints.get(pname, Any)
        default = ... if p.default is p.empty else p.default
        doc = docs.get(pname)
        # a bare default keeps any Field(...) given in Annotated[...]; a docstring line adds a description
        fields[pname] = (annotation, Field(default, description=doc) if doc else default)
    model = create_model(fn_name, **fields)
    schema = _strip_titles(model.model_json_schema())
    schema.setdefault("properties", {})
    schema["type"] = "object"
    if strict:  # OpenAI strict mode: closed objects, every property required, at every depth
        schema = strict_json_schema(schema)
    return ToolSpec(name=name or fn_name, description=description if description is not None else summary,
                    parameters=schema, strict=strict)
