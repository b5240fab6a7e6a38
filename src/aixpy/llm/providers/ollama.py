"""Ollama: the native API at ``OLLAMA_HOST`` (default ``http://localhost:11434``), no key, local policy.

``OLLAMA_HOST`` may be ``host``, ``host:port`` or a URL: without a scheme the port defaults to
11434, and ``0.0.0.0`` (a server bind address) means this machine. The URL policy is the local one
(loopback, private addresses, ``ollama``/``ollama-service`` and ``OLLAMA_ALLOWED_HOSTS``) plus the
configured host; a remote https host gets the public policy. Every model costs 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

from aixpy.errors import AixpyError
from aixpy.http import URLPolicy, endpoint_target, server_url
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs import ollama as codec
from aixpy.llm.codecs.ollama import LocalModel, OllamaAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["DEFAULT_HOST", "DEFAULT_MODEL", "LocalModel", "OllamaModel", "base_url", "create"]

PROVIDER = "ollama"
DEFAULT_HOST = codec.DEFAULT_BASE_URL
HOST_ENV = "OLLAMA_HOST"
DEFAULT_PORT = 11434
DEFAULT_MODEL = "llama3.2"
DEFAULT_TIMEOUT = 300.0
CAPABILITIES = Capabilities(tools=True, json_schema=True, vision=True)


def base_url(endpoint: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The server URL from ``endpoint``, else ``OLLAMA_HOST``, else ``http://localhost:11434``."""
    return server_url(endpoint, env_var=HOST_ENV, default_url=DEFAULT_HOST, default_port=DEFAULT_PORT, environ=environ)


class OllamaModel(HttpChatModel):
    """A model served by Ollama (``/api/chat``, NDJSON streaming; ``/api/tags`` for local models)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, endpoint: str | None = None, policy: URLPolicy | None = None,
                 environ: Mapping[str, str] | None = None, **options: Unpack[HttpOptions]) -> None:
        url = base_url(endpoint, environ)
        base, pol = endpoint_target(url, url, (), policy=policy, environ=environ)
        options.setdefault("timeout", DEFAULT_TIMEOUT)
        super().__init__(provider=PROVIDER, model=model, api=OllamaAPI(), base_url=base, policy=pol,
                         capabilities=CAPABILITIES, **options)

    def available(self, timeout: float = 2.0) -> bool:
        """Whether the server answers ``GET /`` within ``timeout`` seconds."""
        try:
            self.http.request("GET", "/", timeout=timeout)
        except AixpyError:
            return False
        return True

    async def aavailable(self, timeout: float = 2.0) -> bool:
        """Async twin of :meth:`available`."""
        try:
            await self.http.arequest("GET", "/", timeout=timeout)
        except AixpyError:
            return False
        return True

    def local_models(self, timeout: float | None = None) -> list[LocalModel]:
        """The models pulled on the server, with their sizes (``GET /api/tags``)."""
        return codec.parse_tags(self.http.request("GET", codec.TAGS_PATH, timeout=timeout).content)

    async def alocal_models(self, timeout: float | None = None) -> list[LocalModel]:
        """Async twin of :meth:`local_models`."""
        return codec.parse_tags((await self.http.arequest("GET", codec.TAGS_PATH, timeout=timeout)).content)


def create(settings: ProviderSettings) -> OllamaModel:
    return OllamaModel(settings.model or DEFAULT_MODEL, endpoint=settings.endpoint, policy=settings.option("policy"),
                       environ=settings.environ, **settings.http())
