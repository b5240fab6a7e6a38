"""Anthropic: ``https://api.anthropic.com`` (``/v1/messages``), key from ``ANTHROPIC_API_KEY``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from aixpy.http import URLPolicy, endpoint_target, resolve_key
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs.anthropic_messages import API_VERSION, AnthropicMessagesAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["BASE_URL", "DEFAULT_MODEL", "ENV_KEYS", "AnthropicModel", "create"]

PROVIDER = "anthropic"
BASE_URL = "https://api.anthropic.com"
HOST = "api.anthropic.com"
ENV_KEYS = ("ANTHROPIC_API_KEY",)
DEFAULT_MODEL = "claude-sonnet-5-5"
"""The current Sonnet (``claude-sonnet-4-5`` is deprecated, end of life 2026-11-30)."""
CAPABILITIES = Capabilities(tools=True, json_schema=True, vision=True)


class AnthropicModel(HttpChatModel):
    """Claude through the Messages API (``x-api-key``, ``anthropic-version``; ``beta`` features optional)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, api_key: Any = None, endpoint: str | None = None,
                 beta: Sequence[str] = (), policy: URLPolicy | None = None,
                 environ: Mapping[str, str] | None = None, **options: Unpack[HttpOptions]) -> None:
        key = resolve_key(api_key, ENV_KEYS, provider=PROVIDER, environ=environ)
        base, pol = endpoint_target(endpoint, BASE_URL, (HOST,), policy=policy, environ=environ)
        headers = {"anthropic-version": API_VERSION}
        if beta:
            headers["anthropic-beta"] = ",".join(beta)
        super().__init__(provider=PROVIDER, model=model, api=AnthropicMessagesAPI(), base_url=base, policy=pol,
                         secret_headers={"x-api-key": str(key)}, headers=headers, capabilities=CAPABILITIES,
                         **options)


def create(settings: ProviderSettings) -> AnthropicModel:
    return AnthropicModel(settings.model or DEFAULT_MODEL, api_key=settings.api_key, endpoint=settings.endpoint,
                          beta=settings.option("beta", ()), policy=settings.option("policy"),
                          environ=settings.environ, **settings.http())
