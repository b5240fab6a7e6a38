"""What every config block uses: the strict base model, durations, and errors that name their key.

:class:`StrictModel` (the base of every config model) forbids unknown keys, takes numbers and booleans
strictly (a YAML ``yes``/``on``/``true`` is never the number 1, and ``1`` is never ``true``; numeric
strings, as ``${VAR}`` substitution yields, still convert), and masks passwords inside URLs in its
``repr``/``str`` (``https://u:***@host``).

Durations (``timeout``, ``initial_backoff``...) accept ``"500ms"``, ``"1s"``, ``"2m"``, ``"1h"``,
Go-style combinations such as ``"1m30s"``, or a plain number of seconds; :data:`Duration` makes them
a :class:`datetime.timedelta`, :data:`Seconds` a float.
"""

from __future__ import annotations

import functools
import math
import re
import types
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from aixpy.errors import ConfigError, redact

__all__ = [
    "ConfigValueError",
    "Duration",
    "PositiveDuration",
    "RedisURL",
    "Seconds",
    "StrictModel",
    "cap_message",
    "format_duration",
    "mask_urls",
    "parse_duration",
    "quote",
    "validate_block",
    "validation_message",
]

M = TypeVar("M", bound=BaseModel)


class ConfigValueError(ValueError):
    """A validation failure that knows which key, below the model raising it, is at fault.

    ``loc`` is relative to the model whose validator raised it; the loader appends it to pydantic's
    location so the error names (and points at the line of) the exact key.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc: tuple[str | int, ...] = loc


# ------------------------------------------------------------------ quoting input in messages

QUOTE_LIMIT = 60


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters (``'aaaa…``): error messages never copy a whole value."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


MESSAGE_LIMIT = 400


def cap_message(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` cut to ``limit`` characters: a last guard, for messages that quote input through
    something other than :func:`quote` (pydantic's own texts, key names)."""
    return message if len(message) <= limit else message[:limit] + "…"


# ------------------------------------------------------------------ URL credentials in reprs

_URL_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/?#@:]*:)[^\s/?#]*(@)")


def mask_urls(value: Any) -> Any:
    """``value`` with the password of every URL in it masked (``https://u:***@host``), through lists,
    tuples and dicts; other values unchanged. Also applies :func:`aixpy.errors.redact`'s key shapes."""
    if isinstance(value, str):
        return redact(_URL_USERINFO.sub(r"\1***\2", value)) if "://" in value else value
    if isinstance(value, list | tuple):
        return type(value)(mask_urls(v) for v in value)
    if isinstance(value, dict):
        return {k: mask_urls(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_SECONDS = 366 * 24 * 3600.0


def parse_duration(value: Any) -> timedelta:
    """Parse ``"500ms"``, ``"1s"``, ``"2m"``, ``"1h"``, ``"1m30s"`` or a number of seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 1s, 2m or 1h, got a boolean")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_str(value.strip())
    else:
        raise ValueError(f"expected a duration such as 500ms, 1s, 2m or 1h, got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError("duration must be finite")
    if seconds < 0:
        raise ValueError("duration cannot be negative")
    if seconds > _MAX_SECONDS:
        raise ValueError("duration is longer than a year")
    return timedelta(seconds=seconds)


def _parse_duration_str(text: str) -> float:
    bad = ValueError(f"invalid duration {quote(text)}: use a number of seconds or a value like 500ms, 1s, 2m, 1h")
    if not text:
        raise bad
    try:
        return float(text)
    except ValueError:
        pass
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            raise bad
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos == 0:
        raise bad
    return sign * total


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``timedelta(seconds=90)`` -> ``"1m30s"``."""
    us = value // timedelta(microseconds=1)
    if us == 0:
        return "0s"
    if us < 1_000_000 and us % 1000 == 0:
        return f"{us // 1000}ms"
    whole, frac = divmod(us, 1_000_000)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    if frac:
        out += f"{seconds + frac / 1_000_000:g}s"
    elif seconds or not out:
        out += f"{seconds}s"
    return out


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("duration must be greater than 0")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]



def _redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError(f"expected a redis URL such as redis://localhost:6379/0, got {redact(value)!r}")
    return value


RedisURL = Annotated[str, AfterValidator(_redis_url)]
"""A ``redis://``, ``rediss://`` or ``unix://`` URL (its password is masked in reprs like any URL's)."""


def _to_seconds(value: Any) -> Any:
    """A number of seconds, or a duration string like the guide's (``"500ms"``, ``"1s"``, ``"2m"``)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return parse_duration(value).total_seconds()
    return value


Seconds = Annotated[float, BeforeValidator(_to_seconds)]
"""Seconds as a float; YAML may also say ``"1s"``, ``"250ms"``, ``"2m"`` (as the guide's ``retry:`` does)."""


# ------------------------------------------------------------------ the base model

_SCALARS = {int: "int", float: "float", bool: "bool"}
_KIND_NAMES = {"int": "an integer", "float": "a number", "bool": "a boolean (true or false)"}


@functools.cache
def _scalar_kind(model: type[BaseModel], name: str) -> str | None:
    """``"int"``/``"float"``/``"bool"`` when the field holds exactly that scalar (optionally ``None``)."""
    field = model.model_fields.get(name)
    if field is None:
        return None
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            return None
        annotation = members[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return _SCALARS.get(annotation) if isinstance(annotation, type) else None


def _kind_of(value: Any) -> str:
    for typ, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string")):
        if isinstance(value, typ):
            return name
    return type(value).__name__


def _number_ok(kind: str, value: Any) -> bool:
    # a string is parsed by pydantic ("384" -> 384; "lots" is its usual "unable to parse" error)
    return isinstance(value, int | str) if kind == "int" else isinstance(value, int | float | str)


def strict_scalar(kind: str | None, value: Any) -> Any:
    """``value`` checked for a field of ``kind``: numbers must be numbers, booleans booleans.

    YAML 1.1 reads ``yes``/``no``/``on``/``off`` as booleans; pydantic's lax mode would then make them
    ``1``/``0`` (``retry.max_attempts: on`` -> one attempt). Strings still convert (``${VAR}``
    substitution yields strings): an int field takes ``"384"``, a float field ``"0.5"``, a bool field
    ``"true"``/``"false"`` only.
    """
    if kind is None or value is None:
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif not isinstance(value, bool) and _number_ok(kind, value):
        return value
    raise ValueError(f"expected {_KIND_NAMES[kind]}, got {_kind_of(value)} ({quote(value)})")


class StrictModel(BaseModel):
    """Base of every config model: unknown keys refused, frozen, strict numbers and booleans (see
    :func:`strict_scalar`), and URL passwords masked in ``repr``/``str``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        return strict_scalar(_scalar_kind(cls, info.field_name) if info.field_name else None, value)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_urls(value)


def validation_message(exc: ValidationError) -> str:
    """``key.path: reason; ...`` for a ValidationError, WITHOUT the input values pydantic would quote
    (a model-level error quotes the whole block, connection strings and keys included)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(cap_message(f"{loc}: {err['msg']}" if loc else str(err["msg"])))
    return "; ".join(parts)


def validate_block(model: type[M], data: Mapping[str, Any], path: str) -> M:
    """``model`` validated from a plain mapping; a :class:`~aixpy.errors.ConfigError` at ``path`` otherwise.

    The error is raised outside ``except`` and not chained: pydantic's ValidationError quotes input
    values (secrets).
    """
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        message = validation_message(e)
    raise ConfigError(message, path=path)
