"""deploy/compose.yaml against the Compose Specification schema, and the config and Prometheus file it mounts."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy._dockerfile import DEPLOY

SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
SERVICES = {"aixpy", "qdrant", "postgres", "redis", "tei", "ollama", "prometheus"}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_schema_is_the_compose_specification() -> None:
    assert SCHEMA["title"] == "Compose Specification"
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_compose_file_is_valid() -> None:
    assert _errors(_compose()) == []


@pytest.mark.parametrize("breakage", ["unknown_key", "bad_healthcheck", "bad_depends_on"])
def test_the_schema_rejects_a_broken_file(breakage: str) -> None:
    doc = copy.deepcopy(_compose())
    if breakage == "unknown_key":
        doc["services"]["aixpy"]["imagee"] = "typo"
    elif breakage == "bad_healthcheck":
        doc["services"]["redis"]["healthcheck"]["retry"] = 3
    else:
        doc["services"]["aixpy"]["depends_on"]["redis"] = {"condition": "service_hopeful"}
    assert _errors(doc)


def test_services_healthchecks_and_named_volumes() -> None:
    doc = _compose()
    services = doc["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    declared = set(doc["volumes"])
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert used == declared
    assert len(declared) == 6
    assert services["aixpy"]["build"]["dockerfile"] == "deploy/Dockerfile"
    for dep, cond in services["aixpy"]["depends_on"].items():
        assert cond == {"condition": "service_healthy"}, dep
    # the guide's images and commands: TEI's model flags, Ollama's data volume
    assert services["tei"]["image"].startswith("ghcr.io/huggingface/text-embeddings-inference:")
    assert "--model-id=BAAI/bge-large-en-v1.5" in services["tei"]["command"]
    assert services["ollama"]["image"] == "ollama/ollama:0.5.4"
    assert "ollama-data:/root/.ollama" in services["ollama"]["volumes"]
    # mounted files exist next to the compose file
    for service in services.values():
        for v in service.get("volumes", []):
            if v.startswith("./"):
                assert (DEPLOY / v.split(":")[0]).is_file(), v


def test_no_secret_is_written_in_the_files() -> None:
    env = _compose()["services"]["aixpy"]["environment"]
    assert all(str(v).startswith("${") for v in env.values())
    text = (DEPLOY / "aixpy.yaml").read_text()
    assert "sha256: \"${AIXPY_CLIENT_KEY_SHA256}\"" in text
    assert "${POSTGRES_PASSWORD}" in text


def test_the_compose_config_loads_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    from aixpy import embeddings, llm, vectorstores
    from aixpy.config import load_config

    for var in ("AIXPY_CLIENT_KEY_SHA256", "AIXPY_METRICS_KEY_SHA256"):
        monkeypatch.setenv(var, hashlib.sha256(var.encode()).hexdigest())
    monkeypatch.setenv("POSTGRES_PASSWORD", "pw")
    cfg = load_config(DEPLOY / "aixpy.yaml")
    assert cfg.unresolved_variables == {}
    assert {k.name for k in cfg.serve.api_keys} == {"default", "prometheus"}
    assert [p.provider for p in cfg.agents[0].providers] == ["ollama"]
    assert cfg.embeddings is not None
    assert cfg.vectorstore is not None
    model = llm.new(cfg.agents[0], services=cfg)
    assert "http://ollama:11434" in repr(model)
    assert embeddings.new(cfg.embeddings).dimensions() == cfg.vectorstore.embedding_dimensions == 1024
    vectorstores.new(cfg.vectorstore)  # builds without connecting


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (make services installs it)"
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["aixpy:8000"]
    secret = job["authorization"]["credentials_file"]
    assert secret == "/run/secrets/aixpy_metrics_key"
    assert "aixpy_metrics_key" in _compose()["secrets"]
    job["authorization"]["credentials_file"] = str(tmp_path / "key")  # where Compose mounts the secret
    (tmp_path / "key").write_text("k")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
