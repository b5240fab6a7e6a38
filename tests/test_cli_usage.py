"""The guide's ``observability:`` block made real, end to end: an agent built from config against a loopback
OpenAI-compatible server is recorded in the SQLite ledger, its daily_token_limit stops a call before any
request, metrics reach the default registry, and ``aixpy usage`` / ``aixpy doctor`` (separate processes)
report it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aixpy import llm, telemetry
from aixpy.config import load_config_str
from aixpy.errors import BudgetExceededError, ConfigError
from aixpy.llm.policies import BudgetedModel, InstrumentedModel, RetryModel
from tests._services.loopback_http import LoopbackHTTPServer, Reply

FIXTURE = Path(__file__).parent / "llm" / "fixtures" / "openai_text.json"  # 19 in, 10 out, gpt-4o-2024-08-06


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "aixpy", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def server() -> Iterator[LoopbackHTTPServer]:
    with LoopbackHTTPServer(reply=Reply(FIXTURE.read_bytes())) as srv:
        yield srv


def config_text(url: str, ledger: Path, limit: int) -> str:
    return f"""
agents:
  - name: support
    provider: openai
    model: gpt-4o
    api_key: sk-test
    endpoint: {url}/v1
    retry: {{max_attempts: 2}}
observability:
  cost_tracking: true
  cost_alert_threshold: 100
  llm_observability:
    enabled: true
    track_tokens: true
    daily_token_limit: {limit}
  ledger:
    path: {ledger}
"""


def test_config_agent_records_usage_enforces_its_limit_and_usage_reports_it(server: LoopbackHTTPServer,
                                                                            tmp_path: Path) -> None:
    ledger_path = tmp_path / "usage.sqlite3"
    # one call reserves ceil(5/4) + 4 + 1024 = 1030 and uses 29: the second call would cross 1050
    cfg = load_config_str(config_text(server.url, ledger_path, 1050))
    (tmp_path / "aixpy.yaml").write_text(config_text(server.url, ledger_path, 1050))
    model = llm.new(cfg.agent("support"), services=cfg)
    assert isinstance(model, InstrumentedModel)
    assert isinstance(model.inner, BudgetedModel)
    assert isinstance(model.inner.inner, RetryModel)
    reply = model.chat("hello")
    assert reply.usage.input_tokens == 19
    with pytest.raises(BudgetExceededError):
        model.chat("hello")
    assert len(server.take()) == 1   # the refused call made no request
    model.close()

    usage = run(["usage", "--json"], tmp_path)
    assert usage.returncode == 0, usage.stderr
    data = json.loads(usage.stdout)
    (row,) = data["rows"]
    assert (row["provider"], row["model"], row["agent"], row["calls"], row["tokens"]) == (
        "openai", "gpt-4o-2024-08-06", "support", 1, 29)
    assert row["cost_usd"] == pytest.approx(reply.cost_usd)
    assert data["today_totals"]["tokens"] == 29
    text = run(["usage"], tmp_path)
    assert text.returncode == 0
    assert "gpt-4o-2024-08-06" in text.stdout
    assert "support" in text.stdout
    doctor = run(["doctor"], tmp_path)
    assert "usage ledger" in doctor.stdout
    assert str(ledger_path) in doctor.stdout
    assert "1050 tokens/day" in doctor.stdout
    assert "once a day above $100" in doctor.stdout
    assert "sk-test" not in doctor.stdout + usage.stdout + text.stdout


def test_defaults_wrap_nothing_and_usage_without_a_ledger_reports_nothing(server: LoopbackHTTPServer,
                                                                          tmp_path: Path) -> None:
    cfg = load_config_str(config_text(server.url, tmp_path / "u.sqlite3", 10).split("observability:")[0])
    model = llm.new(cfg.agent("support"), services=cfg)
    assert isinstance(model, RetryModel)
    model.close()
    got = run(["usage", "--json"], tmp_path)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["rows"] == []
    assert not (tmp_path / ".aixpy").exists()   # reading never creates a ledger
    doctor = run(["doctor"], tmp_path)
    assert "off (observability.metrics.enabled)" in doctor.stdout


def test_metrics_enabled_in_config_serves_the_guides_histogram(server: LoopbackHTTPServer, tmp_path: Path) -> None:
    import urllib.request

    from tests._services._proc import free_port

    port = free_port()
    text = config_text(server.url, tmp_path / "u.sqlite3", 100000)
    text += f"  metrics:\n    enabled: true\n    port: {port}\n"
    cfg = load_config_str(text)
    try:
        with llm.new(cfg.agent("support"), services=cfg) as model:
            model.chat("hello")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'llm_provider_latency_seconds_count{model="gpt-4o-2024-08-06",provider="openai"}' in body
    finally:
        telemetry.disable_prometheus()


def test_observability_keys_are_validated() -> None:
    with pytest.raises(ConfigError, match="ledger"):
        load_config_str("observability:\n  ledger:\n    backend: redis\n")
    with pytest.raises(ConfigError, match="limit_scope"):
        load_config_str("observability:\n  llm_observability:\n    limit_scope: team\n")
