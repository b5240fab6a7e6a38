"""``observability.otel``: OpenTelemetry turned on by config (once per process, the service name on
providers aixpy installs), strict keys with file:line errors, and the doctor row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aixpy.config import load_config_str
from aixpy.errors import ConfigError

CONFIG = """\
agents:
  - name: helper
    model: test:scripted
    prompt: Be brief.
observability:
  otel:
    enabled: true
    service_name: my-service
"""

SCRIPT = """\
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from aixpy import agents
from aixpy.config import load_config
from aixpy.telemetry import subscribers

cfg = load_config(sys.argv[1])
spans = InMemorySpanExporter()
agent = agents.new("helper", cfg)
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(spans))
agent.run("hi")
agents.new("helper", cfg).run("again")                      # a second agent: still one exporter
print(json.dumps({"spans": [[s.name, s.resource.attributes.get("service.name")] for s in spans.get_finished_spans()],
                  "subscribers": len(subscribers())}))
"""


def python(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIXPY_CONFIG"}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_otel_enabled_in_config_exports_agent_and_chat_spans_with_the_service_name(tmp_path: Path) -> None:
    (tmp_path / "aixpy.yaml").write_text(CONFIG)
    (tmp_path / "run.py").write_text(SCRIPT)
    got = python(["run.py", "aixpy.yaml"], tmp_path)
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["spans"] == [["chat scripted", "my-service"], ["invoke_agent helper", "my-service"]] * 2
    assert out["subscribers"] == 1


def test_the_otel_block_is_strict_with_file_and_line() -> None:
    with pytest.raises(ConfigError) as err:
        load_config_str(CONFIG.replace("service_name", "servce_name"), "cfg.yaml")
    assert "cfg.yaml:8" in str(err.value)
    assert "did you mean 'service_name'" in str(err.value)
    with pytest.raises(ConfigError, match=r"cfg\.yaml:7 observability\.otel\.enabled"):
        load_config_str(CONFIG.replace("enabled: true", "enabled: maybe"), "cfg.yaml")
    off = load_config_str("observability:\n  metrics:\n    enabled: false\n").observability
    assert (off.otel.enabled, off.otel.capture_content, off.otel.service_name, off.instruments) == (
        False, False, None, False)
    assert load_config_str(textwrap.dedent(CONFIG)).observability.instruments


def test_doctor_shows_the_otel_row(tmp_path: Path) -> None:
    (tmp_path / "aixpy.yaml").write_text(CONFIG.replace("enabled: true", "enabled: true\n    capture_content: true"))
    got = python(["-m", "aixpy", "doctor"], tmp_path)
    assert "opentelemetry" in got.stdout
    assert "GenAI spans and metrics (prompts and completions recorded, service.name my-service" in got.stdout
    (tmp_path / "aixpy.yaml").write_text(CONFIG.split("observability:")[0])
    got = python(["-m", "aixpy", "doctor"], tmp_path)
    assert "off (observability.otel.enabled)" in got.stdout
