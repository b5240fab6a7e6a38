"""``provider: huggingface_tei``: Hugging Face Text Embeddings Inference, one server or a pool of them.

>>> from aixpy import embeddings
>>> svc = embeddings.new({"provider": "huggingface_tei", "huggingface_tei": {
...     "endpoint": ["http://tei-1:8080", "http://tei-2:8080", "http://tei-3:8080"],
...     "model": "BAAI/bge-large-en-v1.5"}})                                     # doctest: +SKIP

* **Wire**: ``POST /embed`` with ``normalize`` and ``truncate`` always explicit (``false`` is sent as
  ``false``), ``GET /info``, ``GET /health`` (:mod:`aixpy.embeddings.codecs.tei`).
* **Discovery** (at construction, only for what the config leaves open): ``/info`` gives the model id
  and ``max_client_batch_size``; dimensions come from ``dimensions``, else the known-model table, else
  the first answer (``dimensions()`` embeds a probe text if asked first). With ``model``, ``batch_size``
  and ``dimensions`` (or a known model) set, construction does no I/O.
* **Batching**: ``batch_size`` texts per request: 128 (the guide's figure) capped by the server's
  ``max_client_batch_size``; if a server still refuses a batch as too large, its limit is learned from the
  error and the batch is split. ``max_concurrency`` sub-batches are in flight at once; order is kept.
* **Several endpoints** (a list) are balanced client-side, like the guide's ``TEIPool`` and nginx
  ``least_conn``: ``selection: least_outstanding`` (default) or ``round_robin``. An endpoint that fails
  ``eject_after`` times in a row (connection error, timeout, 5xx, malformed body) is ejected for
  ``eject_cooldown`` seconds, then re-probed on ``/health``. A sub-batch that fails on one endpoint is
  re-sent to another, so nothing is lost; when every endpoint failed or is ejected, one
  :class:`~aixpy.errors.ProviderConnectionError` names them all (one endpoint: its own error is raised).
  4xx answers (bad input, auth) are not re-sent. :meth:`TEIEmbeddings.pool_status` shows the pool.
* **Key**: ``api_key`` (a TEI started with ``--api-key``, or an Inference Endpoint): ``Authorization:
  Bearer``, never shown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from aixpy.config.embeddings import EmbeddingsConfig, TEIEmbeddingsConfig
from aixpy.embeddings._tei_pool import Endpoint, EndpointPool
from aixpy.embeddings.base import EmbeddingService, Matrix
from aixpy.embeddings.codecs import tei as codec
from aixpy.embeddings.models import KNOWN_DIMENSIONS, dimensions_for
from aixpy.errors import (
    AixpyError,
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    UnknownModelError,
)
from aixpy.http import HttpClient, HttpConfig, URLPolicy, endpoint_target, request_headers, secret
from aixpy.policy.plans import Plan, arun, run

__all__ = ["DEFAULT_BATCH_SIZE", "TEIEmbeddings", "create"]

log = logging.getLogger("aixpy.embeddings")

PROVIDER = "huggingface_tei"
DEFAULT_BATCH_SIZE = 128
_HEALTH_TIMEOUT = 5.0
# failures worth re-sending to another endpoint; RateLimitError is "busy", not "broken"
_FAILOVER = (ProviderConnectionError, ProviderTimeoutError, ServerError, ResponseFormatError, RateLimitError)


@dataclass(frozen=True, slots=True)
class _Request:
    """One HTTP call a failover plan asks for."""

    client: HttpClient
    method: str
    path: str
    options: dict[str, Any]

    def send(self) -> httpx.Response:
        return self.client.request(self.method, self.path, **self.options)

    async def asend(self) -> httpx.Response:
        return await self.client.arequest(self.method, self.path, **self.options)


class TEIEmbeddings(EmbeddingService):
    """Embeddings from one or several TEI servers (see the module docstring).

    Args:
        config: the ``huggingface_tei:`` block.
        environ: environment for the local URL policy (``OLLAMA_ALLOWED_HOSTS``), default ``os.environ``.
        policy: override the SSRF URL policy of every endpoint.
        clock: monotonic clock of the ejection cool-downs (tests pass a fake).
    """

    provider = PROVIDER

    def __init__(
        self,
        config: TEIEmbeddingsConfig,
        *,
        environ: Mapping[str, str] | None = None,
        policy: URLPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        urls = [config.endpoint] if isinstance(config.endpoint, str) else list(config.endpoint)
        if not urls:
            raise ConfigError("huggingface_tei needs at least one endpoint", path="endpoint")
        key = secret(config.api_key)
        headers = request_headers(config.headers, {"Authorization": f"Bearer {key}"} if key else {},
                                  allow_auth_override=config.allow_auth_override)
        clients: list[HttpClient] = []
        bases: list[str] = []
        for url in urls:
            base, pol = endpoint_target(url, url, (), policy=policy, environ=environ)
            if base in bases:
                raise ConfigError(f"endpoint {base} is listed twice", path="endpoint")
            bases.append(base)
            clients.append(HttpClient(HttpConfig(
                base, policy=pol, provider=PROVIDER,
                secret_headers=headers, connect_timeout=min(5.0, config.timeout), read_timeout=config.timeout,
                write_timeout=config.timeout, total_timeout=config.timeout,
                max_connections=max(16, config.max_concurrency * 2),
                max_keepalive_connections=max(16, config.max_concurrency * 2))))
        self.config = config
        self.pool: EndpointPool[HttpClient] = EndpointPool.of(
            bases, clients, selection=config.selection, eject_after=config.eject_after,
            cooldown=config.eject_cooldown, clock=clock, provider=PROVIDER)
        self.info: codec.TEIInfo | None = None
        super().__init__(model=config.model or "", dimensions=config.dimensions)
        self.max_concurrency = config.max_concurrency
        try:
            self._discover()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ discovery

    def _discover(self) -> None:
        c = self.config
        known = c.dimensions or (KNOWN_DIMENSIONS.get(c.model) if c.model else None)
        if c.batch_size is None or known is None or not c.model:
            self.info = self._fetch_info(required=known is None and not c.model)
        info = self.info or codec.TEIInfo()
        if c.model and info.model_id and info.model_id != c.model:
            log.warning("TEI serves %s but the config names %s; vectors are labelled %s",
                        info.model_id, c.model, c.model)
        self._model = c.model or info.model_id or "tei"
        server_max = info.max_client_batch_size
        if c.batch_size is not None and server_max is not None and c.batch_size > server_max:
            log.warning("batch_size %d is above the server's max_client_batch_size %d; using %d",
                        c.batch_size, server_max, server_max)
        wanted = c.batch_size or DEFAULT_BATCH_SIZE
        self.batch_size = min(wanted, server_max) if server_max else wanted
        try:
            self._dimensions = dimensions_for(self._model, c.dimensions)
        except UnknownModelError:
            self._dimensions = None  # learned from the first answer (dimensions() probes if asked first)

    def _fetch_info(self, *, required: bool) -> codec.TEIInfo | None:
        errors: list[str] = []
        for ep in self.pool.endpoints:
            try:
                response = ep.client.request("GET", codec.INFO_PATH, timeout=min(_HEALTH_TIMEOUT, self.config.timeout))
                return codec.parse_info(response.content, provider=PROVIDER)
            except ProviderError as e:
                errors.append(f"{ep.url}: {e}")
        detail = "; ".join(errors)
        if required:
            raise ProviderConnectionError(f"no TEI endpoint answered /info ({detail}); set model and dimensions "
                                          "to start without it", provider=PROVIDER)
        log.warning("no TEI endpoint answered /info (%s); batch_size %s", detail,
                    self.config.batch_size or DEFAULT_BATCH_SIZE)
        return None

    def pool_status(self) -> list[dict[str, object]]:
        """Per endpoint: url, healthy, outstanding, consecutive failures, requests, errors, last error."""
        return self.pool.status()

    def __repr__(self) -> str:
        urls = [e.url for e in self.pool.endpoints]
        return f"{type(self).__name__}(model={self._model!r}, endpoints={urls}, dims={self._dimensions})"

    # ------------------------------------------------------------------ I/O-free helpers

    def _body(self, texts: list[str]) -> dict[str, Any]:
        c = self.config
        return codec.build_embed(texts, normalize=c.normalize, truncate=c.truncate,
                                 truncation_direction=c.truncation_direction, prompt_name=c.prompt_name)

    def _split_limit(self, err: InvalidRequestError, n: int) -> int | None:
        """The server's batch limit when ``err`` refuses a batch of ``n`` as too large, else ``None``."""
        limit = codec.max_batch_from_error(err.body or str(err))
        if limit is None or limit >= n:
            return None
        if limit < self.batch_size:
            log.warning("TEI refused %d texts per request; using batch_size %d from now on", n, limit)
            self.batch_size = limit
        return limit

    def _settle(self, ep: Endpoint[HttpClient], err: BaseException,
                errors: list[tuple[Endpoint[HttpClient], BaseException]]) -> None:
        """Book a failed request: failover-worthy errors are collected, anything else is re-raised."""
        if isinstance(err, _FAILOVER):
            self.pool.done(ep, err, counts=not isinstance(err, RateLimitError))
            errors.append((ep, err))
            log.info("TEI endpoint %s failed (%s: %s); re-sending to another endpoint", ep.url,
                     type(err).__name__, err)
            return
        self.pool.done(ep, err, counts=False)
        raise err

    def _none_left(self, errors: list[tuple[Endpoint[HttpClient], BaseException]]) -> ProviderError:
        """The error to raise when no endpoint is left (chained to the last failure unless it is that one)."""
        err = self.pool.unavailable(errors, model=self._model)
        if errors and err is not errors[-1][1]:
            err.__cause__ = errors[-1][1]
        return err

    # ------------------------------------------------------------------ I/O (one sub-batch, with failover)

    def _failover(self, texts: list[str]) -> Plan[_Request, httpx.Response, Matrix | int]:
        """One sub-batch across the pool: the vectors, or the smaller batch size a server asked for."""
        body = self._body(texts)
        errors: list[tuple[Endpoint[HttpClient], BaseException]] = []
        tried: set[int] = set()
        while (pick := self.pool.pick(tried)) is not None:
            ep = pick.endpoint
            tried.add(ep.index)
            if pick.probe:
                try:
                    yield _Request(ep.client, "GET", codec.HEALTH_PATH,
                                   {"timeout": min(_HEALTH_TIMEOUT, self.config.timeout)})
                except AixpyError as e:
                    self.pool.probed(ep, False, f"{type(e).__name__}: {e}")
                    continue
                self.pool.probed(ep, True)
            try:
                options = {"json": body, "model": self._model or None}
                response = yield _Request(ep.client, "POST", codec.EMBED_PATH, options)
                out = codec.parse_embed(response.content, len(texts), provider=PROVIDER, model=self._model)
            except InvalidRequestError as e:
                self.pool.done(ep)
                limit = self._split_limit(e, len(texts))
                if limit is None:
                    raise
                return limit
            except BaseException as e:
                self._settle(ep, e, errors)
                continue
            self.pool.done(ep)
            return out
        raise self._none_left(errors)

    def _embed_texts(self, texts: list[str]) -> Matrix:
        out = run(self._failover(texts), _Request.send)
        if isinstance(out, int):
            return np.concatenate([self._embed_texts(texts[i:i + out]) for i in range(0, len(texts), out)], axis=0)
        return out

    async def _aembed_texts(self, texts: list[str]) -> Matrix:
        out = await arun(self._failover(texts), _Request.asend)
        if isinstance(out, int):
            return np.concatenate([await self._aembed_texts(texts[i:i + out]) for i in range(0, len(texts), out)],
                                  axis=0)
        return out

    def close(self) -> None:
        super().close()
        for ep in self.pool.endpoints:
            ep.client.close()

    async def aclose(self) -> None:
        super().close()
        for ep in self.pool.endpoints:
            await ep.client.aclose()


def create(config: EmbeddingsConfig, **kw: Any) -> TEIEmbeddings:
    """Registry factory for ``provider: huggingface_tei``."""
    if config.huggingface_tei is None:
        raise ConfigError("provider 'huggingface_tei' needs a huggingface_tei: block",
                          path="embeddings.huggingface_tei")
    return TEIEmbeddings(config.huggingface_tei, **kw)
