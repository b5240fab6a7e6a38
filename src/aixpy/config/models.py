"""The root config model, :class:`AixpyConfig`: every block of an aixpy YAML file."""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from aixpy import _model_names
from aixpy.config._base import ConfigValueError, StrictModel, mask_urls, quote
from aixpy.config.llm import AgentConfig, ModelServiceConfig, ObservabilityConfig, infer_provider
from aixpy.config.serve import ServeConfig
from aixpy.config.sessions import SessionsConfig
from aixpy.config.stores import EmbeddingsConfig, VectorStoreConfig
from aixpy.errors import UnknownProviderError

__all__ = ["TOP_LEVEL_KEYS", "AixpyConfig", "is_secret_key"]

TOP_LEVEL_KEYS = ("agents", "model_services", "embeddings", "vectorstore", "observability", "serve", "sessions")

_SECRET_KEY = re.compile(r"(?i)(api_?key|secret|token|password|passwd|connection_string|dsn)$")


def is_secret_key(key: str, path: str = "") -> bool:
    """Whether a config key holds a secret (``api_key``, ``connection_string``, ``*_password``..., or any
    entry of a ``headers:`` block when its dotted ``path`` is given)."""
    return bool(_SECRET_KEY.search(key)) or path.endswith(f"headers.{key}")


class AixpyConfig(StrictModel):
    """A whole aixpy config file. Every block is optional.

    ``agents``/``model_services`` default to empty lists, ``observability`` to its defaults;
    ``embeddings``/``vectorstore``/``sessions`` are ``None`` when absent so callers can choose their default.

    ``repr``/``str`` and :meth:`redacted_dict`/:meth:`dump_yaml` never show secrets.
    """

    model_config = ConfigDict(protected_namespaces=())

    agents: list[AgentConfig] = Field(default_factory=list)
    model_services: list[ModelServiceConfig] = Field(default_factory=list)
    # ``None`` when the file has no such block: the caller picks its default (the library: local
    # embeddings and a memory store; the CLI: a persistent embedded store).
    embeddings: EmbeddingsConfig | None = None
    vectorstore: VectorStoreConfig | None = None
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)  # read by aixpy.serve only
    # ``None`` when absent: sessions then follow $AIXPY_SESSIONS_REDIS_URL, else files (agents.sessions)
    sessions: SessionsConfig | None = None
    _unresolved: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    @property
    def unresolved_variables(self) -> dict[str, tuple[str, ...]]:
        """Key path -> the ``${VAR}`` names it uses that were not set when the file was loaded.

        Only values inside provider blocks no ``provider:`` selects (``embeddings.openai`` while the
        provider is ``local``) may stay unresolved; they keep the ``${VAR}`` text as written. A variable
        any used block needs is an error at load time. ``aixpy doctor`` warns about these.
        """
        return dict(self._unresolved)

    @model_validator(mode="before")
    @classmethod
    def _empty_blocks(cls, data: Any) -> Any:
        # ``agents:`` with nothing under it is YAML null: treat it like an absent block.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k in TOP_LEVEL_KEYS and v is None)}
        return data

    @model_validator(mode="after")
    def _cross_references(self) -> AixpyConfig:
        services: dict[str, int] = {}
        for i, svc in enumerate(self.model_services):
            if svc.name in services:
                raise ConfigValueError(
                    f"model service name {quote(svc.name)} is already used by model_services[{services[svc.name]}]",
                    "model_services", i, "name",
                )
            services[svc.name] = i
        agents: dict[str, int] = {}
        for i, agent in enumerate(self.agents):
            if agent.name in agents:
                raise ConfigValueError(
                    f"agent name {quote(agent.name)} is already used by agents[{agents[agent.name]}]",
                    "agents", i, "name",
                )
            agents[agent.name] = i
            if agent.providers is None:
                _check_model_ref(agent.model, agent.provider, services, ("agents", i, "model"))
            else:
                for j, entry in enumerate(agent.providers):
                    _check_model_ref(entry.model, entry.provider, services,
                                     ("agents", i, "providers", j, "model"))
        return self

    # -------------------------------------------------------------- lookups

    def agent(self, name: str) -> AgentConfig:
        """The agent called ``name``; ``KeyError`` if there is none."""
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)

    def model_service(self, name: str) -> ModelServiceConfig | None:
        """The model service called ``name``, or ``None``."""
        return next((s for s in self.model_services if s.name == name), None)

    # -------------------------------------------------------------- safe output

    def redacted_dict(self, *, exclude_defaults: bool = False) -> dict[str, Any]:
        """A JSON-able dict of the config with every secret replaced by ``**********``.

        Passwords embedded in URLs (``https://user:pass@host``) are masked as well.
        """
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=exclude_defaults)
        scrubbed = _scrub(data)
        assert isinstance(scrubbed, dict)
        return scrubbed

    def dump_yaml(self, *, exclude_defaults: bool = False) -> str:
        """The config as YAML, secrets redacted (see :meth:`redacted_dict`)."""
        import yaml

        return yaml.safe_dump(
            self.redacted_dict(exclude_defaults=exclude_defaults), sort_keys=False, allow_unicode=True
        )


def _check_model_ref(
    model: str | None, provider: str | None, services: dict[str, int], loc: tuple[str | int, ...]
) -> None:
    if model is None or provider is not None or model in services:
        return
    try:
        _model_names.split(model, _model_names.PROVIDERS, environ={})
    except UnknownProviderError as exc:  # antropic:claude-3-5-haiku-latest: did you mean anthropic:...?
        raise ConfigValueError(str(exc), *loc) from None
    if infer_provider(model):
        return
    close = difflib.get_close_matches(model, list(services), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigValueError(
        f"model {quote(model)} is not a model_services name and its provider cannot be told from its name; "
        f"set 'provider:' or add it to model_services{hint}",
        *loc,
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "**********" if is_secret_key(str(k)) and isinstance(v, str) and v else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return mask_urls(value)
