"""``provider: ollama``: a local Ollama server's ``POST /api/embed``.

>>> from aixpy import embeddings
>>> svc = embeddings.new({"provider": "ollama", "ollama": {"model": "nomic-embed-text"}})  # doctest: +SKIP

* **Where**: ``endpoint`` (alias ``base_url``) when set in the config, else ``OLLAMA_HOST``, else
  ``http://localhost:11434``
  (``host``, ``host:port`` or a URL; ``0.0.0.0`` means this machine), with the same URL policy as the
  Ollama LLM provider: loopback, private addresses and ``ollama``-style container names (plus
  ``OLLAMA_ALLOWED_HOSTS``) over http; a public host only over https. No key.
* **Options**: ``truncate`` (default true: inputs longer than the context are cut; false makes them an
  error), ``keep_alive`` (how long the model stays loaded), ``dimensions`` (sent: shorter vectors for
  models that support it, and the expected width).
* **Dimensions**: ``dimensions``, else a few well-known Ollama models (``nomic-embed-text`` 768,
  ``mxbai-embed-large`` 1024, ``all-minilm`` 384...), else learned from the first answer
  (:meth:`~aixpy.embeddings.base.EmbeddingService.dimensions` embeds a short probe text if asked first).
* **Batching**: ``batch_size`` texts per request (default 64); ``max_concurrency`` defaults to 1, since
  one local server works through its queue anyway; order always kept. Usage is ``prompt_eval_count``.
  No retries here: wrap the service in the retry policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aixpy.config.embeddings import EmbeddingsConfig, OllamaEmbeddingsConfig
from aixpy.embeddings._remote import RemoteEmbeddings
from aixpy.embeddings.base import Embedded
from aixpy.embeddings.codecs import ollama as codec
from aixpy.http import RequestHook, URLPolicy, endpoint_target, server_url

__all__ = ["DEFAULT_TIMEOUT", "KNOWN_OLLAMA_DIMENSIONS", "OllamaEmbeddings", "create"]

PROVIDER = "ollama"
HOST_ENV = "OLLAMA_HOST"
DEFAULT_URL = "http://localhost:11434"
DEFAULT_PORT = 11434
DEFAULT_TIMEOUT = 300.0
"""Seconds per request: the first one may have to load the model from disk."""

KNOWN_OLLAMA_DIMENSIONS: dict[str, int] = {
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
    "snowflake-arctic-embed": 1024,
    "bge-m3": 1024,
}
"""Widths of a few Ollama library models (name or ``name:latest``); others are learned."""


def _known_dimensions(model: str) -> int | None:
    name = model.removesuffix(":latest")
    return KNOWN_OLLAMA_DIMENSIONS.get(name)


class OllamaEmbeddings(RemoteEmbeddings):
    """Ollama embeddings; see the module docstring.

    Args:
        config: the ``ollama:`` block.
        environ: where ``OLLAMA_HOST`` / ``OLLAMA_ALLOWED_HOSTS`` are read (default ``os.environ``).
        policy: override the SSRF URL policy.
        options: Ollama model options sent with each request (e.g. ``{"num_ctx": 2048}``).
        timeout, max_concurrency, on_request: see :class:`~aixpy.embeddings._remote.RemoteEmbeddings`.
    """

    provider = PROVIDER

    def __init__(
        self,
        config: OllamaEmbeddingsConfig | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        policy: URLPolicy | None = None,
        options: Mapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_concurrency: int = 1,
        on_request: Sequence[RequestHook] = (),
    ) -> None:
        cfg = config or OllamaEmbeddingsConfig()
        explicit = cfg.endpoint if "endpoint" in cfg.model_fields_set else None
        url = server_url(explicit, env_var=HOST_ENV, default_url=DEFAULT_URL, default_port=DEFAULT_PORT,
                         environ=environ, key=cfg.endpoint_key)
        base, pol = endpoint_target(url, url, (), policy=policy, environ=environ, key=cfg.endpoint_key)
        dims = cfg.dimensions if cfg.dimensions is not None else _known_dimensions(cfg.model)
        super().__init__(model=cfg.model, dimensions=dims, base_url=base, policy=pol, timeout=timeout,
                         batch_size=cfg.batch_size, max_concurrency=max_concurrency, on_request=on_request,
                         extra_headers=cfg.headers, allow_auth_override=cfg.allow_auth_override)
        self.config = cfg
        self.options = dict(options or {})

    def _body(self, texts: list[str]) -> dict[str, Any]:
        c = self.config
        return codec.build_request(texts, model=self._model, truncate=c.truncate, keep_alive=c.keep_alive,
                                   dimensions=c.dimensions, options=self.options)

    def _parse(self, body: bytes, n: int) -> Embedded:
        vectors, tokens = codec.parse_response(body, n, provider=PROVIDER, model=self._model)
        return Embedded(vectors, tokens)

    def _embed_part(self, texts: list[str]) -> Embedded:
        return self._parse(self._post(codec.PATH, self._body(texts)), len(texts))

    async def _aembed_part(self, texts: list[str]) -> Embedded:
        return self._parse(await self._apost(codec.PATH, self._body(texts)), len(texts))


def create(config: EmbeddingsConfig, **kw: Any) -> OllamaEmbeddings:
    """Registry factory for ``provider: ollama`` (keyword options go to :class:`OllamaEmbeddings`)."""
    c = config.ollama or OllamaEmbeddingsConfig()
    opts: dict[str, Any] = {"options": c.options, "timeout": c.timeout, "max_concurrency": c.max_concurrency}
    return OllamaEmbeddings(c, **(opts | kw))
