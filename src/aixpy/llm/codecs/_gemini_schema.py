"""JSON Schema -> Gemini's OpenAPI 3.0 subset (tool parameters and ``responseSchema``). Pure, no I/O.

* ``$ref``/``$defs``/``definitions`` are inlined (a recursive reference becomes ``{"type": "OBJECT"}``);
  ``allOf`` is merged; ``oneOf`` is treated as ``anyOf``; ``null`` in ``anyOf`` or in a ``type`` list
  becomes ``nullable: true`` (a single remaining branch is inlined); ``const`` becomes a one-value ``enum``.
* Types are upper case (``STRING``, ``OBJECT``...). ``required`` keeps only declared properties.
* Dropped: ``$schema``, ``$id``, ``$comment``, ``title``, ``additionalProperties`` (the Gemini API rejects
  it), ``examples``, ``exclusiveMinimum``/``exclusiveMaximum``, ``multipleOf``, ``uniqueItems``,
  ``patternProperties``, ``not``, ``if``/``then``/``else``, ``prefixItems``, ``readOnly``/``writeOnly``,
  ``deprecated``, ``default: null``, formats other than ``enum``/``date-time`` (strings),
  ``int32``/``int64`` (integers), ``float``/``double`` (numbers) — the API rejects e.g. ``email`` —
  and ``enum`` s that are not all strings (their values are appended to the description).
* Tools whose parameters declare no properties are sent without ``parameters`` (empty ``OBJECT`` is rejected).
"""

from __future__ import annotations

from typing import Any

from aixpy.llm.codecs._common import canonical_json

__all__ = ["to_gemini_schema"]

_TYPES = {"string": "STRING", "number": "NUMBER", "integer": "INTEGER", "boolean": "BOOLEAN", "array": "ARRAY",
          "object": "OBJECT"}
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}
_COPIED = ("description", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern",
           "minProperties", "maxProperties", "example")


def to_gemini_schema(schema: dict[str, Any], *, property_ordering: bool = False) -> dict[str, Any]:
    """Convert a JSON Schema to Gemini's OpenAPI subset (see the module docstring for what is dropped).

    ``property_ordering`` adds ``propertyOrdering`` (the declared order) to objects with several
    properties, which response schemas need to keep the field order.
    """
    defs = {k: v for key in ("definitions", "$defs") if isinstance(schema.get(key), dict)
            for k, v in schema[key].items()}
    return _SchemaConverter(defs, property_ordering).convert(schema, ())


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null" and len(node) == 1


class _SchemaConverter:
    def __init__(self, defs: dict[str, Any], ordering: bool) -> None:
        self.defs = defs
        self.ordering = ordering

    def convert(self, node: Any, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {}  # boolean schemas
        node = {k: v for k, v in node.items() if k not in ("$defs", "definitions")}
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if ref in refs or not isinstance(self.defs.get(name), dict):  # recursive or unknown
                return {"type": "OBJECT", **{k: v for k, v in node.items() if k == "description"}}
            return self.convert({**self.defs[name], **node}, (*refs, ref))
        all_of = node.pop("allOf", None)
        if isinstance(all_of, list) and all_of:
            merged = self.convert(node, refs)
            for sub in all_of:
                merged = _merge(merged, self.convert(sub, refs))
            return merged
        variants = node.pop("anyOf", None) or node.pop("oneOf", None)
        node.pop("oneOf", None)
        if isinstance(variants, list) and variants:
            return self._any_of(node, variants, refs)
        kind = node.pop("type", None)
        if isinstance(kind, list):  # ["string", "null"] -> nullable; several types -> anyOf
            shape = {k: v for k, v in node.items() if k != "description"}
            several = len([t for t in kind if t != "null"]) > 1
            variants = [{"type": t} if t == "null" else {**(shape if several else {}), "type": t} for t in kind]
            return self._any_of({k: node[k] for k in ("description",) if k in node} if several else node,
                                variants, refs)
        if kind is not None:
            node["type"] = kind
        return self._plain(node, refs)

    def _any_of(self, node: dict[str, Any], variants: list[Any], refs: tuple[str, ...]) -> dict[str, Any]:
        others = [v for v in variants if not _is_null(v)]
        if len(others) == 1:
            out = self.convert({**others[0], **node} if isinstance(others[0], dict) else node, refs)
        else:
            out = self._plain(node, refs)
            if others:
                out["anyOf"] = [self.convert(v, refs) for v in others]
        if len(others) < len(variants):
            out["nullable"] = True
        return out

    def _plain(self, node: dict[str, Any], refs: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind = node.get("type")
        if kind == "null":
            out["nullable"] = True
        elif isinstance(kind, str) and kind in _TYPES:
            out["type"] = _TYPES[kind]
        for key in _COPIED:
            if key in node:
                out[key] = node[key]
        if node.get("default") is not None:
            out["default"] = node["default"]
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
            out["format"] = fmt
        if node.get("nullable") is True:
            out["nullable"] = True
        self._enum(node, out)
        properties = node.get("properties")
        if isinstance(properties, dict):
            out["properties"] = {name: self.convert(sub, refs) for name, sub in properties.items()}
            required = node.get("required")
            if isinstance(required, list):
                out["required"] = [r for r in required if r in properties]
            if self.ordering and len(properties) > 1:
                out["propertyOrdering"] = list(properties)
        items = node.get("items")
        if isinstance(items, dict):
            out["items"] = self.convert(items, refs)
        elif isinstance(items, list) and items:
            out["items"] = self.convert(items[0], refs)
        return out

    @staticmethod
    def _enum(node: dict[str, Any], out: dict[str, Any]) -> None:
        values = node.get("enum")
        if "const" in node:
            values = [node["const"]]
        if not isinstance(values, list):
            return
        if all(isinstance(v, str) for v in values):
            out["enum"] = list(values)
            return
        allowed = "Allowed values: " + ", ".join(canonical_json(v) for v in values)
        out["description"] = f"{out['description']} ({allowed})" if out.get("description") else allowed


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif key in ("required", "propertyOrdering") and isinstance(out.get(key), list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        else:
            out.setdefault(key, value)
    return out
