"""Provider registry and model names: :func:`register`, :func:`create`, :func:`detect_provider`.

(:func:`new`, which builds a model from a spec or a config, lives in ``aixpy.llm._new``; it is
importable from here too.)

Built-in providers register exactly like third-party ones: a name and a factory
``(ProviderSettings) -> ChatModel``, given as an object or as a lazy ``"module:function"`` path, so
nothing is imported before it is used. Third-party packages add providers through the entry-point
group ``aixpy.llm`` (name = provider name, value = the factory)::

    [project.entry-points."aixpy.llm"]
    mistral = "aixpy_mistral:create"

Detection of a bare model name (:func:`detect_provider`; the rules are in ``aixpy._model_names``, shared
with config validation), in this order — never a default to OpenAI:

1. ``ft:...`` (an OpenAI fine-tune) -> openai
2. ``host.tld/ns/name[:tag]`` (``hf.co/...`` GGUF, a registry host) -> ollama
3. ``org/name`` (``meta-llama/Llama-3.1-8B-Instruct``; a router ``:provider`` suffix is allowed) -> huggingface
4. ``name:tag`` (``llama3.1:8b``, ``gpt-oss:20b``) -> ollama
5. ``gpt-*``, ``chatgpt-*``, ``o1``/``o3``/``o4`` (alone or followed by ``-``) -> openai
6. ``claude*`` -> anthropic
7. ``gemini*`` -> gemini, or vertexai when Vertex AI is configured
8. ``grok*`` -> xai

Vertex AI counts as configured when the entry sets ``project_id``/``location``, when
``GOOGLE_GENAI_USE_VERTEXAI`` is true, or when a Google Cloud project is set in the environment
(``GOOGLE_CLOUD_PROJECT``/``GCP_PROJECT_ID``) and no Gemini API key is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from aixpy import _model_names
from aixpy._lazy import attach
from aixpy._registry import Registry
from aixpy.errors import InvalidInputError, UnknownModelError
from aixpy.policy.deadline import Clock

if TYPE_CHECKING:
    from aixpy.llm._http import HttpOptions
    from aixpy.llm._new import new
    from aixpy.llm.model import ChatModel

__all__ = [
    "ProviderFactory",
    "ProviderSettings",
    "check_settings",
    "create",
    "detect_provider",
    "new",
    "provider_names",
    "register",
    "split_spec",
]


@dataclass(frozen=True)
class ProviderSettings:
    """Everything a provider factory receives. ``None`` means "the provider's default".

    ``api_key`` never appears in the repr. ``options`` carries provider-specific settings (e.g.
    ``{"text_generation": True}`` for HuggingFace TGI, ``{"token_provider": fn}`` for Vertex AI,
    ``{"policy": URLPolicy(...)}``, ``{"on_request": [hook]}``). ``environ`` replaces ``os.environ``
    for key lookup (tests). ``headers`` are extra request headers (secrets, never in the repr; see
    :func:`aixpy.http.request_headers`), ``allow_auth_override`` lets them replace the credential header.
    """

    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    endpoint: str | None = None
    location: str | None = None
    project_id: str | None = None
    timeout: float | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    runtime: str | None = None
    headers: Mapping[str, Any] | None = field(default=None, repr=False)
    allow_auth_override: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    clock: Clock | None = field(default=None, repr=False)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def http(self) -> HttpOptions:
        """The keyword options of :class:`~aixpy.llm._http.HttpChatModel` these settings hold."""
        pairs = (("timeout", self.timeout), ("temperature", self.temperature), ("max_tokens", self.max_tokens),
                 ("clock", self.clock))
        out: dict[str, Any] = {k: v for k, v in pairs if v is not None}
        if self.headers:
            out["extra_headers"] = self.headers
            out["allow_auth_override"] = self.allow_auth_override
        for key in ("on_request", "connect_timeout"):
            if self.options.get(key) is not None:
                out[key] = self.options[key]
        return out  # type: ignore[return-value]


ProviderFactory: TypeAlias = "Callable[[ProviderSettings], ChatModel]"

_BUILTINS = _model_names.BUILTINS
_ALIASES = _model_names.ALIASES
_REGISTRY: Registry[ProviderFactory] = _model_names.PROVIDERS  # one table: config validation reads it too


def register(name: str, factory: ProviderFactory | str, *, replace: bool = False) -> None:
    """Register a provider under ``name``: a factory or a lazy ``"module:function"`` path.

    Raises InvalidInputError if the name is taken (pass ``replace=True`` to override it).
    """
    _REGISTRY.register(name, factory, replace=replace)


def provider_names() -> list[str]:
    """Names of every registered provider (built-ins, :func:`register`, entry points)."""
    return _REGISTRY.names()


def check_settings(settings: Mapping[str, Any]) -> None:
    """InvalidInputError unless every key of ``settings`` is a :class:`ProviderSettings` field."""
    unknown = set(settings) - set(ProviderSettings.__dataclass_fields__)
    if unknown:
        raise InvalidInputError(f"unknown setting(s) {sorted(unknown)} for new()")


def create(provider: str, settings: ProviderSettings | None = None) -> ChatModel:
    """Build a model of ``provider`` (a registered name or alias) from ``settings``."""
    return _REGISTRY.resolve(provider)(settings or ProviderSettings())


# --------------------------------------------------------------------------- detection


def detect_provider(model: str, *, vertex: bool | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The provider serving a bare model name (see the module docstring's table).

    ``vertex`` forces the Gemini choice; by default the environment decides. Raises
    :class:`~aixpy.errors.UnknownModelError` when the name does not tell — never guesses OpenAI.
    """
    provider = _model_names.detect(model, vertex=vertex, environ=environ)
    if provider is None:
        raise _cannot_tell(model)
    return provider


def split_spec(spec: str, *, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``"provider:model"`` -> ``(provider, model)``; a bare provider name -> ``(provider, None)``;
    a bare model name -> ``(detected provider, model)``."""
    provider, model = _model_names.split(spec, _REGISTRY, environ=environ)
    if provider is None:
        raise _cannot_tell(spec.strip())
    return provider, model


def _cannot_tell(model: str) -> UnknownModelError:
    return UnknownModelError(
        f"cannot tell which provider serves model {model!r}; write it as 'provider:model' (providers: "
        f"{', '.join(provider_names())}) or set 'provider:' in the config")


# new() lives in aixpy.llm._new, which imports this module: here it is an alias loaded on first use.
__getattr__ = attach(__name__, attributes={"aixpy.llm._new": ("new",)})[0]
