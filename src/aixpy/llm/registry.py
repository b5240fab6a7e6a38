"""Provider registry and model selection: :func:`new`, :func:`register`, :func:`detect_provider`.

Built-in providers register exactly like third-party ones: a name and a factory
``(ProviderSettings) -> ChatModel``, given as an object or as a lazy ``"module:function"`` path, so
nothing is imported before it is used. Third-party packages add providers through the entry-point
group ``aixpy.llm`` (name = provider name, value = the factory)::

    [project.entry-points."aixpy.llm"]
    mistral = "aixpy_mistral:create"

Detection of a bare model name (:func:`detect_provider`), in this order — never a default to OpenAI:

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

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from aixpy._registry import Registry
from aixpy.errors import ConfigError, InvalidInputError, UnknownModelError
from aixpy.llm.deadline import Clock

if TYPE_CHECKING:
    from aixpy.config.llm import AgentConfig, ModelServiceConfig, ProviderEntry
    from aixpy.llm._http import HttpOptions
    from aixpy.llm.model import ChatModel

__all__ = [
    "ProviderFactory",
    "ProviderSettings",
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
    for key lookup (tests).
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
        for key in ("on_request", "connect_timeout"):
            if self.options.get(key) is not None:
                out[key] = self.options[key]
        return out  # type: ignore[return-value]


ProviderFactory: TypeAlias = "Callable[[ProviderSettings], ChatModel]"

_BUILTINS: dict[str, str] = {
    name: f"aixpy.llm.providers.{name}:create"
    for name in ("openai", "anthropic", "gemini", "vertexai", "xai", "huggingface", "ollama", "openai_compatible")
}
_BUILTINS["test"] = "aixpy.llm.testing:create"
_ALIASES = {"vertex": "vertexai", "google": "gemini", "hf": "huggingface", "grok": "xai", "claude": "anthropic",
            "openai-compatible": "openai_compatible", "vllm": "openai_compatible", "llamacpp": "openai_compatible"}
_REGISTRY: Registry[ProviderFactory] = Registry("LLM", "aixpy.llm", _BUILTINS, _ALIASES)


def register(name: str, factory: ProviderFactory | str, *, replace: bool = False) -> None:
    """Register a provider under ``name``: a factory or a lazy ``"module:function"`` path.

    Raises InvalidInputError if the name is taken (pass ``replace=True`` to override it).
    """
    _REGISTRY.register(name, factory, replace=replace)


def provider_names() -> list[str]:
    """Names of every registered provider (built-ins, :func:`register`, entry points)."""
    return _REGISTRY.names()


def create(provider: str, settings: ProviderSettings | None = None) -> ChatModel:
    """Build a model of ``provider`` (a registered name or alias) from ``settings``."""
    return _REGISTRY.resolve(provider)(settings or ProviderSettings())


# --------------------------------------------------------------------------- detection

_OPENAI = re.compile(r"^(?:gpt-|chatgpt-|o[134](?:-|$))")
_TRUE = frozenset({"1", "true", "yes", "on"})


def _vertex_configured(environ: Mapping[str, str]) -> bool:
    if environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in _TRUE:
        return True
    has_key = any(environ.get(k, "").strip() for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY"))
    has_project = any(environ.get(k, "").strip() for k in ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT_ID"))
    return has_project and not has_key


def detect_provider(model: str, *, vertex: bool | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The provider serving a bare model name (see the module docstring's table).

    ``vertex`` forces the Gemini choice; by default the environment decides. Raises
    :class:`~aixpy.errors.UnknownModelError` when the name does not tell — never guesses OpenAI.
    """
    name = model.strip().lower()
    if name.startswith("ft:"):  # an OpenAI fine-tune: ft:gpt-4o-mini:org::id
        return "openai"
    if "/" in name:
        head = name.split("/", 1)[0]
        return "ollama" if "." in head else "huggingface"
    if ":" in name:
        return "ollama"
    if _OPENAI.match(name):
        return "openai"
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith("gemini"):
        env = os.environ if environ is None else environ
        return "vertexai" if (vertex if vertex is not None else _vertex_configured(env)) else "gemini"
    if name.startswith("grok"):
        return "xai"
    raise UnknownModelError(
        f"cannot tell which provider serves model {model!r}; write it as 'provider:model' (providers: "
        f"{', '.join(provider_names())}) or set 'provider:' in the config")


def split_spec(spec: str, *, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """``"provider:model"`` -> ``(provider, model)``; a bare provider name -> ``(provider, None)``;
    a bare model name -> ``(detected provider, model)``."""
    text = spec.strip()
    if not text:
        raise InvalidInputError("empty model specification")
    head, sep, rest = text.partition(":")
    if head in _REGISTRY:
        return _REGISTRY.canonical(head), (rest.strip() or None) if sep else None
    return detect_provider(text, environ=environ), text


# --------------------------------------------------------------------------- new()


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _services(services: Any) -> dict[str, ModelServiceConfig]:
    if services is None:
        return {}
    items = getattr(services, "model_services", services)
    return {s.name: s for s in items}


def _v1(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _from_service(svc: ModelServiceConfig, base: dict[str, Any]) -> ChatModel:
    address = svc.config.address
    settings = {**base, "model": svc.model, "runtime": svc.runtime}
    settings.setdefault("timeout", svc.config.timeout.total_seconds())
    if svc.runtime == "ollama":
        return create("ollama", ProviderSettings(**{**settings, "endpoint": address}))
    if svc.runtime == "vllm":
        if address is None:
            raise ConfigError(f"model service {svc.name!r} (runtime vllm) needs config.address", path="config.address")
        return create("openai_compatible", ProviderSettings(**{**settings, "endpoint": _v1(address)}))
    return create(svc.provider, ProviderSettings(**{**settings, "endpoint": address}))


def _from_entry(entry: ProviderEntry, services: Mapping[str, ModelServiceConfig], base: dict[str, Any]) -> ChatModel:
    common = {**base, **{k: v for k, v in (("timeout", _seconds(entry.timeout)), ("temperature", entry.temperature),
                                            ("max_tokens", entry.max_tokens)) if v is not None}}
    if entry.model in services:  # the service says which runtime serves which model
        return _from_service(services[entry.model], common)
    environ = base.get("environ")
    model: str | None = entry.model
    provider: str
    if entry.provider is not None:
        provider = entry.provider
    elif entry.project_id or entry.location:
        provider = detect_provider(entry.model, vertex=True, environ=environ)
    else:
        provider, model = split_spec(entry.model, environ=environ)
    if entry.runtime == "ollama":
        provider = "ollama"
    elif entry.runtime == "vllm":
        provider = "openai_compatible"
    from aixpy.http import secret

    entry_options = getattr(entry, "options", None)  # a per-entry ``options:`` block, when the config has one
    if entry_options:
        common["options"] = {**common.get("options", {}), **entry_options}
    settings = ProviderSettings(model=model, api_key=secret(entry.api_key), endpoint=entry.endpoint,
                                location=entry.location, project_id=entry.project_id, runtime=entry.runtime,
                                **common)
    return create(provider, settings)


def _from_agent(agent: AgentConfig, services: Mapping[str, ModelServiceConfig], base: dict[str, Any]) -> ChatModel:
    models = [_from_entry(e, services, base) for e in agent.provider_entries]
    clock = base.get("clock")
    model: ChatModel
    if len(models) == 1:
        model = models[0]
    else:
        from aixpy.llm.policies.fallback import FallbackModel

        model = FallbackModel(models, clock=clock)
    if agent.retry is not None:
        from aixpy.llm.policies.retry import RetryModel

        model = RetryModel(model, agent.retry, clock=clock)
    model.timeout = _seconds(agent.timeout)
    return model


def _config_types() -> tuple[type[Any], ...] | None:
    mod = sys.modules.get("aixpy.config.llm")
    if mod is None:
        return None
    return mod.AgentConfig, mod.ProviderEntry, mod.ModelServiceConfig


def new(spec: Any, /, *, services: Any = None, environ: Mapping[str, str] | None = None, clock: Clock | None = None,
        options: Mapping[str, Any] | None = None, **settings: Any) -> ChatModel:
    """Build a chat model from a spec.

    ``spec`` may be ``"provider:model"``, a bare provider name (its default model), a bare model name
    (provider detected, see :func:`detect_provider`), the name of a model service, an
    :class:`~aixpy.config.AgentConfig` (``providers:`` + cascade -> :class:`FallbackModel`, ``retry:``
    -> :class:`RetryModel` around it, ``timeout:`` -> per-call deadline), a
    :class:`~aixpy.config.ProviderEntry`, a :class:`~aixpy.config.ModelServiceConfig`, a dict shaped
    like an agent or a provider entry, or a model (returned as is).

    ``services``: the ``model_services`` list (or the whole :class:`~aixpy.config.AixpyConfig`) that
    model names may refer to. ``environ`` replaces ``os.environ`` for keys and detection; ``clock``
    drives deadlines and retry sleeps; ``options`` go to every provider built (see
    :attr:`ProviderSettings.options`). ``settings``: more :class:`ProviderSettings` fields, for string
    specs only (``api_key=``, ``endpoint=``, ``timeout=``...).
    """
    from aixpy.llm.model import ChatModel

    if isinstance(spec, ChatModel):
        return spec
    base: dict[str, Any] = {k: v for k, v in (("environ", environ), ("clock", clock), ("options", options))
                            if v is not None}
    known = _services(services)
    if isinstance(spec, Mapping):
        from aixpy.config.llm import AgentConfig, ProviderEntry

        data = dict(spec)
        spec = AgentConfig.model_validate(data) if "name" in data or "providers" in data \
            else ProviderEntry.model_validate(data)
    unknown = set(settings) - set(ProviderSettings.__dataclass_fields__)
    if unknown:
        raise InvalidInputError(f"unknown setting(s) {sorted(unknown)} for new()")
    if isinstance(spec, str):
        if spec in known:
            return _from_service(known[spec], {**base, **settings})
        provider, model = split_spec(spec, environ=environ)
        timeout = settings.get("timeout")
        built = create(provider, ProviderSettings(**{"model": model, **base, **settings}))
        if timeout is not None:
            built.timeout = float(timeout)
        return built
    if settings:
        raise InvalidInputError(f"settings {sorted(settings)} apply to string specs only; a config carries its own")
    types = _config_types()
    if types is not None:
        agent_t, entry_t, service_t = types
        if isinstance(spec, agent_t):
            return _from_agent(spec, known, base)
        if isinstance(spec, entry_t):
            return _from_entry(spec, known, base)
        if isinstance(spec, service_t):
            return _from_service(spec, base)
    raise InvalidInputError(f"cannot build a chat model from a {type(spec).__name__}; pass 'provider:model', an "
                            "AgentConfig, a ProviderEntry, a ModelServiceConfig or a ChatModel")
