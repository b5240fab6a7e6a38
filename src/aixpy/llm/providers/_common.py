"""What every provider module shares: API keys, endpoints and their URL policy."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aixpy.errors import ConfigError
from aixpy.http import LOCAL_HOSTS, URLPolicy, classify_ip, local_policy, public_policy

__all__ = ["endpoint_target", "is_local_host", "resolve_key", "secret"]

_LOCAL_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")


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


def endpoint_target(endpoint: str | None, default_url: str, official_hosts: Sequence[str], *,
                    policy: URLPolicy | None = None,
                    environ: Mapping[str, str] | None = None) -> tuple[str, URLPolicy]:
    """``(base URL, URL policy)`` for a provider.

    No ``endpoint``: the official URL, allowed by a public policy of the official hosts. A configured
    ``endpoint`` replaces it and is the only host allowed: a loopback or private host (a local proxy,
    vLLM, a test server) gets the local policy (http allowed), any other host the public policy (https,
    public addresses only). ``policy`` overrides the choice.
    """
    if endpoint is None:
        return default_url, policy or public_policy(*official_hosts)
    url = endpoint.strip().rstrip("/")
    host = urlsplit(url).hostname
    if not host:
        raise ConfigError(f"endpoint {endpoint!r} is not an http(s) URL", path="endpoint")
    if policy is not None:
        return url, policy
    if is_local_host(host):
        return url, local_policy(extra_hosts=[host], environ=environ)
    return url, public_policy(host)

