"""The ``serve:`` block: how ``aixpy serve`` listens and whom it serves (read by :mod:`aixpy.serve`)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from aixpy.config._base import ConfigValueError, Seconds, StrictModel

__all__ = ["ServeConfig", "ServeKeyConfig"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ServeKeyConfig(StrictModel):
    """One client API key: its SHA-256 (hex), never the key itself; ``models``: the model ids it may use
    (agents, model services, ``provider:model`` entries of ``allow_models``, the embedding model);
    ``None`` = every exposed one. ``disabled: true`` revokes it without deleting the entry."""

    name: str = Field(min_length=1, max_length=100)
    sha256: str
    models: list[str] | None = None
    disabled: bool = False

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SHA256.match(value):
            raise ValueError("sha256 must be 64 hex digits (sha256 of the key, e.g. `aixpy serve --hash-key`)")
        return value


class ServeConfig(StrictModel):
    """``serve:``. Defaults are strict: loopback only, no direct ``provider:model`` access."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    api_keys: list[ServeKeyConfig] = Field(default_factory=list)
    allow_models: list[str] = Field(
        default_factory=list, description="'provider:model' specs clients may name directly (default: none; "
        "only configured agents and model services are served)")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024,
                                  description="largest request line + headers (uvicorn's h11 limit)")
    graceful_shutdown: Seconds = Field(30.0, ge=0, le=3600,
                                       description="seconds in-flight requests get to finish on SIGTERM")
    ready_timeout: Seconds = Field(5.0, gt=0, le=300, description="seconds /readyz waits for the stores")

    @field_validator("allow_models")
    @classmethod
    def _specs(cls, value: list[str]) -> list[str]:
        for spec in value:
            if ":" not in spec or spec.startswith(":") or spec.endswith(":"):
                raise ValueError(f"allow_models entries are 'provider:model', got {spec!r}")
        return value

    @model_validator(mode="after")
    def _unique_keys(self) -> ServeConfig:
        seen: dict[str, int] = {}
        for i, key in enumerate(self.api_keys):
            if key.name in seen:
                raise ConfigValueError(f"api key name {key.name!r} is already used by api_keys[{seen[key.name]}]",
                                       "api_keys", i, "name")
            seen[key.name] = i
        return self
