"""Any OpenAI-compatible server: vLLM, llama.cpp's ``llama-server``, TGI's ``/v1``, LM Studio, a gateway.

The ``endpoint`` is required: it is the base URL that ``/chat/completions`` is appended to (e.g.
``http://localhost:8000/v1``); a bare origin (``http://localhost:8000``) gets ``/v1``, any other path is
kept as given (:func:`aixpy.http.openai_base`). A loopback or private host gets the local URL policy (http allowed),
any other host the public one (https, that host only). The key is optional (``api_key``) and no
environment variable is read: servers differ. Prices are unknown (cost ``None``) unless registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from aixpy.errors import ConfigError
from aixpy.http import URLPolicy, endpoint_target, openai_base, secret
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs.openai_chat import OpenAIChatAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["OpenAICompatibleModel", "create"]

PROVIDER = "openai_compatible"


class OpenAICompatibleModel(HttpChatModel):
    """An OpenAI-compatible chat server at an explicit ``endpoint``.

    ``stream_usage=False`` for old servers that reject ``stream_options``; ``provider`` renames the
    provider in answers and errors (e.g. ``"vllm"``).
    """

    def __init__(self, model: str, *, endpoint: str | None, api_key: Any = None, stream_usage: bool = True,
                 provider: str = PROVIDER, vision: bool = False, policy: URLPolicy | None = None,
                 environ: Mapping[str, str] | None = None, **options: Unpack[HttpOptions]) -> None:
        if not endpoint:
            raise ConfigError("the openai_compatible provider needs an endpoint, e.g. http://localhost:8000/v1",
                              path="endpoint")
        key = secret(api_key)
        url = openai_base(endpoint)
        base, pol = endpoint_target(url, url or endpoint, (), policy=policy, environ=environ)
        super().__init__(provider=provider, model=model, api=OpenAIChatAPI(stream_usage=stream_usage), base_url=base,
                         policy=pol, secret_headers={"Authorization": f"Bearer {key}"} if key else None,
                         capabilities=Capabilities(tools=True, json_schema=True, vision=vision), **options)


def create(settings: ProviderSettings) -> OpenAICompatibleModel:
    if not settings.model:
        raise ConfigError("the openai_compatible provider needs a model name", path="model")
    return OpenAICompatibleModel(settings.model, endpoint=settings.endpoint, api_key=settings.api_key,
                                 stream_usage=bool(settings.option("stream_usage", True)),
                                 vision=bool(settings.option("vision", False)), policy=settings.option("policy"),
                                 environ=settings.environ, **settings.http())
