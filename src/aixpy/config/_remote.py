"""What every remote provider block shares: ``endpoint`` (``base_url`` accepted as its alias), extra
request ``headers`` and ``allow_auth_override``.

* ``endpoint`` is the one name of a provider's URL, LLM or embeddings; ``base_url`` is read as the same
  key, and giving both is an error naming both.
* ``headers`` (a mapping of names to values; values may use ``${VAR}``) are sent with every request
  (gateways need them). Their values are treated as secrets: never logged, shown or kept across a
  redirect off the endpoint's origin. Names must be HTTP tokens and values may not hold CR, LF or other
  control characters. A header carrying credentials (:data:`AUTH_HEADERS`) cannot be set here: it
  would replace the key the provider sends; ``allow_auth_override: true`` allows it, deliberately.
  Headers that frame the request (:data:`RESERVED_HEADERS`) can never be set.

:func:`header_problem` is the rule itself, shared with :func:`aixpy.http.request_headers`, which
applies it again with the exact headers a provider sets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, SecretStr, model_validator

from aixpy.config._base import ConfigValueError, StrictModel

__all__ = ["AUTH_HEADERS", "RESERVED_HEADERS", "RemoteSettings", "check_headers", "header_problem", "plain",
           "url_alias"]

AUTH_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"})
"""Header names (lower case) that carry a provider's credentials: refused in ``headers:`` unless
``allow_auth_override`` is true."""

RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-type",
                              "user-agent", "te", "upgrade", "trailer", "keep-alive"})
"""Header names (lower case) aixpy or the HTTP layer sets to frame the request: never configurable."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: Any, value: Any, *, allow_auth_override: bool = False) -> str | None:
    """Why ``name: value`` cannot be an extra request header, or ``None`` when it can.

    The reason names the header, never its value (a value is a secret).
    """
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        return f"header name {str(name)[:40]!r} is not a valid HTTP header name"
    if not isinstance(value, str):
        return f"header {name}: the value must be a string"
    if _BAD_VALUE.search(value):
        return f"header {name}: the value holds a control character (CR, LF...)"
    low = name.lower()
    if low in RESERVED_HEADERS:
        return f"header {name} is set by aixpy and cannot be configured"
    if low in AUTH_HEADERS and not allow_auth_override:
        return (f"header {name} would replace the provider's credentials: give the key as api_key, or set "
                "allow_auth_override: true to send this header instead")
    return None


def plain(value: Any) -> Any:
    """The text of a header value given as ``str`` or ``SecretStr`` (anything else as is)."""
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else value


def check_headers(headers: Mapping[str, Any] | None, *, allow_auth_override: bool = False) -> None:
    """A :class:`~aixpy.config._base.ConfigValueError` at ``headers.<name>`` for the first bad header;
    also refuses two names that differ only in case (both would be sent)."""
    seen: set[str] = set()
    for name, value in (headers or {}).items():
        problem = header_problem(name, plain(value), allow_auth_override=allow_auth_override)
        if problem is None and name.lower() in seen:
            problem = f"header {name} is given twice (header names ignore case)"
        if problem is not None:
            raise ConfigValueError(problem, "headers", str(name)[:40])
        seen.add(name.lower())


def url_alias(data: Any, field: str, aliases: tuple[str, ...]) -> Any:
    """``data`` with an alias key (``base_url``) renamed to ``field`` (``endpoint``); both given is a
    :class:`~aixpy.config._base.ConfigValueError` naming both."""
    if not isinstance(data, Mapping):
        return data
    given = [k for k in (field, *aliases) if k in data]
    if len(given) > 1:
        raise ConfigValueError(f"{' and '.join(given)} are the same setting: give only one of them", given[-1])
    if given and given[0] != field:
        out = dict(data)
        out[field] = out.pop(given[0])
        return out
    return data


class RemoteSettings(StrictModel):
    """The keys every remote provider block has besides its own (see the module docstring)."""

    headers: dict[str, SecretStr] | None = Field(
        None, description="extra request headers (gateways); values are secrets, ${VAR} allowed")
    allow_auth_override: bool = Field(
        False, description="let headers replace the provider's credential header (Authorization, x-api-key...)")

    _endpoint_key: str = PrivateAttr("endpoint")

    @model_validator(mode="wrap")
    @classmethod
    def _endpoint_alias(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        model = handler(url_alias(data, "endpoint", ("base_url",)))
        if isinstance(data, Mapping) and "base_url" in data and isinstance(model, RemoteSettings):
            model._endpoint_key = "base_url"
        return model

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's, with ``base_url`` in ``update`` read as ``endpoint`` (it was the field's name)."""
        return super().model_copy(update=url_alias(update, "endpoint", ("base_url",)), deep=deep)

    @property
    def endpoint_key(self) -> str:
        """The key the endpoint was given under (``endpoint`` or ``base_url``), for errors to name it."""
        return self._endpoint_key

    @model_validator(mode="after")
    def _check_headers(self) -> RemoteSettings:
        check_headers(self.headers, allow_auth_override=self.allow_auth_override)
        return self
