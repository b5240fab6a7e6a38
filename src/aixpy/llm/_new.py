""":func:`new`: a chat model from a spec — a string, a config object, a dict, or a model.

String specs are built here, without the config package (pydantic); config objects and dicts go to
:mod:`aixpy.llm._build`, imported on the first such spec. The import goes one way: ``_build`` never
imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aixpy.llm.model import ChatModel
from aixpy.llm.registry import ProviderSettings, check_settings, create, split_spec
from aixpy.policy.deadline import Clock

__all__ = ["new"]


def new(spec: Any, /, *, services: Any = None, environ: Mapping[str, str] | None = None, clock: Clock | None = None,
        options: Mapping[str, Any] | None = None, **settings: Any) -> ChatModel:
    """Build a chat model from a spec.

    ``spec`` may be ``"provider:model"``, a bare provider name (its default model), a bare model name
    (provider detected, see :func:`~aixpy.llm.registry.detect_provider`), the name of a model service, an
    :class:`~aixpy.config.AgentConfig` (``providers:`` + cascade -> :class:`FallbackModel`, ``retry:``
    -> :class:`RetryModel` around it, ``timeout:`` -> per-call deadline), a
    :class:`~aixpy.config.ProviderEntry`, a :class:`~aixpy.config.ModelServiceConfig`, a dict shaped
    like an agent or a provider entry, or a model (returned as is).

    ``services``: the ``model_services`` list (or the whole :class:`~aixpy.config.AixpyConfig`) that
    model names may refer to; a whole config also applies its ``observability:`` block to an agent
    (usage ledger, daily budgets, cost alert, metrics; off by default). ``environ`` replaces
    ``os.environ`` for keys and detection; ``clock``
    drives deadlines and retry sleeps; ``options`` go to every provider built (see
    :attr:`ProviderSettings.options`). ``settings``: more :class:`ProviderSettings` fields, for string
    specs only (``api_key=``, ``endpoint=``, ``timeout=``...).
    """
    if isinstance(spec, ChatModel):
        return spec
    base: dict[str, Any] = {k: v for k, v in (("environ", environ), ("clock", clock), ("options", options))
                            if v is not None}
    known = _services(services)
    if not isinstance(spec, str) or spec in known:
        from aixpy.llm import _build  # the config package (pydantic) is paid for by config specs only

        return _build.build(spec, known, base, settings, getattr(services, "observability", None))
    check_settings(settings)
    provider, model = split_spec(spec, environ=environ)
    timeout = settings.get("timeout")
    built = create(provider, ProviderSettings(**{"model": model, **base, **settings}))
    if timeout is not None:
        built.timeout = float(timeout)
    return built


def _services(services: Any) -> dict[str, Any]:
    """``model_services`` by name, from the list or the whole config (any objects with a ``name``)."""
    if services is None:
        return {}
    items = getattr(services, "model_services", services)
    return {s.name: s for s in items}
