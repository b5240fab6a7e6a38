"""The strict base model every config block uses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from aixpy.errors import ConfigError

__all__ = ["Seconds", "StrictModel", "validate_block", "validation_message"]

M = TypeVar("M", bound=BaseModel)


def _to_seconds(value: Any) -> Any:
    """A number of seconds, or a duration string like the guide's (``"500ms"``, ``"1s"``, ``"2m"``)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        from aixpy.config.llm import parse_duration  # imported late: config.llm imports the store configs

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
