"""OpenAI: ``https://api.openai.com/v1``, bearer key from ``OPENAI_API_KEY``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from aixpy.http import URLPolicy, endpoint_target, openai_base, resolve_key
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs.openai_chat import OpenAIChatAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["BASE_URL", "DEFAULT_MODEL", "ENV_KEYS", "OpenAIModel", "create"]

PROVIDER = "openai"
BASE_URL = "https://api.openai.com/v1"
HOST = "api.openai.com"
ENV_KEYS = ("OPENAI_API_KEY",)
DEFAULT_MODEL = "gpt-4o-mini"
CAPABILITIES = Capabilities(tools=True, json_schema=True, vision=True)


class OpenAIModel(HttpChatModel):
    """OpenAI Chat Completions. ``endpoint`` replaces the base URL (e.g. an Azure-style gateway)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, api_key: Any = None, endpoint: str | None = None,
                 organization: str | None = None, project: str | None = None, policy: URLPolicy | None = None,
                 environ: Mapping[str, str] | None = None, **options: Unpack[HttpOptions]) -> None:
        key = resolve_key(api_key, ENV_KEYS, provider=PROVIDER, environ=environ)
        base, pol = endpoint_target(openai_base(endpoint), BASE_URL, (HOST,), policy=policy, environ=environ)
        headers = {k: v for k, v in (("OpenAI-Organization", organization), ("OpenAI-Project", project)) if v}
        super().__init__(provider=PROVIDER, model=model, api=OpenAIChatAPI(), base_url=base, policy=pol,
                         secret_headers={"Authorization": f"Bearer {key}"}, headers=headers,
                         capabilities=CAPABILITIES, **options)


def create(settings: ProviderSettings) -> OpenAIModel:
    return OpenAIModel(settings.model or DEFAULT_MODEL, api_key=settings.api_key, endpoint=settings.endpoint,
                       organization=settings.option("organization"), project=settings.option("project"),
                       policy=settings.option("policy"), environ=settings.environ, **settings.http())
