"""OpenAI's strict JSON Schema form for structured output (``strict: true`` response formats).

Pure functions, no I/O; :func:`strict_json_schema` is re-exported by :mod:`aixpy.llm.types`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from aixpy.errors import InvalidInputError

__all__ = ["strict_json_schema"]

_DEF_KEYS = ("$defs", "definitions")
_SUBSCHEMA_KEYS = ("items", "additionalProperties", "not", "contains")
_SUBSCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")


def strict_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` in the form OpenAI's strict mode accepts (``strict: true`` response formats
    and tools). Pure: ``schema`` is not modified. At every depth (``properties``, ``items``,
    ``anyOf``/``oneOf``/``allOf``, ``additionalProperties``, ``$defs``/``definitions``):

    * an object schema (``type: object``, or one with ``properties``) gets ``additionalProperties:
      false`` unless it sets ``additionalProperties`` itself (a schema there, as for a ``dict[str,
      int]``, is kept: closing it would silently change what the field means; the API rejects it);
    * every property is listed in ``required`` (an optional field keeps its ``null`` branch, which
      pydantic writes for ``X | None``, so the model answers ``null`` instead of leaving it out);
    * ``default: null`` is dropped (other defaults are annotations and stay);
    * an ``allOf`` of a single schema is merged into its parent (the parent's own keys win);
    * a ``$ref`` with sibling keys (``{"$ref": ..., "description": ...}``) is replaced by the schema
      it points to, merged under the siblings. A bare ``$ref`` stays, so recursive models keep
      working; a ``$ref`` with siblings inside the definition it points to becomes a bare ``$ref``.

    Raises :class:`~aixpy.errors.InvalidInputError` when ``schema`` is not a dict, or a ``$ref`` that
    must be inlined is not a local pointer (``#/...``) to a schema object.
    """
    if not isinstance(schema, Mapping):
        raise InvalidInputError(f"a JSON schema must be a dict, not {type(schema).__name__}")
    root = copy.deepcopy(dict(schema))
    return cast(dict[str, Any], _strict(root, root, frozenset()))


def _strict(node: Any, root: dict[str, Any], expanding: frozenset[str]) -> Any:
    """``node`` in strict form; ``expanding`` holds the ``$ref`` s being inlined on the way here."""
    if not isinstance(node, dict):
        return node  # boolean schemas and malformed entries are left to the API to judge
    out = dict(node)
    while True:
        if "default" in out and out["default"] is None:
            del out["default"]
        all_of = out.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            del out["allOf"]
            out = {**all_of[0], **out}
            continue
        ref = out.get("$ref")
        if isinstance(ref, str) and len(out) > 1:
            if ref in expanding:  # inlining it again would never end
                out = {"$ref": ref}
                break
            del out["$ref"]
            out = {**_resolve_ref(root, ref), **out}
            expanding |= {ref}
            continue
        break
    for key in _DEF_KEYS:
        defs = out.get(key)
        if isinstance(defs, dict):
            out[key] = {name: _strict(sub, root, expanding | {f"#/{key}/{_escape_pointer(name)}"})
                        for name, sub in defs.items()}
    kind = out.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in out:
        out.setdefault("additionalProperties", False)
    properties = out.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: _strict(sub, root, expanding) for name, sub in properties.items()}
        out["required"] = list(properties)
    for key in _SUBSCHEMA_KEYS:
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key], root, expanding)
    for key in _SUBSCHEMA_LIST_KEYS:
        if isinstance(out.get(key), list):
            out[key] = [_strict(sub, root, expanding) for sub in out[key]]
    return out


def _escape_pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The schema object a local JSON pointer (``#/$defs/Name``) designates in ``root``."""
    if ref != "#" and not ref.startswith("#/"):
        raise InvalidInputError(f"cannot inline $ref {ref!r}: only local references (#/...) are supported")
    target: Any = root
    for token in ref[2:].split("/") if ref != "#" else ():
        key = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or key not in target:
            raise InvalidInputError(f"$ref {ref!r} points to nothing in the schema")
        target = target[key]
    if not isinstance(target, dict):
        raise InvalidInputError(f"$ref {ref!r} does not point to a schema object")
    return target
