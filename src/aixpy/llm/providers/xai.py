"""xAI (Grok): OpenAI-compatible at ``https://api.x.ai/v1``, bearer key from ``XAI_API_KEY``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from aixpy.http import URLPolicy, endpoint_target, openai_base, resolve_key
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs.openai_chat import OpenAIChatAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["BASE_URL", "DEFAULT_MODEL", "ENV_KEYS", "XAIModel", "create"]

PROVIDER = "xai"
BASE_URL = "https://api.x.ai/v1"
HOST = "api.x.ai"
ENV_KEYS = ("XAI_API_KEY",)
DEFAULT_MODEL = "grok-4"
CAPABILITIES = Capabilities(tools=True, json_schema=True, vision=True)


class XAIModel(HttpChatModel):
    """xAI's Grok models through their OpenAI-compatible Chat Completions API."""

    def __init__(self, model: str = DEFAULT_MODEL, *, api_key: Any = None, endpoint: str | None = None,
                 policy: URLPolicy | None = None, environ: Mapping[str, str] | None = None,
                 **options: Unpack[HttpOptions]) -> None:
        key = resolve_key(api_key, ENV_KEYS, provider=PROVIDER, environ=environ)
        base, pol = endpoint_target(openai_base(endpoint), BASE_URL, (HOST,), policy=policy, environ=environ)
        super().__init__(provider=PROVIDER, model=model, api=OpenAIChatAPI(), base_url=base, policy=pol,
                         secret_headers={"Authorization": f"Bearer {key}"}, capabilities=CAPABILITIES, **options)


def create(settings: ProviderSettings) -> XAIModel:
    return XAIModel(settings.model or DEFAULT_MODEL, api_key=settings.api_key, endpoint=settings.endpoint,
                    policy=settings.option("policy"), environ=settings.environ, **settings.http())
