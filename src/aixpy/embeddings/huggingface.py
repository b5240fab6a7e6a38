"""``provider: huggingface``: the Hugging Face Inference API's ``feature-extraction`` task.

>>> from aixpy import embeddings
>>> svc = embeddings.new({"provider": "huggingface",
...                       "huggingface": {"model": "sentence-transformers/all-MiniLM-L6-v2"}})  # doctest: +SKIP

* **Where**: by default the serverless router, ``https://router.huggingface.co/hf-inference/models/
  {model}/pipeline/feature-extraction`` (what ``huggingface_hub`` 2.x calls). The guide's
  ``https://api-inference.huggingface.co`` answers 410 Gone since 2025 and is read as the router; the
  old wire shape (``/models/{model}`` with an ``options`` body) is sent with ``api_style: legacy`` to a
  server that still speaks it. Any other ``endpoint`` (a dedicated Inference Endpoint) is posted to as
  given: exactly that URL, no ``/`` added or removed.
  See :mod:`aixpy.embeddings.codecs.huggingface` for the exact shapes.
* **Key**: optional. ``api_key`` or ``HUGGINGFACE_API_KEY`` / ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN``;
  sent as ``Authorization: Bearer``, never logged or shown. (The router refuses anonymous calls; a
  self-hosted endpoint may not need one.)
* **Loading models**: with ``wait_for_model: true`` (default) the server is asked to hold the request
  (``x-wait-for-model``), and a 503 "model is loading" is waited out client-side, following its
  ``estimated_time``, for at most ``max_wait_for_model`` seconds in total; then, or at once with
  ``wait_for_model: false``, a retryable :class:`~aixpy.errors.ModelLoadingError` (``retry_after`` = the
  estimate) is raised. No other retries happen here: wrap the service in a retry policy for 429/5xx.
* **Output**: sentence vectors, or token vectors (models without pooling) mean-pooled over tokens.
* **Batching**: ``batch_size`` texts per request (50, the guide's figure), ``max_concurrency`` requests
  in flight; order is always kept.
* **Dimensions**: ``dimensions``, else the known-model table, else learned from the first answer
  (``dimensions()`` embeds a probe text when asked first); never a silent guess.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aixpy.config.embeddings import EmbeddingsConfig, HuggingFaceEmbeddingsConfig
from aixpy.embeddings.base import EmbeddingService, Matrix
from aixpy.embeddings.codecs import huggingface as codec
from aixpy.embeddings.models import dimensions_for
from aixpy.errors import ConfigError, ModelLoadingError, ServerError, UnknownModelError
from aixpy.http import (
    HttpClient,
    HttpConfig,
    Response,
    URLPolicy,
    check_endpoint,
    endpoint_target,
    request_headers,
    resolve_key,
    safe_url,
)

__all__ = ["ENV_KEYS", "HuggingFaceEmbeddings", "create"]

log = logging.getLogger("aixpy.embeddings")

PROVIDER = "huggingface"
ENV_KEYS = ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_NO_ESTIMATE_WAIT = 1.0  # seconds between tries when a 503 says "loading" without an estimate


class HuggingFaceEmbeddings(EmbeddingService):
    """Embeddings from the Hugging Face Inference API (see the module docstring).

    Args:
        config: the ``huggingface:`` block.
        environ: where API keys are looked up (default ``os.environ``).
        policy: override the SSRF URL policy (default: the router host only, or the configured
            endpoint's host; loopback/private hosts get the local policy).
        sleep, asleep: how to wait for a loading model (tests pass fakes).
    """

    provider = PROVIDER

    def __init__(
        self,
        config: HuggingFaceEmbeddingsConfig,
        *,
        environ: Mapping[str, str] | None = None,
        policy: URLPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        model = codec.check_model_id(config.model)
        try:
            dims: int | None = dimensions_for(model, config.dimensions)
        except UnknownModelError:
            dims = None  # learned from the first answer
        super().__init__(model=model, dimensions=dims)
        base, self.api_style = codec.resolve_route(check_endpoint(config.endpoint), config.api_style)
        if codec.LEGACY_HOST in config.endpoint and self.api_style == "router":
            log.info("endpoint %s is the retired Inference API (410 Gone); using %s", config.endpoint, base)
        self._endpoint_path = ""
        if self.api_style == "endpoint":  # posted to exactly as given: origin as base URL, the rest as path
            base, self._endpoint_path = codec.split_endpoint(base)
        key = resolve_key(config.api_key, ENV_KEYS, provider=PROVIDER, environ=environ, required=False)
        official = base == codec.ROUTER_URL
        base, pol = endpoint_target(None if official else base, codec.ROUTER_URL, (codec.ROUTER_HOST,),
                                    policy=policy, environ=environ)
        self.config = config
        self.batch_size = config.batch_size
        self.max_concurrency = config.max_concurrency
        self._sleep, self._asleep = sleep, asleep
        self._http = HttpClient(HttpConfig(
            base, policy=pol, provider=PROVIDER,
            secret_headers=request_headers(config.headers, {"Authorization": f"Bearer {key}"} if key else {},
                                           fixed=codec.OPTION_HEADERS, allow_auth_override=config.allow_auth_override),
            connect_timeout=min(10.0, config.timeout), read_timeout=config.timeout, write_timeout=config.timeout,
            total_timeout=config.timeout, max_connections=max(10, config.max_concurrency * 2),
            max_keepalive_connections=max(10, config.max_concurrency * 2)))

    def __repr__(self) -> str:
        endpoint = safe_url(self._http.config.base_url + self._endpoint_path)
        return (f"{type(self).__name__}(model={self._model!r}, endpoint={endpoint!r}, "
                f"api_style={self.api_style!r}, dims={self._dimensions})")

    # ------------------------------------------------------------------ I/O-free helpers

    def _request(self, texts: list[str]) -> codec.HFRequest:
        c = self.config
        return codec.build_request(texts, model=self._model, style=self.api_style, wait_for_model=c.wait_for_model,
                                   use_cache=c.use_cache, normalize=c.normalize, truncate=c.truncate,
                                   endpoint_path=self._endpoint_path)

    def _parse(self, response: Response, n: int) -> Matrix:
        return codec.parse_vectors(response.content, n, provider=PROVIDER, model=self._model)

    def _loading_wait(self, err: ServerError, waited: float) -> float:
        """Seconds to wait before trying again, or raise: ``err`` itself when it is no loading 503, a
        :class:`ModelLoadingError` when waiting is off or the budget is spent."""
        estimate = codec.loading_estimate(err.status_code, err.body)
        if estimate is None:
            raise err
        budget = self.config.max_wait_for_model if self.config.wait_for_model else 0.0
        left = budget - waited
        if left <= 0:
            why = (f"still loading after waiting {waited:.1f} s (max_wait_for_model)" if budget
                   else "loading (wait_for_model is false)")
            raise ModelLoadingError(
                f"model {self._model} is {why}; the server estimates {estimate:.0f} s more",
                retry_after=estimate or None,
                provider=PROVIDER, model=self._model, status_code=err.status_code, body=err.body) from err
        delay = min(estimate if estimate > 0 else _NO_ESTIMATE_WAIT, left)
        log.info("model %s is loading; waiting %.1f s (server estimate %.1f s)", self._model, delay, estimate)
        return delay

    # ------------------------------------------------------------------ I/O (one sub-batch)

    def _embed_texts(self, texts: list[str]) -> Matrix:
        req = self._request(texts)
        waited = 0.0
        while True:
            try:
                response = self._http.request("POST", req.path, json=req.json, headers=req.headers, model=self._model)
            except ServerError as e:
                delay = self._loading_wait(e, waited)
                self._sleep(delay)
                waited += delay
                continue
            return self._parse(response, len(texts))

    async def _aembed_texts(self, texts: list[str]) -> Matrix:
        req = self._request(texts)
        waited = 0.0
        while True:
            try:
                response = await self._http.arequest("POST", req.path, json=req.json, headers=req.headers,
                                                     model=self._model)
            except ServerError as e:
                delay = self._loading_wait(e, waited)
                await self._asleep(delay)
                waited += delay
                continue
            return self._parse(response, len(texts))

    def close(self) -> None:
        super().close()
        self._http.close()

    async def aclose(self) -> None:
        super().close()
        await self._http.aclose()


def create(config: EmbeddingsConfig, **kw: Any) -> HuggingFaceEmbeddings:
    """Registry factory for ``provider: huggingface``."""
    if config.huggingface is None:
        raise ConfigError("provider 'huggingface' needs a huggingface: block", path="embeddings.huggingface")
    return HuggingFaceEmbeddings(config.huggingface, **kw)
