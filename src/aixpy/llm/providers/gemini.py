"""Google Gemini API: ``https://generativelanguage.googleapis.com``, key in ``x-goog-api-key`` (never
in the URL) from ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from aixpy.http import URLPolicy, endpoint_target, resolve_key
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs import gemini as codec
from aixpy.llm.codecs.gemini import GeminiAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["BASE_URL", "DEFAULT_MODEL", "ENV_KEYS", "GeminiModel", "create"]

PROVIDER = "gemini"
BASE_URL = codec.BASE_URL
HOST = "generativelanguage.googleapis.com"
ENV_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
DEFAULT_MODEL = "gemini-2.5-flash"
CAPABILITIES = Capabilities(tools=True, json_schema=True, vision=True)


class GeminiModel(HttpChatModel):
    """Gemini through the Gemini API (``version="v1"`` for the stable surface; default ``v1beta``)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, api_key: Any = None, endpoint: str | None = None,
                 version: str = codec.API_VERSION, policy: URLPolicy | None = None,
                 environ: Mapping[str, str] | None = None, **options: Unpack[HttpOptions]) -> None:
        key = resolve_key(api_key, ENV_KEYS, provider=PROVIDER, environ=environ)
        base, pol = endpoint_target(endpoint, BASE_URL, (HOST,), policy=policy, environ=environ)
        super().__init__(provider=PROVIDER, model=model, api=GeminiAPI(version=version), base_url=base, policy=pol,
                         secret_headers={"x-goog-api-key": str(key)}, capabilities=CAPABILITIES, **options)


def create(settings: ProviderSettings) -> GeminiModel:
    return GeminiModel(settings.model or DEFAULT_MODEL, api_key=settings.api_key, endpoint=settings.endpoint,
                       version=settings.option("version", codec.API_VERSION), policy=settings.option("policy"),
                       environ=settings.environ, **settings.http())
