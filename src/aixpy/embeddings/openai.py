"""``provider: openai``: OpenAI's ``/embeddings``, or any OpenAI-compatible server (vLLM, llama.cpp...).

>>> from aixpy import embeddings
>>> svc = embeddings.new({"provider": "openai", "openai": {"model": "text-embedding-3-small"}})  # doctest: +SKIP
>>> svc.embed_batch(["machine learning", "deep learning"])                                    # doctest: +SKIP

* **Where**: ``endpoint`` (alias ``base_url``; default ``https://api.openai.com/v1``) + ``/embeddings``;
  a bare origin gets ``/v1``, any other path is kept as given (:func:`aixpy.http.openai_base`). The
  official host gets the public URL policy; a loopback or private ``endpoint`` (llama.cpp, vLLM, a proxy)
  the local policy; any other host is the only public host allowed. Azure-style paths are not supported.
* **Headers**: ``headers`` are sent with every request (secrets; see :mod:`aixpy.config._remote`).
* **Key**: ``api_key`` or ``OPENAI_API_KEY``, sent as ``Authorization: Bearer``; never logged or shown.
  Required for ``api.openai.com`` (a missing key is a :class:`~aixpy.errors.ConfigError` at construction);
  optional for other servers.
* **Dimensions**: ``dimensions`` is sent only for ``text-embedding-3-*`` models (it shortens the
  vectors); for ``ada-002`` or an unknown model on OpenAI it is a ``ConfigError``. On a compatible
  server with another model it declares the width (not sent; ``send_dimensions=True`` sends it), and
  without it the width is learned from the first answer. See
  :func:`aixpy.embeddings.codecs.openai.resolve_dimensions`.
* **Batching**: at most ``batch_size`` texts (default 100, at most 2048) and at most
  ``max_request_tokens`` (default 300,000, OpenAI's limit) per request, counting each text's UTF-8
  length in bytes as its tokens (an upper bound for byte-level BPE tokenizers, so a request never
  exceeds the limit); ``max_concurrency`` requests (default 4) in flight; order always kept.
  Inputs over 8192 tokens are the server's to reject (``InvalidRequestError``).
* **Usage**: ``usage.prompt_tokens`` of each answer (see :meth:`~aixpy.embeddings.base.EmbeddingService.
  embed_with_usage`); servers that omit it give an estimate.
* ``encoding_format="base64"`` halves the payload (decoded with numpy); the default ``"float"`` works
  with every compatible server. No retries here: wrap the service in the retry policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aixpy.config.embeddings import EmbeddingsConfig, OpenAIEmbeddingsConfig
from aixpy.embeddings._remote import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, RemoteEmbeddings, bearer
from aixpy.embeddings.base import Embedded, split_by_budget
from aixpy.embeddings.codecs import openai as codec
from aixpy.errors import ConfigError
from aixpy.http import RequestHook, URLPolicy, check_endpoint, endpoint_target, openai_base, resolve_key

__all__ = ["BASE_URL", "ENV_KEYS", "OpenAIEmbeddings", "create"]

PROVIDER = "openai"
BASE_URL = "https://api.openai.com/v1"
ENV_KEYS = ("OPENAI_API_KEY",)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


class OpenAIEmbeddings(RemoteEmbeddings):
    """OpenAI (or OpenAI-compatible) embeddings; see the module docstring.

    Args:
        config: the ``openai:`` block (model, endpoint, api_key, dimensions, batch_size, headers).
        environ: where ``OPENAI_API_KEY`` is looked up (default ``os.environ``).
        policy: override the SSRF URL policy.
        encoding_format: ``"float"`` or ``"base64"``.
        user: an end-user id sent with each request (OpenAI's abuse monitoring).
        send_dimensions: force sending (True) or never sending (False) ``dimensions``.
        max_request_tokens: token budget of one request (by UTF-8 bytes, see the module docstring).
        organization, project: ``OpenAI-Organization`` / ``OpenAI-Project`` headers.
        timeout, max_concurrency, on_request: see :class:`~aixpy.embeddings._remote.RemoteEmbeddings`.
    """

    provider = PROVIDER

    def __init__(
        self,
        config: OpenAIEmbeddingsConfig | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        policy: URLPolicy | None = None,
        encoding_format: codec.EncodingFormat = "float",
        user: str | None = None,
        send_dimensions: bool | None = None,
        max_request_tokens: int = codec.MAX_REQUEST_TOKENS,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        on_request: Sequence[RequestHook] = (),
    ) -> None:
        cfg = config or OpenAIEmbeddingsConfig()
        url = check_endpoint(openai_base(cfg.endpoint) or cfg.endpoint, cfg.endpoint_key)
        official = (urlsplit(url).hostname or "").lower() == codec.OFFICIAL_HOST
        expected, self._send_dimensions = codec.resolve_dimensions(cfg.model, cfg.dimensions, official=official,
                                                                   send=send_dimensions)
        if encoding_format not in codec.ENCODING_FORMATS:
            raise ConfigError(f"encoding_format must be 'float' or 'base64', got {encoding_format!r}",
                              path="encoding_format")
        if cfg.batch_size > codec.MAX_INPUTS:
            raise ConfigError(f"batch_size {cfg.batch_size} exceeds OpenAI's {codec.MAX_INPUTS} inputs per request",
                              path="batch_size")
        if max_request_tokens < 1:
            raise ConfigError("max_request_tokens must be >= 1", path="max_request_tokens")
        key = resolve_key(cfg.api_key, ENV_KEYS, provider=PROVIDER, environ=environ, required=official)
        base, pol = endpoint_target(url, BASE_URL, (codec.OFFICIAL_HOST,), policy=policy, environ=environ,
                                    key=cfg.endpoint_key)
        headers = {k: v for k, v in (("OpenAI-Organization", organization), ("OpenAI-Project", project)) if v}
        super().__init__(model=cfg.model, dimensions=expected, base_url=base, policy=pol, secret_headers=bearer(key),
                         headers=headers, timeout=timeout, batch_size=cfg.batch_size,
                         max_concurrency=max_concurrency, on_request=on_request, extra_headers=cfg.headers,
                         allow_auth_override=cfg.allow_auth_override)
        self.encoding_format: codec.EncodingFormat = encoding_format
        self.user = user
        self.max_request_tokens = max_request_tokens

    # ------------------------------------------------------------------ I/O-free helpers

    def _split(self, texts: list[str]) -> list[tuple[int, int]]:
        return split_by_budget(texts, self.batch_size, self.max_request_tokens, _utf8_len)

    def _body(self, texts: list[str]) -> dict[str, Any]:
        return codec.build_request(texts, model=self._model, dimensions=self._send_dimensions,
                                   encoding_format=self.encoding_format, user=self.user)

    def _parse(self, body: bytes, n: int) -> Embedded:
        vectors, tokens = codec.parse_response(body, n, encoding_format=self.encoding_format, provider=PROVIDER,
                                               model=self._model)
        return Embedded(vectors, tokens)

    # ------------------------------------------------------------------ I/O (one sub-batch)

    def _embed_part(self, texts: list[str]) -> Embedded:
        return self._parse(self._post(codec.PATH, self._body(texts)), len(texts))

    async def _aembed_part(self, texts: list[str]) -> Embedded:
        return self._parse(await self._apost(codec.PATH, self._body(texts)), len(texts))


def create(config: EmbeddingsConfig, **kw: Any) -> OpenAIEmbeddings:
    """Registry factory for ``provider: openai`` (keyword options go to :class:`OpenAIEmbeddings`)."""
    c = config.openai or OpenAIEmbeddingsConfig()
    opts: dict[str, Any] = {
        "encoding_format": c.encoding_format, "user": c.user, "send_dimensions": c.send_dimensions,
        "max_request_tokens": c.max_request_tokens, "organization": c.organization, "project": c.project,
        "timeout": c.timeout, "max_concurrency": c.max_concurrency,
    }
    return OpenAIEmbeddings(c, **(opts | kw))
