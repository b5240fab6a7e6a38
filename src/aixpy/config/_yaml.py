"""Safe YAML for config files: plain types only, size/depth/node/alias limits, no duplicate keys, and
``${VAR}`` / ``${VAR:-default}`` / ``$$`` substituted in parsed string scalars (never in the raw text).
Returns plain data plus the line of every key path (for error messages) and the secret values seen."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from aixpy.config._base import cap_message
from aixpy.config.models import is_secret_key
from aixpy.errors import ConfigError

if TYPE_CHECKING:
    import yaml

__all__ = ["MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Missing", "missing_message", "read_yaml"]

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 20
MAX_NODES = 10_000
MAX_ALIASES = 100

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE, _TIMESTAMP = (_TAG + t for t in ("seq", "map", "merge", "timestamp"))
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
_PLAIN_YAML = "aixpy config files use plain YAML: strings, numbers, booleans, null, lists and mappings"

_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SECRET_VAR = re.compile(r"(?i)(key|token|secret|passw|credential|auth|dsn)")


# ====================================================================== ${VAR} substitution


class _SubstitutionError(Exception):
    pass


class Missing(NamedTuple):
    """A string value that names environment variables which are not set (and have no default)."""

    path: str
    line: int | None
    names: tuple[str, ...]


def _cut(name: str) -> str:
    return name if len(name) <= 60 else name[:60] + "…"


def missing_message(names: tuple[str, ...]) -> str:
    """``environment variable X is not set (...)``, or the plural for several."""
    if len(names) == 1:
        name = _cut(names[0])
        return f"environment variable {name} is not set (set it, or give a default with ${{{name}:-default}})"
    return f"environment variables {', '.join(_cut(n) for n in names)} are not set (set them, or give defaults)"


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """Replace ``${VAR}``, ``${VAR:-default}`` and ``$$``; return the text, the variables used and the
    variables missing (not set, no default: left as written)."""
    out: list[str] = []
    used: list[str] = []
    missing: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out), used, missing
        out.append(text[i:j])
        nxt = text[j + 1 : j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = text.find("}", j + 2)
            if end < 0:
                raise _SubstitutionError("unterminated '${' (write $$ for a literal $)")
            body = text[j + 2 : end]
            m = _VAR_BODY.fullmatch(body)
            if m is None:
                raise _SubstitutionError(
                    f"invalid variable reference '${{{_cut(body)}}}': use ${{NAME}} or ${{NAME:-default}}"
                )
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    missing.append(name)
                    value = text[j : end + 1]
                else:
                    value = default
            else:
                used.append(name)
            out.append(value)
            i = end + 1
        else:
            out.append("$")
            i = j + 1


# ====================================================================== safe YAML


class _LimitError(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def _mark_line(mark: Any) -> int | None:
    return int(mark.line) + 1 if mark is not None else None


@functools.cache
def _loader_class() -> type[yaml.SafeLoader]:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that counts nodes, nesting depth and aliases while composing."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.aixpy_nodes = 0
            self.aixpy_depth = 0
            self.aixpy_aliases = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            line = _mark_line(event.start_mark)
            if isinstance(event, yaml.AliasEvent):
                self.aixpy_aliases += 1
                if self.aixpy_aliases > MAX_ALIASES:
                    raise _LimitError(f"more than {MAX_ALIASES} aliases (*name); the limit guards "
                                      "against alias bombs", line)
                return super().compose_node(parent, index)
            self.aixpy_nodes += 1
            if self.aixpy_nodes > MAX_NODES:
                raise _LimitError(f"the document has more than {MAX_NODES} nodes", line)
            nested = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
            if nested:
                self.aixpy_depth += 1
                if self.aixpy_depth > MAX_DEPTH:
                    raise _LimitError(f"nesting is deeper than {MAX_DEPTH} levels", line)
            try:
                return super().compose_node(parent, index)
            finally:
                if nested:
                    self.aixpy_depth -= 1

    return Loader


def read_yaml(
    text: str, source: str, env: Mapping[str, str]
) -> tuple[Any, dict[str, int], set[str], list[Missing]]:
    """The data, the line of every key path, the secret values seen, and the string values that name
    variables which are not set (left as written: the loader decides whether that is an error)."""
    import yaml

    problem: str
    line: int | None = None
    try:
        loader = _loader_class()(text)
    except yaml.reader.ReaderError as exc:  # the reader rejects control characters up front
        problem = f"invalid YAML: {exc.reason} (character {exc.character:#x})"
        raise ConfigError(problem, file=source, line=text[: exc.position].count("\n") + 1) from None
    try:
        try:
            node = loader.get_single_node()
        except _LimitError as exc:
            problem, line = str(exc), exc.line
        except yaml.MarkedYAMLError as exc:
            # Only problem/context: str(exc) would quote the offending source line (maybe a secret).
            problem = f"invalid YAML: {exc.problem or 'syntax error'}"
            line = _mark_line(exc.problem_mark) or _mark_line(exc.context_mark)
            if exc.context and problem.startswith("invalid YAML: but "):
                problem = f"invalid YAML: {exc.context}, {exc.problem}"
            elif exc.context:
                ctx_line = _mark_line(exc.context_mark)
                problem += f" ({exc.context}" + (f" on line {ctx_line})" if ctx_line else ")")
        except yaml.reader.ReaderError as exc:
            problem = f"invalid YAML: {exc.reason} (character {exc.character:#x})"
            line = text[: exc.position].count("\n") + 1
        except yaml.YAMLError as exc:
            problem = f"invalid YAML: {type(exc).__name__}"
        else:
            if node is None:
                return None, {}, set(), []
            builder = _Builder(loader, source, env)
            data = builder.build(node, "", 1, None)
            return data, builder.lines, builder.secrets, builder.missing
    finally:
        loader.dispose()
    raise ConfigError(problem, file=source, line=line)


class _Builder:
    """Turns the composed node graph into plain Python data, recording the line of every key path."""

    def __init__(self, loader: yaml.SafeLoader, source: str, env: Mapping[str, str]) -> None:
        self.loader = loader
        self.source = source
        self.env = env
        self.lines: dict[str, int] = {}
        self.secrets: set[str] = set()
        self.missing: list[Missing] = []
        self.count = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.expanded = False

    def error(self, message: str, path: str, line: int | None) -> ConfigError:
        shown = path if len(path) <= 200 else path[:200] + "…"
        return ConfigError(cap_message(message), file=self.source, path=shown or None, line=line)

    def tick(self, node: yaml.Node, path: str) -> None:
        self.count += 1
        if id(node) in self.seen:
            self.expanded = True
        self.seen.add(id(node))
        if self.count > MAX_NODES:
            message = (
                f"aliases expand the document to more than {MAX_NODES} nodes (alias bomb protection)"
                if self.expanded
                else f"the document has more than {MAX_NODES} nodes"
            )
            raise self.error(message, path, _mark_line(node.start_mark))

    def check_tag(self, node: yaml.Node, expected: str, path: str) -> None:
        if node.tag != expected:
            tag = node.tag.replace(_TAG, "!!")
            raise self.error(f"tag '{tag}' is not allowed: {_PLAIN_YAML}", path, _mark_line(node.start_mark))

    def build(self, node: yaml.Node, path: str, depth: int, key: str | None) -> Any:
        self.tick(node, path)
        line = _mark_line(node.start_mark)
        if line is not None:
            self.lines.setdefault(path, line)
        kind = type(node).__name__
        if kind == "ScalarNode":
            return self.scalar(node, path, key)
        if depth > MAX_DEPTH:
            raise self.error(f"nesting is deeper than {MAX_DEPTH} levels", path, line)
        if id(node) in self.active:
            raise self.error("recursive alias: a node contains itself", path, line)
        self.active.add(id(node))
        try:
            if kind == "SequenceNode":
                self.check_tag(node, _SEQ, path)
                return [self.build(item, f"{path}[{i}]", depth + 1, key) for i, item in enumerate(node.value)]
            self.check_tag(node, _MAP, path)
            out: dict[str, Any] = {}
            for k, knode, vnode in self.pairs(node, path, ()):
                child = f"{path}.{k}" if path else k
                kline = _mark_line(knode.start_mark)
                if kline is not None:
                    self.lines.setdefault(child, kline)
                out[k] = self.build(vnode, child, depth + 1, k)
            return out
        finally:
            self.active.discard(id(node))

    def pairs(
        self, node: yaml.Node, path: str, stack: tuple[int, ...]
    ) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The mapping's (key, key node, value node) list, ``<<`` merges applied, duplicates rejected."""
        explicit: list[tuple[str, yaml.Node, yaml.Node]] = []
        first: dict[str, int | None] = {}
        merges: list[yaml.Node] = []
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                merges.append(vnode)
                continue
            key = self.key(knode, path)
            kline = _mark_line(knode.start_mark)
            if key in first:
                raise self.error(
                    f"duplicate key '{key}': first defined on line {first[key]}, again on line {kline}",
                    f"{path}.{key}" if path else key,
                    kline,
                )
            first[key] = kline
            explicit.append((key, knode, vnode))
        if not merges:
            return explicit
        stack = (*stack, id(node))
        have = set(first)
        for merge in merges:
            sources = merge.value if type(merge).__name__ == "SequenceNode" else [merge]
            for src in sources:
                self.tick(src, path)
                if type(src).__name__ != "MappingNode":
                    raise self.error("'<<' (merge key) needs a mapping or a list of mappings", path,
                                     _mark_line(src.start_mark))
                if id(src) in stack or len(stack) > MAX_DEPTH:
                    raise self.error("recursive alias: a node contains itself", path, _mark_line(src.start_mark))
                self.check_tag(src, _MAP, path)
                for key, knode, vnode in self.pairs(src, path, stack):
                    if key not in have:
                        have.add(key)
                        explicit.append((key, knode, vnode))
        return explicit

    def key(self, knode: yaml.Node, path: str) -> str:
        line = _mark_line(knode.start_mark)
        if type(knode).__name__ != "ScalarNode":
            raise self.error("mapping keys must be plain strings (complex keys are not allowed)", path, line)
        if knode.tag not in _SCALAR_TAGS:
            self.check_tag(knode, _STR, path)
        key = str(knode.value)
        if not key:
            raise self.error("empty mapping key", path, line)
        return key

    def scalar(self, node: yaml.Node, path: str, key: str | None) -> Any:
        tag = node.tag
        value: Any
        if tag == _STR:
            value = str(node.value)
            if "$" in value:
                value = self.substitute(value, path, node)
        elif tag == _TIMESTAMP:
            value = str(node.value)  # kept as text: no field of ours is a date
        elif tag in _SCALAR_TAGS:
            try:
                value = self.loader.construct_object(node)
            except ValueError:  # an integer of more than 4300 digits
                raise self.error("number too large", path, _mark_line(node.start_mark)) from None
        else:
            self.check_tag(node, _STR, path)
        if key is not None and is_secret_key(key, path) and value is not None and value != "":
            self.secrets.add(str(value))
        return value

    def substitute(self, value: str, path: str, node: yaml.Node) -> str:
        line = self.lines.get(path, _mark_line(node.start_mark))
        try:
            result, used, missing = _expand(value, self.env)
        except _SubstitutionError as exc:
            raise self.error(str(exc), path, line) from None
        if missing:
            self.missing.append(Missing(path, line, tuple(dict.fromkeys(missing))))
        for name in used:
            if _SECRET_VAR.search(name) and self.env.get(name):
                self.secrets.add(self.env[name])
        return result
