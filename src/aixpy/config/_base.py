"""The strict base model every config block uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["StrictModel", "validation_message"]


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
