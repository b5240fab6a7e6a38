"""HuggingFace: chat through the OpenAI-compatible router, or text generation (TGI / serverless).

* Chat (default): ``https://router.huggingface.co/v1/chat/completions`` with an ``hf_...`` token from
  ``HUGGINGFACE_API_KEY``, ``HF_TOKEN`` or ``HUGGING_FACE_HUB_TOKEN``; model ids like
  ``meta-llama/Llama-3.1-8B-Instruct`` (a router ``:provider`` suffix is passed through). A configured
  ``endpoint`` (a dedicated Inference Endpoint or a self-hosted TGI) is used instead, with ``/v1``
  appended when missing. The guide's ``https://api-inference.huggingface.co`` (retired by HuggingFace)
  is read as the router. Structured output: the router takes OpenAI's ``response_format``; an endpoint
  gets TGI's grammar shape ``{"type": "json_object", "value": schema}``
  (:class:`~aixpy.llm.codecs.hf_tgi.TGIChatAPI`), as ``huggingface_hub`` sends it. For a vLLM server,
  which takes OpenAI's shape, use the ``openai_compatible`` provider.
* Text generation (``text_generation=True``, for base models and TGI servers without a chat
  template): TGI's ``/generate``/``/generate_stream`` at the ``endpoint``, or without one the
  serverless ``https://router.huggingface.co/hf-inference/models/{model}``. No tools.

A token is required for HuggingFace-hosted URLs only; a self-hosted TGI on a private host needs none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Unpack
from urllib.parse import urlsplit

from aixpy.http import URLPolicy, check_endpoint, endpoint_target, resolve_key
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs._common import WireAPI
from aixpy.llm.codecs.hf_tgi import TextGenerationAPI, TGIChatAPI
from aixpy.llm.codecs.openai_chat import OpenAIChatAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["DEFAULT_MODEL", "ENV_KEYS", "ROUTER_URL", "SERVERLESS_URL", "HuggingFaceModel", "create"]

logger = logging.getLogger("aixpy.llm")

PROVIDER = "huggingface"
ROUTER_URL = "https://router.huggingface.co/v1"
SERVERLESS_URL = "https://router.huggingface.co/hf-inference"
HOST = "router.huggingface.co"
LEGACY_HOSTS = frozenset({"api-inference.huggingface.co"})
ENV_KEYS = ("HUGGINGFACE_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
_HF_HOSTED = ("huggingface.co", "huggingface.cloud", "hf.space")


def _hosted(url: str | None) -> bool:
    host = (urlsplit(url).hostname or "") if url else HOST
    return any(host == h or host.endswith("." + h) for h in _HF_HOSTED)


def _v1(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class HuggingFaceModel(HttpChatModel):
    """HuggingFace Inference (see the module docstring for the two modes)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, api_key: Any = None, endpoint: str | None = None,
                 text_generation: bool = False, wait_for_model: bool | None = None, policy: URLPolicy | None = None,
                 environ: Mapping[str, str] | None = None, **options: Unpack[HttpOptions]) -> None:
        if endpoint is not None and urlsplit(check_endpoint(endpoint)).hostname in LEGACY_HOSTS:
            logger.info("endpoint %s is HuggingFace's retired Inference API; using the router instead", endpoint)
            endpoint = None
        key = resolve_key(api_key, ENV_KEYS, provider=PROVIDER, environ=environ, required=_hosted(endpoint))
        api: WireAPI
        if text_generation:
            api = TextGenerationAPI(serverless=endpoint is None, wait_for_model=wait_for_model)
            default = SERVERLESS_URL
            capabilities = Capabilities(tools=False, json_schema=True, vision=False)
        else:
            api = OpenAIChatAPI() if endpoint is None else TGIChatAPI()
            default = ROUTER_URL
            endpoint = None if endpoint is None else _v1(endpoint)
            capabilities = Capabilities(tools=True, json_schema=True, vision=False)
        base, pol = endpoint_target(endpoint, default, (HOST,), policy=policy, environ=environ)
        super().__init__(provider=PROVIDER, model=model, api=api, base_url=base, policy=pol,
                         secret_headers={"Authorization": f"Bearer {key}"} if key else None,
                         capabilities=capabilities, **options)
        self.text_generation = text_generation


def create(settings: ProviderSettings) -> HuggingFaceModel:
    return HuggingFaceModel(settings.model or DEFAULT_MODEL, api_key=settings.api_key, endpoint=settings.endpoint,
                            text_generation=bool(settings.option("text_generation", False)),
                            wait_for_model=settings.option("wait_for_model"), policy=settings.option("policy"),
                            environ=settings.environ, **settings.http())
