"""deploy/k8s/: every manifest valid for Kubernetes (kubernetes-validate, strict), and wired to the image."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy._dockerfile import DEPLOY, DOCKERFILE, stages

K8S = DEPLOY / "k8s"
VERSION = kubernetes_validate.latest_version()


def _docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for _, d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_every_manifest_is_valid() -> None:
    docs = _docs()
    assert {d["kind"] for _, d in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler",
                                            "PodDisruptionBudget", "ConfigMap", "Secret", "PersistentVolumeClaim"}
    for path, doc in docs:
        try:
            kubernetes_validate.validate(doc, VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {e.message}")


@pytest.mark.parametrize("breakage", ["no_selector", "unknown_field", "bad_probe"])
def test_the_validator_rejects_a_broken_deployment(breakage: str) -> None:
    doc = copy.deepcopy(_one("Deployment", "aixpy"))
    container = doc["spec"]["template"]["spec"]["containers"][0]
    if breakage == "no_selector":
        del doc["spec"]["selector"]
    elif breakage == "unknown_field":
        container["readinessProbes"] = container.pop("readinessProbe")
    else:
        container["livenessProbe"]["httpGet"]["port"] = [8000]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_deployment_probes_resources_and_security() -> None:
    spec = _one("Deployment", "aixpy")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    # the image's non-root user, and its config path where the ConfigMap is mounted
    final = stages(DOCKERFILE.read_text())[-1]
    (user,) = final.all("USER")
    assert str(spec["securityContext"]["runAsUser"]) == user.split(":")[0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert final.env()["AIXPY_CONFIG"] == mounts["config"] + "/aixpy.yaml"
    # the writable paths of a read-only root: /tmp and HOME (the image's WORKDIR)
    assert {mounts["tmp"], mounts["home"]} == {"/tmp", final.env()["HOME"]}
    assert spec["terminationGracePeriodSeconds"] > 30


def test_secrets_are_referenced_never_inlined() -> None:
    (container,) = _one("Deployment", "aixpy")["spec"]["template"]["spec"]["containers"]
    secrets = {d["metadata"]["name"]: d["stringData"] for _, d in _docs() if d["kind"] == "Secret"}
    for env in container["env"]:
        ref = env["valueFrom"]["secretKeyRef"]  # every variable comes from a Secret
        assert ref["key"] in secrets[ref["name"]], env["name"]
    for values in secrets.values():  # the template holds placeholders only
        assert all(v.startswith("REPLACE_ME") for v in values.values())


def test_the_configmap_config_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aixpy.config import load_config

    for var in ("AIXPY_CLIENT_KEY_SHA256", "AIXPY_METRICS_KEY_SHA256"):
        monkeypatch.setenv(var, hashlib.sha256(var.encode()).hexdigest())
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.delenv("QDRANT_URL", raising=False)
    file = tmp_path / "aixpy.yaml"
    file.write_text(_one("ConfigMap", "aixpy-config")["data"]["aixpy.yaml"])
    cfg = load_config(file)
    assert cfg.unresolved_variables == {}
    assert cfg.vectorstore is not None
    assert cfg.embeddings is not None
    assert cfg.embeddings.provider == "local"
    assert cfg.vectorstore.embedding_dimensions == 384
    assert cfg.serve.graceful_shutdown < _one("Deployment", "aixpy")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]


def test_ollama_deployment_follows_the_guide() -> None:
    spec = _one("Deployment", "ollama")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "ollama/ollama:0.5.4"
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["runAsNonRoot"] is True
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/api/tags"
    assert container["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                                      "limits": {"cpu": "4", "memory": "8Gi"}}
    claim = spec["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert _one("PersistentVolumeClaim", claim)
    assert _one("Service", "ollama")["spec"]["ports"][0]["port"] == 11434
