"""What every config block uses: the strict base model, durations, and errors that name their key.

Durations (``timeout``, ``initial_backoff``...) accept ``"500ms"``, ``"1s"``, ``"2m"``, ``"1h"``,
Go-style combinations such as ``"1m30s"``, or a plain number of seconds; :data:`Duration` makes them
a :class:`datetime.timedelta`, :data:`Seconds` a float.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer, ValidationError

from aixpy.errors import ConfigError

__all__ = [
    "ConfigValueError",
    "Duration",
    "PositiveDuration",
    "Seconds",
    "StrictModel",
    "format_duration",
    "parse_duration",
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
    bad = ValueError(f"invalid duration {text!r}: use a number of seconds or a value like 500ms, 1s, 2m, 1h")
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



def _to_seconds(value: Any) -> Any:
    """A number of seconds, or a duration string like the guide's (``"500ms"``, ``"1s"``, ``"2m"``)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return parse_duration(value).total_seconds()
    return value


Seconds = Annotated[float, BeforeValidator(_to_seconds)]
"""Seconds as a float; YAML may also say ``"1s"``, ``"250ms"``, ``"2m"`` (as the guide's ``retry:`` does)."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def validation_message(exc: ValidationError) -> str:
    """``key.path: reason; ...`` for a ValidationError, WITHOUT the input values pydantic would quote
    (a model-level error quotes the whole block, connection strings and keys included)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
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
