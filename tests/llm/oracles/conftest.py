"""Fixtures of the wire-oracle tests: one loopback recording server, no internet, no ambient config.

* ``server``: the session's :class:`RecordingServer` (127.0.0.1, random port), emptied before each test.
* Every outgoing connection is checked: anything but loopback fails the test at once (the SDKs
  must never reach a real vendor, a metadata server or the Hub).
* Vendor environment variables (API keys, base URLs, proxies, Vertex switches) are removed so that
  every client is configured by the test alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._services.loopback_only import loopback_only

pytest.register_assert_rewrite(f"{__package__}._oracle", f"{__package__}._google", f"{__package__}._openai_like")

from ._server import RecordingServer  # noqa: E402

_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_API_VERSION", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_APPLICATION_CREDENTIALS",
    "GCP_PROJECT_ID", "VERTEX_AI_LOCATION", "XAI_API_KEY", "HF_TOKEN", "HUGGINGFACE_API_KEY",
    "HUGGING_FACE_HUB_TOKEN", "HF_INFERENCE_ENDPOINT", "OLLAMA_HOST", "OLLAMA_ALLOWED_HOSTS",
)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch, _ENV)


@pytest.fixture(scope="session")
def _recording_server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def server(_recording_server: RecordingServer) -> RecordingServer:
    _recording_server.take()
    return _recording_server
