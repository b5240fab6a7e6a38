"""Google Vertex AI: Gemini at ``https://{location}-aiplatform.googleapis.com``, OAuth from google-auth.

Credentials come from Application Default Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud
auth application-default login``, or the metadata server on Google Cloud) through google-auth, which
is an optional extra imported only here: ``pip install 'aixpy[vertex]'``. The access token is cached
and refreshed when it expires (in a worker thread for async calls). Pass ``token_provider`` (a
``() -> str``) to bring your own tokens, e.g. in tests.

Project: ``project_id`` > ``GOOGLE_CLOUD_PROJECT`` > ``GCP_PROJECT_ID`` > the ADC project. Location:
``location`` > ``VERTEX_AI_LOCATION`` > ``GOOGLE_CLOUD_LOCATION`` > ``us-central1`` (``global`` uses
``aiplatform.googleapis.com``).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack

from aixpy.errors import AuthenticationError, ConfigError, MissingDependencyError
from aixpy.http import URLPolicy, endpoint_target
from aixpy.llm._http import HttpChatModel, HttpOptions
from aixpy.llm.codecs import gemini as codec
from aixpy.llm.codecs.gemini import VertexAPI
from aixpy.llm.model import Capabilities
from aixpy.llm.registry import ProviderSettings

__all__ = ["DEFAULT_LOCATION", "DEFAULT_MODEL", "GoogleADCTokens", "VertexAIModel", "create"]

PROVIDER = "vertexai"
DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_LOCATION = "us-central1"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
INSTALL = "pip install 'aixpy[vertex]'"
CAPABILITIES = Capabilities(tools=True, json_schema=True, vision=True)


class GoogleADCTokens:
    """Access tokens from google-auth Application Default Credentials, cached until they expire."""

    def __init__(self, scopes: Sequence[str] = SCOPES, *, credentials: Any = None) -> None:
        try:
            auth = importlib.import_module("google.auth")
            self._exceptions = importlib.import_module("google.auth.exceptions")
            transport = importlib.import_module("google.auth.transport.requests")
        except ImportError as e:
            raise MissingDependencyError("google-auth (Vertex AI credentials)", INSTALL) from e
        self.project: str | None = None
        if credentials is None:
            try:
                credentials, self.project = auth.default(scopes=list(scopes))
            except self._exceptions.DefaultCredentialsError:
                raise ConfigError("no Google Cloud credentials for Vertex AI: run `gcloud auth application-default "
                                  "login` or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file",
                                  path="vertexai") from None
        self._credentials = credentials
        self._request = transport.Request()
        self._lock = threading.Lock()

    @property
    def fresh(self) -> bool:
        """Whether a valid token is cached (no network needed to get it)."""
        return bool(self._credentials.valid)

    def __call__(self) -> str:
        with self._lock:
            if not self._credentials.valid:
                try:
                    self._credentials.refresh(self._request)
                except self._exceptions.GoogleAuthError as e:
                    raise AuthenticationError(f"could not refresh Google Cloud credentials: {type(e).__name__}",
                                              provider=PROVIDER) from None
            return str(self._credentials.token)


class VertexAIModel(HttpChatModel):
    """Gemini models on Vertex AI (Google publisher models)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, project_id: str | None = None, location: str | None = None,
                 endpoint: str | None = None, token_provider: Callable[[], str] | None = None,
                 policy: URLPolicy | None = None, environ: Mapping[str, str] | None = None,
                 **options: Unpack[HttpOptions]) -> None:
        env = os.environ if environ is None else environ
        location = location or env.get("VERTEX_AI_LOCATION") or env.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION
        adc: GoogleADCTokens | None = None
        if token_provider is None:
            adc = GoogleADCTokens()
            token_provider = adc
        project = project_id or env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT_ID") or (adc and adc.project)
        if not project:
            raise ConfigError("no Google Cloud project for Vertex AI: set project_id in the config, or the environment "
                              "variable GOOGLE_CLOUD_PROJECT or GCP_PROJECT_ID", path="project_id")
        codec.vertex_url(project, location, model, False)  # validates project, location and model now
        host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
        base, pol = endpoint_target(endpoint, f"https://{host}", (host,), policy=policy, environ=environ)
        super().__init__(provider=PROVIDER, model=model, api=VertexAPI(project=project, location=location),
                         base_url=base, policy=pol, capabilities=CAPABILITIES, **options)
        self.project_id = project
        self.location = location
        self._tokens = token_provider
        # headers: that replace Authorization (allow_auth_override) are sent instead of the OAuth token
        self._overridden = any(k.lower() == "authorization" for k in self.http.config.secret_headers)

    def _auth_headers(self) -> Mapping[str, str]:
        return {} if self._overridden else {"Authorization": f"Bearer {self._tokens()}"}

    async def _aauth_headers(self) -> Mapping[str, str]:
        if self._overridden or getattr(self._tokens, "fresh", True):
            return self._auth_headers()
        import anyio.to_thread

        token = await anyio.to_thread.run_sync(self._tokens)  # a refresh is blocking network I/O
        return {"Authorization": f"Bearer {token}"}


def create(settings: ProviderSettings) -> VertexAIModel:
    return VertexAIModel(settings.model or DEFAULT_MODEL, project_id=settings.project_id, location=settings.location,
                         endpoint=settings.endpoint, token_provider=settings.option("token_provider"),
                         policy=settings.option("policy"), environ=settings.environ, **settings.http())
