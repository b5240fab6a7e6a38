"""Load aixpy config files: safe YAML, ``${VAR}`` substitution, errors naming file, key path and line.

* Safe YAML only: plain strings, numbers, booleans, null, lists and mappings (plus ``<<`` merge keys
  and anchors). Any other tag (``!!python/object``, ``!Ref``...) is an error. Limits: 10 MB,
  nesting depth 20, 10,000 nodes *after* alias expansion (alias bombs), 100 aliases, no duplicate keys.
* ``${VAR}`` and ``${VAR:-default}`` are replaced inside string values (anywhere in the string,
  several per string; ``$$`` is a literal ``$``). Substitution runs on parsed scalars, never on the
  raw text, so a variable's value can never inject YAML structure. Values stay strings; pydantic
  converts them (``"384"`` -> ``384`` for an int field).
* Every error is a :class:`~aixpy.errors.ConfigError` with ``file``, ``path`` (``agents[0].retry``)
  and ``line``. Secret values never appear in messages.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError

from aixpy.config.llm import ConfigValueError
from aixpy.config.models import AixpyConfig, is_secret_key
from aixpy.errors import ConfigError, redact

if TYPE_CHECKING:
    import yaml

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_NAME",
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "find_config",
    "load_config",
    "load_config_str",
    "parse_config",
]

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 20
MAX_NODES = 10_000
MAX_ALIASES = 100
MAX_REPORTED = 10
CONFIG_ENV_VAR = "AIXPY_CONFIG"
DEFAULT_CONFIG_NAME = "aixpy.yaml"

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_SEQ, _MAP, _MERGE, _TIMESTAMP = (_TAG + t for t in ("seq", "map", "merge", "timestamp"))
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
_PLAIN_YAML = "aixpy config files use plain YAML: strings, numbers, booleans, null, lists and mappings"

_VAR_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SECRET_VAR = re.compile(r"(?i)(key|token|secret|passw|credential|auth|dsn)")

Loc = tuple[str | int, ...]


# ====================================================================== public API


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Which config file to use: ``explicit``, else ``$AIXPY_CONFIG``, else ``./aixpy.yaml``, else None.

    An explicit path (argument or environment variable) that does not exist is a ``ConfigError``;
    ``None`` means "no config file: use the defaults".
    """
    for given, origin in ((explicit, None), (os.environ.get(CONFIG_ENV_VAR), CONFIG_ENV_VAR)):
        if given is None or not str(given).strip():
            continue
        path = Path(given).expanduser()
        if not path.is_file():
            what = "config file not found" if not path.exists() else "config path is not a file"
            raise ConfigError(what + (f" (from ${origin})" if origin else ""), file=str(given))
        return path
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.is_file() else None


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> AixpyConfig:
    """Read, substitute and validate the config file at ``path``.

    ``env`` replaces ``os.environ`` as the source of ``${VAR}`` values.
    """
    source = str(path)
    file = Path(path).expanduser()
    problem: str | None = None
    raw = b""
    try:
        if not file.is_file():
            problem = "config file not found" if not file.exists() else "config path is not a file"
        elif file.stat().st_size > MAX_BYTES:
            problem = f"config file is {file.stat().st_size} bytes; the limit is {MAX_BYTES} (10 MB)"
        else:
            with file.open("rb") as fh:
                raw = fh.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                problem = f"config file is larger than the limit of {MAX_BYTES} bytes (10 MB)"
    except OSError as exc:
        problem = f"cannot read config file: {exc.strerror or type(exc).__name__}"
    if problem:
        raise ConfigError(problem, file=source)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem, line = "config file is not valid UTF-8", raw[: exc.start].count(b"\n") + 1
    else:
        return _load_text(text, source, env)
    raise ConfigError(problem, file=source, line=line)


def load_config_str(
    text: str, source: str = "<string>", *, env: Mapping[str, str] | None = None
) -> AixpyConfig:
    """Like :func:`load_config` for YAML text; ``source`` names it in error messages."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError(f"config text is larger than the limit of {MAX_BYTES} bytes (10 MB)", file=source)
    return _load_text(text, source, env)


def parse_config(data: Mapping[str, Any] | None, *, source: str | None = None) -> AixpyConfig:
    """Validate an already-parsed config mapping (no YAML, no ``${VAR}`` substitution)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config must be a mapping, got {_kind(data)}", file=source)
    secrets: set[str] = set()
    _collect_secrets(data, None, secrets)
    return _validate(dict(data), {}, source, secrets)


# ====================================================================== validation and error messages


def _load_text(text: str, source: str, env: Mapping[str, str] | None) -> AixpyConfig:
    data, lines, secrets = _read_yaml(text, source, os.environ if env is None else env)
    return _validate(data, lines, source, secrets)


def _validate(data: Any, lines: dict[str, int], source: str | None, secrets: set[str]) -> AixpyConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a mapping with keys {', '.join(AixpyConfig.model_fields)}, "
            f"got {_kind(data)}",
            file=source,
            line=lines.get(""),
        )
    try:
        return AixpyConfig.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, data, lines)
    # Raised outside the ``except`` so the ValidationError (which quotes input values) is not chained.
    raise _config_error(problems, source, secrets)


def _problems(exc: ValidationError, data: dict[str, Any], lines: dict[str, int]) -> list[tuple[str, int | None, str]]:
    merged: dict[str, tuple[int | None, list[str]]] = {}
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigValueError):
            loc += cause.loc
        parts = _clean_loc(loc, data)
        path = _format_path(parts)
        entry = merged.setdefault(path, (_line_for(parts, lines), []))
        message = _message(err, parts)
        if message not in entry[1]:
            entry[1].append(message)
    out = [(path, line, " or ".join(msgs)) for path, (line, msgs) in merged.items()]
    out.sort(key=lambda p: (p[1] is None, p[1] or 0))
    return out


def _config_error(problems: list[tuple[str, int | None, str]], source: str | None, secrets: set[str]) -> ConfigError:
    path, line, message = problems[0]
    if len(problems) > 1:
        rest = problems[1:MAX_REPORTED]
        where = [(f"{source}:{ln}" if source and ln else f"line {ln}" if ln else source or "") for _, ln, _ in rest]
        message += f"\n{len(problems) - 1} more problem(s):" + "".join(
            f"\n  {' '.join(x for x in (w, p) if x)}: {m}" for w, (p, _, m) in zip(where, rest, strict=True)
        )
        if len(problems) > MAX_REPORTED:
            message += f"\n  ... and {len(problems) - MAX_REPORTED} more"
    known = sorted(secrets, key=len, reverse=True)
    return ConfigError(redact(message, known), file=source, path=path or None, line=line)


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Drop pydantic's union-member tags (``'str'``, ``'list[str]'``) so only real keys remain."""
    out: list[str | int] = []
    cur = data
    for i, el in enumerate(loc):
        if isinstance(cur, dict):
            if el in cur:
                out.append(el)
                cur = cur[el]
            elif i == len(loc) - 1 and isinstance(el, str):
                out.append(el)  # a missing key
        elif isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            out.append(el)
            cur = cur[el]
    return tuple(out)


def _format_path(parts: Loc) -> str:
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else str(p))
    return path


def _line_for(parts: Loc, lines: dict[str, int]) -> int | None:
    for n in range(len(parts), -1, -1):
        line = lines.get(_format_path(parts[:n]))
        if line is not None:
            return line
    return None


def _message(err: Any, parts: Loc) -> str:
    kind, msg, value = err["type"], str(err["msg"]), err.get("input")
    secret = any(isinstance(p, str) and is_secret_key(p) for p in parts)
    if kind == "extra_forbidden":
        return _unknown_key(parts)
    if kind == "missing":
        return f"missing required key '{parts[-1]}'" if parts else "missing required value"
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value error|Assertion failed), ", "", msg)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value pairs), got {_kind(value)}"
    if kind == "list_type":
        return f"expected a list, got {_kind(value)}"
    if kind == "string_type" and not secret:
        return f"expected a string, got {_kind(value)}"
    if secret or not isinstance(value, str | int | float | bool):
        return msg
    msg += f" (got {_show(value)})"
    if kind == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        close = _close_match(value, expected)
        if close:
            msg += f"; did you mean '{close}'?"
    return msg


def _unknown_key(parts: Loc) -> str:
    key = str(parts[-1]) if parts else "?"
    model = _model_at(parts[:-1])
    allowed = list(model.model_fields) if model else []
    close = _close_match(key, allowed)
    if close:
        return f"unknown key '{key}'; did you mean '{close}'?"
    if allowed:
        return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"
    return f"unknown key '{key}'"


def _close_match(word: str, choices: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def _model_at(parts: Loc) -> type[BaseModel] | None:
    model: type[BaseModel] | None = AixpyConfig
    for el in parts:
        if isinstance(el, int):
            continue
        field = model.model_fields.get(el) if model else None
        if field is None:
            return None
        model = _first_model(field.annotation)
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    from typing import get_args

    for arg in get_args(annotation):
        found = _first_model(arg)
        if found is not None:
            return found
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for typ, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                      (dict, "a mapping"), (list, "a list")):
        if isinstance(value, typ):
            return name
    return type(value).__name__


def _show(value: str | int | float | bool) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _collect_secrets(value: Any, key: str | None, out: set[str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _collect_secrets(v, str(k), out)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect_secrets(v, key, out)
    elif key is not None and is_secret_key(key):
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            out.add(value)


# ====================================================================== ${VAR} substitution


class _SubstitutionError(Exception):
    pass


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ``${VAR}``, ``${VAR:-default}`` and ``$$``; return the text and the variables used."""
    out: list[str] = []
    used: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out), used
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
                    f"invalid variable reference '${{{body}}}': use ${{NAME}} or ${{NAME:-default}}"
                )
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise _SubstitutionError(
                        f"environment variable {name} is not set "
                        f"(set it, or give a default with ${{{name}:-default}})"
                    )
                value = default
            out.append(value)
            used.append(name)
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


def _read_yaml(text: str, source: str, env: Mapping[str, str]) -> tuple[Any, dict[str, int], set[str]]:
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
                return None, {}, set()
            builder = _Builder(loader, source, env)
            data = builder.build(node, "", 1, None)
            return data, builder.lines, builder.secrets
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
        self.count = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.expanded = False

    def error(self, message: str, path: str, line: int | None) -> ConfigError:
        return ConfigError(message, file=self.source, path=path or None, line=line)

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
            value = self.loader.construct_object(node)
        else:
            self.check_tag(node, _STR, path)
        if key is not None and is_secret_key(key) and value is not None and value != "":
            self.secrets.add(str(value))
        return value

    def substitute(self, value: str, path: str, node: yaml.Node) -> str:
        try:
            result, used = _expand(value, self.env)
        except _SubstitutionError as exc:
            raise self.error(str(exc), path, self.lines.get(path, _mark_line(node.start_mark))) from None
        for name in used:
            if _SECRET_VAR.search(name) and self.env.get(name):
                self.secrets.add(self.env[name])
        return result
