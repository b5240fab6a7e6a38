"""One endpoint rule for every provider: backslashes and credentials are refused, naming the key.

``http://public.example\\@127.0.0.1:11434/`` is host ``public.example`` to a WHATWG parser and
``127.0.0.1`` to ``urlsplit``; ``https://127.0.0.1:P\\@public.example/`` the other way round. Ollama
used to split such a URL and rebuild it (connecting to whichever host ``urlsplit`` saw, credentials
dropped); every provider must refuse them with a :class:`ConfigError` at its key, before any request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aixpy.config.embeddings import (
    HuggingFaceEmbeddingsConfig,
    OllamaEmbeddingsConfig,
    OpenAIEmbeddingsConfig,
    TEIEmbeddingsConfig,
)
from aixpy.embeddings.huggingface import HuggingFaceEmbeddings
from aixpy.embeddings.ollama import OllamaEmbeddings
from aixpy.embeddings.openai import OpenAIEmbeddings
from aixpy.embeddings.tei import TEIEmbeddings
from aixpy.errors import ConfigError
from aixpy.http import check_endpoint, endpoint_target, server_url
from aixpy.llm.providers.anthropic import AnthropicModel
from aixpy.llm.providers.gemini import GeminiModel
from aixpy.llm.providers.huggingface import HuggingFaceModel
from aixpy.llm.providers.ollama import OllamaModel
from aixpy.llm.providers.openai import OpenAIModel
from aixpy.llm.providers.openai_compatible import OpenAICompatibleModel
from aixpy.llm.providers.vertexai import VertexAIModel
from aixpy.llm.providers.xai import XAIModel

PASSWORD = "hunter2-s3cret"
BACKSLASH_TO_LOOPBACK = "http://public.example\\@127.0.0.1:11434/"
BACKSLASH_TO_PUBLIC = f"https://127.0.0.1:{PASSWORD}\\@public.example/"
USERINFO = f"http://admin:{PASSWORD}@127.0.0.1:11434/"
USERINFO_HF_LEGACY = f"https://user:{PASSWORD}@api-inference.huggingface.co/models/x"
BAD = [BACKSLASH_TO_LOOPBACK, BACKSLASH_TO_PUBLIC, USERINFO, USERINFO_HF_LEGACY]

Build = Callable[[str], Any]


def _tei(*urls: str) -> TEIEmbeddings:
    return TEIEmbeddings(TEIEmbeddingsConfig(endpoint=list(urls), model="m", dimensions=4), environ={})


BUILDERS: dict[str, tuple[Build, str]] = {
    "llm-openai": (lambda u: OpenAIModel(endpoint=u, api_key="k", environ={}), "endpoint"),
    "llm-anthropic": (lambda u: AnthropicModel(endpoint=u, api_key="k", environ={}), "endpoint"),
    "llm-gemini": (lambda u: GeminiModel(endpoint=u, api_key="k", environ={}), "endpoint"),
    "llm-vertex": (lambda u: VertexAIModel(project_id="p", endpoint=u, token_provider=lambda: "t", environ={}),
                   "endpoint"),
    "llm-xai": (lambda u: XAIModel(endpoint=u, api_key="k", environ={}), "endpoint"),
    "llm-huggingface": (lambda u: HuggingFaceModel(endpoint=u, api_key="k", environ={}), "endpoint"),
    "llm-huggingface-tgi": (lambda u: HuggingFaceModel(endpoint=u, api_key="k", text_generation=True, environ={}),
                            "endpoint"),
    "llm-openai_compatible": (lambda u: OpenAICompatibleModel("m", endpoint=u, environ={}), "endpoint"),
    "llm-ollama": (lambda u: OllamaModel(endpoint=u, environ={}), "endpoint"),
    "llm-ollama-env": (lambda u: OllamaModel(environ={"OLLAMA_HOST": u}), "OLLAMA_HOST"),
    "emb-openai": (lambda u: OpenAIEmbeddings(OpenAIEmbeddingsConfig(base_url=u, api_key="k"), environ={}),
                   "base_url"),
    "emb-huggingface": (lambda u: HuggingFaceEmbeddings(HuggingFaceEmbeddingsConfig(model="org/m", endpoint=u),
                                                        environ={}), "endpoint"),
    "emb-tei": (lambda u: _tei(u), "endpoint"),
    "emb-tei-pool": (lambda u: _tei("http://127.0.0.1:8081", u), "endpoint"),
    "emb-ollama": (lambda u: OllamaEmbeddings(OllamaEmbeddingsConfig(base_url=u), environ={}), "base_url"),
    "emb-ollama-env": (lambda u: OllamaEmbeddings(environ={"OLLAMA_HOST": u}), "OLLAMA_HOST"),
}


@pytest.mark.parametrize("url", BAD, ids=["backslash-loopback", "backslash-public", "userinfo", "userinfo-hf"])
@pytest.mark.parametrize("provider", list(BUILDERS))
def test_every_provider_refuses_backslash_and_userinfo(provider: str, url: str) -> None:
    build, key = BUILDERS[provider]
    with pytest.raises(ConfigError) as info:
        build(url)
    assert info.value.path == key
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)


@pytest.mark.parametrize("provider", list(BUILDERS))
def test_every_provider_still_takes_a_plain_local_endpoint(provider: str) -> None:
    build, _ = BUILDERS[provider]
    assert build("http://127.0.0.1:8080") is not None


@pytest.mark.parametrize("url", [
    "http://a\\b", "a\\b:1", "http://u@h", "u:p@h:1", "//u@h/x", "https://h:1@x/", "http://u@[::1]:80/",
])
def test_check_endpoint_refuses(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_endpoint(url, "some.key")
    assert info.value.path == "some.key"


@pytest.mark.parametrize("url", ["http://h/p@x", "http://h/?q=a@b", "http://h#a@b", " http://h:1 ", "h:1", "h"])
def test_check_endpoint_allows_at_outside_the_authority(url: str) -> None:
    assert check_endpoint(url) == url.strip()


def test_endpoint_target_names_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        endpoint_target("not a url", "https://x", (), key="base_url")
    assert info.value.path == "base_url"


@pytest.mark.parametrize(("endpoint", "env", "expected"), [
    (None, {}, "http://localhost:9"),
    (None, {"SRV": "0.0.0.0"}, "http://127.0.0.1:7"),
    (None, {"SRV": "[::]:5"}, "http://[::1]:5"),
    ("https://h.example/base/", {"SRV": "x"}, "https://h.example/base"),
])
def test_server_url(endpoint: str | None, env: dict[str, str], expected: str) -> None:
    url = server_url(endpoint, env_var="SRV", default_url="http://localhost:9", default_port=7, environ=env)
    assert url == expected


@pytest.mark.parametrize(("endpoint", "env", "key"), [("ftp://h", {}, "endpoint"), (None, {"SRV": "h:99999"}, "SRV")])
def test_server_url_errors_name_where_the_value_came_from(endpoint: str | None, env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        server_url(endpoint, env_var="SRV", default_url="http://localhost:9", default_port=7, environ=env)
    assert info.value.path == key
