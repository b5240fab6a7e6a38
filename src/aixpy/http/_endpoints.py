"""Where a provider's requests go: configured endpoints, their URL policy, and API keys (no I/O).

Shared by every provider module, LLM or embeddings. One rule for every endpoint, whatever the
provider: a backslash or credentials (``user:password@``) in it is a :class:`~aixpy.errors.ConfigError`
naming the key, raised before the URL is split, rebuilt or used. URL parsers disagree on both (a
WHATWG parser reads ``http://a\\@b/`` as host ``a``, Python's ``urlsplit`` as host ``b``), and
credentials dropped on the way would be a silent surprise. The message never repeats the URL, so a
password in it is not echoed.

OpenAI-style base URLs (:func:`openai_base`): an endpoint that is a bare origin (no path, or only ``/``)
gets ``/v1``; any other path is the base as given (trailing ``/`` dropped). So ``https://gw.example``,
``https://gw.example/`` and ``https://gw.example/v1/`` all post to ``https://gw.example/v1/chat/completions``,
while ``https://gw.example/openai/v1`` or ``https://gw.example/api`` keep their prefix.

Extra request headers (:func:`request_headers`): the ``headers:`` a provider block configures, checked by
one rule (:func:`aixpy.config._remote.header_problem`) plus the headers that provider sets itself, and
merged with its credentials into the secret headers of its client.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aixpy.config._remote import AUTH_HEADERS, header_problem, plain
from aixpy.errors import ConfigError
from aixpy.http._ssrf import LOCAL_HOSTS, URLPolicy, classify_ip, local_policy, public_policy

__all__ = ["check_endpoint", "endpoint_target", "is_local_host", "openai_base", "request_headers", "resolve_key",
           "secret", "server_url"]

_LOCAL_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")
_AUTHORITY_END = re.compile(r"[/?#]")


def secret(value: Any) -> str | None:
    """The plain text of a key given as ``str`` or pydantic ``SecretStr`` (``None`` stays ``None``)."""
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else value
    return str(text) if text else None


def resolve_key(explicit: Any, env_vars: Sequence[str], *, provider: str,
                environ: Mapping[str, str] | None = None, required: bool = True) -> str | None:
    """The API key: the explicit one (config ``api_key``), else the first set environment variable.

    Raises :class:`~aixpy.errors.ConfigError` naming the variables to set when none is found and
    ``required`` (before any request is made, so a missing key is never a 401 from the provider).
    """
    key = secret(explicit)
    if key:
        return key
    env = os.environ if environ is None else environ
    for name in env_vars:
        value = env.get(name, "").strip()
        if value:
            return value
    if not required:
        return None
    names = " or ".join(env_vars)
    raise ConfigError(f"no API key for {provider}: set the environment variable {names}, or api_key in the config",
                      path="api_key")


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine or a private network (loopback/private IP, ``localhost``,
    a single-label container name such as ``ollama`` or ``vllm``, or ``*.local``/``*.internal``...)."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host in LOCAL_HOSTS or "." not in host or host.endswith(_LOCAL_SUFFIXES)
    return classify_ip(ip).category in ("loopback", "private", "cgnat")


def check_endpoint(endpoint: str, key: str = "endpoint") -> str:
    """``endpoint`` stripped of surrounding whitespace; a :class:`~aixpy.errors.ConfigError` at ``key``
    when it holds a backslash or userinfo (``user:password@host``), with or without a scheme."""
    text = endpoint.strip()
    if "\\" in text:
        raise ConfigError("a backslash is not allowed in an endpoint URL (URL parsers disagree on where its host "
                          "ends)", path=key)
    rest = text.split("://", 1)[1] if "://" in text else text
    authority = _AUTHORITY_END.split(rest.lstrip("/"), maxsplit=1)[0]
    if "@" in authority:
        raise ConfigError("credentials (user:password@) are not allowed in an endpoint URL; give the key as "
                          "api_key", path=key)
    return text


def endpoint_target(endpoint: str | None, default_url: str, official_hosts: Sequence[str], *,
                    policy: URLPolicy | None = None, environ: Mapping[str, str] | None = None,
                    key: str = "endpoint") -> tuple[str, URLPolicy]:
    """``(base URL, URL policy)`` for a provider.

    No ``endpoint``: the official URL, allowed by a public policy of the official hosts. A configured
    ``endpoint`` (checked by :func:`check_endpoint`; ``key`` names it in errors) replaces it and is the
    only host allowed: a loopback or private host (a local proxy, vLLM, a test server) gets the local
    policy (http allowed), any other host the public policy (https, public addresses only). ``policy``
    overrides the choice.
    """
    if endpoint is None:
        return default_url, policy or public_policy(*official_hosts)
    url = check_endpoint(endpoint, key).rstrip("/")
    host = urlsplit(url).hostname
    if not host:
        raise ConfigError(f"endpoint {url!r} is not an http(s) URL", path=key)
    if policy is not None:
        return url, policy
    if is_local_host(host):
        return url, local_policy(extra_hosts=[host], environ=environ)
    return url, public_policy(host)


def server_url(endpoint: str | None, *, env_var: str, default_url: str, default_port: int,
               environ: Mapping[str, str] | None = None, key: str = "endpoint") -> str:
    """The URL of a self-hosted server: ``endpoint``, else the environment variable ``env_var``, else
    ``default_url``, normalised.

    The value may be ``host``, ``host:port`` or a URL (checked by :func:`check_endpoint`, errors name
    ``key``, or ``env_var`` when the value came from there). Without a scheme it is http on
    ``default_port``; a bind-all address (``0.0.0.0``, ``::``) means this machine.
    """
    env = os.environ if environ is None else environ
    where = key if endpoint else env_var
    raw = check_endpoint(endpoint or env.get(env_var) or default_url, where)
    default: int | None = None
    if "://" not in raw:
        raw, default = "http://" + raw, default_port
    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"invalid server address {raw!r}", path=where) from None
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        raise ConfigError(f"invalid server address {raw!r}", path=where)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    port = port or default
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def openai_base(endpoint: str | None) -> str | None:
    """An OpenAI-style base URL (the one ``/chat/completions`` or ``/embeddings`` is appended to):
    ``endpoint`` with ``/v1`` added when it is a bare origin, else as given without trailing ``/``
    (see the module docstring). ``None`` stays ``None``; the URL is not checked here."""
    if endpoint is None:
        return None
    url = endpoint.strip().rstrip("/")
    rest = url.split("://", 1)[1] if "://" in url else url
    return url if _AUTHORITY_END.search(rest) else url + "/v1"


def request_headers(extra: Mapping[str, Any] | None, auth: Mapping[str, str] | None = None, *,
                    fixed: Iterable[str] = (), allow_auth_override: bool = False,
                    key: str = "headers") -> dict[str, str]:
    """The secret headers of a provider's client: its credentials ``auth`` plus the configured ``extra``.

    Each extra header must pass :func:`~aixpy.config._remote.header_problem`; it may not repeat a header
    the provider sets (``fixed``, e.g. ``anthropic-version``), nor replace a credential header (the
    provider's ``auth`` names and :data:`~aixpy.config._remote.AUTH_HEADERS`) unless
    ``allow_auth_override``, in which case it replaces the provider's header of that name. Names
    compare without case. Errors are :class:`~aixpy.errors.ConfigError` at ``key.<name>``, never
    quoting a value.
    """
    out = dict(auth or {})
    auth_names = {k.lower() for k in out} | AUTH_HEADERS
    fixed_names = {k.lower() for k in fixed}
    seen: set[str] = set()
    for name, raw in (extra or {}).items():
        value = plain(raw)
        problem = header_problem(name, value, allow_auth_override=True)  # the name and value themselves
        low = str(name).lower()
        if problem is None and low in auth_names and not allow_auth_override:
            problem = header_problem(name, value) or (
                f"header {name} would replace the provider's credentials: set allow_auth_override to send it")
        if problem is None and low in fixed_names:
            problem = f"header {name} is set by the provider and cannot be configured"
        if problem is None and low in seen:
            problem = f"header {name} is given twice (header names ignore case)"
        if problem is not None:
            raise ConfigError(problem, path=f"{key}.{str(name)[:40]}")
        seen.add(low)
        if low in auth_names:
            out = {k: v for k, v in out.items() if k.lower() != low}
        out[name] = value
    return out
