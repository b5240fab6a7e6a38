"""The ``observability:`` block applied to a config-built agent's model (by :mod:`aixpy.llm._build`).

``InstrumentedModel(BudgetedModel(<retry/fallback stack>))``: the budget wrapper sits outside the one
retry loop (one reservation per call), and instrumentation outside it so a refused call is still an
``LLMEvent`` (``error="BudgetExceededError"``, no attempt). Nothing is wrapped while the block is at its
defaults. One ledger is opened per ledger config and process, the Prometheus endpoint is started
once per process (:func:`aixpy.telemetry.enable_prometheus`), and so is the OpenTelemetry exporter
(``observability.otel``: :func:`aixpy.telemetry.otel.configure_otel`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aixpy.llm.model import ChatModel
from aixpy.llm.policies.budget import Budget, BudgetedModel
from aixpy.llm.policies.instrumented import InstrumentedModel

if TYPE_CHECKING:
    from aixpy.config.llm import LedgerConfig, ObservabilityConfig
    from aixpy.telemetry.ledger import UsageLedger

__all__ = ["ledger_for", "observe"]

_ledgers: dict[str, UsageLedger] = {}
_lock = threading.Lock()


def ledger_for(cfg: LedgerConfig) -> UsageLedger:
    """The process's ledger for ``cfg`` (opened on first use, then shared by every model built)."""
    from aixpy.telemetry.ledger import DEFAULT_LEDGER_PATH, RedisLedger, SQLiteLedger

    url = cfg.url.get_secret_value() if cfg.url is not None else ""
    key = f"redis\0{url}\0{cfg.key_prefix}" if cfg.backend == "redis" else f"sqlite\0{cfg.path or ''}"
    with _lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            if cfg.backend == "redis":
                ledger = RedisLedger(url, prefix=cfg.key_prefix, retention_days=cfg.retention_days)
            else:
                ledger = SQLiteLedger(cfg.path or DEFAULT_LEDGER_PATH)
            _ledgers[key] = ledger
    return ledger


def observe(model: ChatModel, agent: str, obs: ObservabilityConfig | None) -> ChatModel:
    """``model`` wrapped as ``obs`` asks (unchanged when it asks for nothing)."""
    if obs is None:
        return model
    llm = obs.llm_observability
    if obs.uses_ledger:
        budget = Budget(daily_token_limit=llm.daily_token_limit, daily_cost_limit=llm.daily_cost_limit,
                        scope=llm.limit_scope, default_output_tokens=llm.default_output_tokens,
                        cost_alert_threshold=obs.cost_alert_threshold, alert_webhook=obs.cost_alert_webhook)
        model = BudgetedModel(model, ledger_for(obs.ledger), budget, agent=agent)
    if obs.metrics.enabled:
        from aixpy.telemetry import enable_prometheus

        enable_prometheus(port=obs.metrics.port, addr=obs.metrics.host)
    if obs.otel.enabled:
        from aixpy.telemetry.otel import configure_otel

        configure_otel(capture_content=obs.otel.capture_content, service_name=obs.otel.service_name)
    if obs.instruments:
        model = InstrumentedModel(model)
    return model
