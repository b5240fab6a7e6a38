"""Where a provider's requests go: configured endpoints, their URL policy, and API keys (no I/O).

Shared by every provider module, LLM or embeddings. One rule for every endpoint, whatever the
provider: a backslash or credentials (``user:password@``) in it is a :class:`~aixpy.errors.ConfigError`
naming the key, raised before the URL is split, rebuilt or used. URL parsers disagree on both (a
WHATWG parser reads ``http://a\\@b/`` as host ``a``, Python's ``urlsplit`` as host ``b``), and
credentials dropped on the way would be a silent surprise. The message never repeats the URL, so a
password in it is not echoed.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aixpy.errors import ConfigError
from aixpy.http._ssrf import LOCAL_HOSTS, URLPolicy, classify_ip, local_policy, public_policy

__all__ = ["check_endpoint", "endpoint_target", "is_local_host", "resolve_key", "secret", "server_url"]

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
