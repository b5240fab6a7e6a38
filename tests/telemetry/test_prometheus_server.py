"""A real Prometheus server (Debian package ``prometheus``; ``make services`` installs it) scrapes the
exporter of this process on loopback, and answers a PromQL query for the guide's
``llm_provider_latency_seconds_count`` with what the instrumented calls did."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from aixpy.llm import TestModel
from aixpy.llm.policies import InstrumentedModel
from aixpy.telemetry.prometheus import PrometheusMetrics
from tests._services._proc import fail, free_port, stop_process, wait_until


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read()) if "/api/" in url else r.read()


def test_a_real_prometheus_scrapes_the_guides_latency_histogram(tmp_path: Path) -> None:
    binary = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if binary is None:
        fail("prometheus", "the prometheus binary is not installed (apt-get install prometheus, or make services)")
    assert binary is not None
    metrics = PrometheusMetrics(CollectorRegistry())
    metrics.subscribe()
    try:
        _, exporter_port = metrics.start_http_server(0)
        model = InstrumentedModel(TestModel(provider="openai", model="gpt-4o-mini"))
        for _ in range(3):
            model.chat("hello")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: aixpy\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{exporter_port}']\n")
        port = free_port()
        log = tmp_path / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            if not wait_until(lambda: _get(base + "/-/ready") is not None, 60, proc):
                fail("prometheus", "it did not become ready", log)
            query = base + "/api/v1/query?" + urllib.parse.urlencode(
                {"query": 'llm_provider_latency_seconds_count{provider="openai",model="gpt-4o-mini"}'})
            answer: dict[str, Any] = {}

            def scraped() -> bool:
                answer.update(_get(query))
                return bool(answer["data"]["result"])

            assert wait_until(scraped, 60, proc, interval=0.25), f"no scrape: {answer}"
            (series,) = answer["data"]["result"]
            assert series["metric"]["job"] == "aixpy"
            assert float(series["value"][1]) == 3.0
            model.chat("again")                # the next scrape sees the fourth call
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if float(_get(query)["data"]["result"][0]["value"][1]) == 4.0:
                    break
                time.sleep(0.25)
            else:
                pytest.fail("prometheus never saw the fourth call")
        finally:
            stop_process(proc)
    finally:
        metrics.unsubscribe()
        metrics.stop_http_servers()
