"""The ``sessions:`` block: where ``session=`` conversations (``aixpy ask/run --session``) are kept.

::

    sessions:
      backend: redis                 # or file (the default): one JSON file per session under `path`
      url: ${REDIS_URL}              # redis://[:password@]host:6379/0 (the password is masked in reprs)
      ttl: 24h                       # redis: idle sessions expire (default: never)
      max_tokens: 8000               # history budget: the oldest turns are dropped beyond it (null: no trim)

Read by :func:`aixpy.agents.sessions.default_store`. Without a ``sessions:`` block,
``$AIXPY_SESSIONS_REDIS_URL`` (when set) still selects Redis, else files under ``./.aixpy/sessions``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aixpy.config._base import ConfigValueError, PositiveDuration, RedisURL, StrictModel

__all__ = ["SessionsConfig"]


class SessionsConfig(StrictModel):
    """``sessions:``. ``backend: file`` keeps each session in ``<path>/<id>.json`` (``path`` defaults to
    ``.aixpy/sessions``, relative to the working directory); ``backend: redis`` keeps it under
    ``<prefix><id>`` in the Redis at ``url`` (required), expiring after ``ttl`` idle (default: never)."""

    backend: Literal["file", "redis"] = "file"
    path: str | None = Field(None, min_length=1, description="file backend: the sessions directory")
    url: RedisURL | None = Field(None, description="redis backend: redis://host:6379/0")
    prefix: str = Field("aixpy:session:", min_length=1, description="redis backend: key prefix")
    ttl: PositiveDuration | None = Field(None, description="redis backend: idle sessions expire after this")
    max_tokens: int | None = Field(8000, ge=1, description="history kept, in estimated tokens; null: all of it")

    @model_validator(mode="after")
    def _per_backend(self) -> SessionsConfig:
        if self.backend == "redis":
            if self.url is None:
                raise ConfigValueError("backend: redis needs url (e.g. redis://localhost:6379/0)", "url")
            if self.path is not None:
                raise ConfigValueError("path applies to backend: file, not redis", "path")
        else:
            for key in ("url", "ttl"):
                if getattr(self, key) is not None:
                    raise ConfigValueError(f"{key} applies to backend: redis, not file", key)
            if "prefix" in self.model_fields_set:
                raise ConfigValueError("prefix applies to backend: redis, not file", "prefix")
        return self
