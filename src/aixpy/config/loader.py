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

import os
import re
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr, ValidationError

from aixpy import _model_names
from aixpy._registry import Registry
from aixpy.config._base import ConfigValueError, cap_message, quote
from aixpy.config._yaml import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES, Missing, missing_message, read_yaml
from aixpy.config.embeddings import EMBEDDING_BLOCKS
from aixpy.config.models import AixpyConfig, is_secret_key
from aixpy.config.stores import STORE_BLOCKS
from aixpy.errors import ConfigError, redact

if TYPE_CHECKING:
    pass

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
    "where",
]

MAX_REPORTED = 10
CONFIG_ENV_VAR = "AIXPY_CONFIG"
DEFAULT_CONFIG_NAME = "aixpy.yaml"

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


# Where each loaded config came from: its file and the line of each key path, so that errors found later
# (a tool that does not import) can still name the file and the line. Keyed by id, dropped with the config.
_ORIGINS: dict[int, tuple[str | None, dict[str, int]]] = {}


def _remember(config: AixpyConfig, source: str | None, lines: dict[str, int]) -> None:
    _ORIGINS[id(config)] = (source, lines)
    weakref.finalize(config, _ORIGINS.pop, id(config), None)


def where(config: AixpyConfig | None, path: str) -> dict[str, Any]:
    """``file``, ``path`` and ``line`` of the key ``path`` (``agents[0].tools[1]``) of a loaded config: the
    keyword arguments of a :class:`~aixpy.errors.ConfigError` about that key, found after loading."""
    source, lines = _ORIGINS.get(id(config), (None, {})) if config is not None else (None, {})
    parts: list[str | int] = []
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(int(index) if index else key)
    return {"file": source, "path": path, "line": _line_for(tuple(parts), lines)}


# ====================================================================== validation and error messages


def _load_text(text: str, source: str, env: Mapping[str, str] | None) -> AixpyConfig:
    data, lines, secrets, missing = read_yaml(text, source, os.environ if env is None else env)
    return _validate(data, lines, source, secrets, missing)


def _validate(data: Any, lines: dict[str, int], source: str | None, secrets: set[str],
              missing: list[Missing] | None = None) -> AixpyConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"the top level must be a mapping with keys {', '.join(AixpyConfig.model_fields)}, "
            f"got {_kind(data)}",
            file=source,
            line=lines.get(""),
        )
    missing = missing or []
    unused = _unselected_blocks(data)
    deferred = [m for m in missing if any(m.path == u or m.path.startswith((u + ".", u + "[")) for u in unused)]
    required = [m for m in missing if m not in deferred]
    problems = [(m.path, m.line, missing_message(m.names)) for m in required]
    problems += _unknown_providers(data, lines, {m.path for m in missing})
    config: AixpyConfig | None = None
    try:
        config = AixpyConfig.model_validate(data)
    except ValidationError as exc:
        by_path = {m.path: m for m in missing}
        known = sorted(secrets, key=len, reverse=True)
        for path, line, message in _problems(exc, data, lines):
            # a value still reading ``${VAR}`` fails because the variable is not set: say that
            m = by_path.get(path)
            if m is None:
                problems.append((path, line, redact(message, known)))
            elif m in deferred:
                problems.append((m.path, m.line, missing_message(m.names)))
    if problems or config is None:
        problems.sort(key=lambda p: (p[1] is None, p[1] or 0))
        # Raised outside the ``except`` so the ValidationError (which quotes input values) is not chained.
        raise _config_error(problems, source)
    config._unresolved = {m.path: m.names for m in deferred}
    _remember(config, source, lines)
    return config


def _provider_keys(data: dict[str, Any]) -> Iterator[tuple[str, Any, Registry[Any]]]:
    """(key path, value, name table) of every ``provider:`` of the embeddings and vector-store blocks."""
    emb = data.get("embeddings")
    if isinstance(emb, dict):
        entries = [("embeddings", emb)]
        fallback = emb.get("fallback")
        entries += [(f"embeddings.fallback[{i}]", e) for i, e in enumerate(fallback if isinstance(fallback, list)
                                                                            else []) if isinstance(e, dict)]
        for path, entry in entries:
            if "provider" in entry:
                yield f"{path}.provider", entry["provider"], _model_names.EMBEDDINGS
    store = data.get("vectorstore")
    if isinstance(store, dict) and "provider" in store:
        yield "vectorstore.provider", store["provider"], _model_names.VECTORSTORES


def _unknown_providers(data: dict[str, Any], lines: dict[str, int], skip: set[str]
                       ) -> list[tuple[str, int | None, str]]:
    """A problem for every embeddings/vector-store ``provider:`` no registered provider has (the LLM
    ones are a closed list, checked by the model)."""
    out: list[tuple[str, int | None, str]] = []
    for path, name, table in _provider_keys(data):
        if not isinstance(name, str) or path in skip or name in table:
            continue
        known = table.names()
        close = _close_match(name.strip().lower(), known)
        hint = f"; did you mean '{close}'?" if close else f"; known: {', '.join(known)}"
        out.append((path, lines.get(path), f"unknown {table.kind} provider {quote(name)}{hint}"))
    return out


def _unselected_blocks(data: dict[str, Any]) -> list[str]:
    """Key paths of the provider blocks no ``provider:`` selects (``embeddings.openai`` while
    ``embeddings.provider`` is ``local``): a variable only they use need not be set."""
    out: list[str] = []
    emb = data.get("embeddings")
    if isinstance(emb, dict):
        out += _unselected_in(emb, "embeddings", "local", EMBEDDING_BLOCKS)
        fallback = emb.get("fallback")
        for i, entry in enumerate(fallback if isinstance(fallback, list) else []):
            if isinstance(entry, dict):
                out += _unselected_in(entry, f"embeddings.fallback[{i}]", "local", EMBEDDING_BLOCKS)
    store = data.get("vectorstore")
    if isinstance(store, dict):
        out += _unselected_in(store, "vectorstore", "memory", STORE_BLOCKS)
    return out


def _unselected_in(block: dict[str, Any], path: str, default: str, names: tuple[str, ...]) -> list[str]:
    provider = block.get("provider", default)
    if not isinstance(provider, str) or "${" in provider:
        return []  # the selection is itself unknown: every block counts
    chosen = provider.strip().lower()
    return [f"{path}.{name}" for name in names if name in block and name != chosen]


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
    out = [(path, line, cap_message(" or ".join(msgs))) for path, (line, msgs) in merged.items()]
    out.sort(key=lambda p: (p[1] is None, p[1] or 0))
    return out


def _config_error(problems: list[tuple[str, int | None, str]], source: str | None) -> ConfigError:
    """One error for all ``problems`` (already redacted: each message on its own, so a key path such as
    ``api_key:`` in the composed text is never mistaken for a secret)."""
    path, line, message = problems[0]
    if len(problems) > 1:
        rest = problems[1:MAX_REPORTED]
        where = [(f"{source}:{ln}" if source and ln else f"line {ln}" if ln else source or "") for _, ln, _ in rest]
        message += f"\n{len(problems) - 1} more problem(s):" + "".join(
            f"\n  {' '.join(x for x in (w, _shown_path(p)) if x)}: {m}"
            for w, (p, _, m) in zip(where, rest, strict=True)
        )
        if len(problems) > MAX_REPORTED:
            message += f"\n  ... and {len(problems) - MAX_REPORTED} more"
    return ConfigError(message, file=source, path=_shown_path(path) or None, line=line)


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


def _shown_path(path: str) -> str:
    return path if len(path) <= 200 else path[:200] + "…"


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
    msg += f" (got {quote(value)})"
    if kind == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        close = _close_match(value, expected)
        if close:
            msg += f"; did you mean '{close}'?"
    return msg


def _unknown_key(parts: Loc) -> str:
    key = str(parts[-1])[:60] if parts else "?"
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


def _collect_secrets(value: Any, key: str | None, out: set[str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _collect_secrets(v, "api_key" if key == "headers" else str(k), out)  # header values are secrets
    elif isinstance(value, list | tuple):
        for v in value:
            _collect_secrets(v, key, out)
    elif key is not None and is_secret_key(key):
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            out.add(value)
