"""Client auth, per-key models, refusal of provider overrides (CVE-2024-6587), body limit, error shape, no CORS."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest

from tests._services.loopback_http import LoopbackHTTPServer
from tests.serve.conftest import KEY, LIMITED_KEY, REVOKED_KEY, UPSTREAM_KEY, RunningServer

CHAT = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}


def post(gateway: RunningServer, body: object, key: str | None = KEY, **headers: str) -> httpx.Response:
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return httpx.post(gateway.url + "/v1/chat/completions", content=json.dumps(body), headers=headers, timeout=10)


def assert_error_shape(r: httpx.Response, status: int, code: str | None) -> None:
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code
    assert "Traceback" not in r.text
    assert UPSTREAM_KEY not in r.text


@pytest.mark.parametrize("key", [None, "sk-wrong", REVOKED_KEY])
def test_missing_wrong_or_revoked_key_is_401(gateway: RunningServer, upstream: LoopbackHTTPServer,
                                             key: str | None) -> None:
    assert_error_shape(post(gateway, CHAT, key), 401, "invalid_api_key")
    assert upstream.take() == []
    if key is not None:
        with pytest.raises(openai.AuthenticationError), \
                openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0) as c:
            c.models.list()


def test_key_limited_to_other_models(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    assert_error_shape(post(gateway, CHAT, LIMITED_KEY), 403, "model_not_allowed")
    assert post(gateway, {**CHAT, "model": "other"}, LIMITED_KEY).status_code == 200
    assert [r.json["model"] for r in upstream.take()] == ["stub-other"]


def test_unknown_model_and_provider_specs_are_refused(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    for model in ("nope", "openai:gpt-4o-mini", "openai_compatible:stub-model"):
        assert_error_shape(post(gateway, {**CHAT, "model": model}), 404, "model_not_found")
    assert upstream.take() == []


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "extra_headers", "headers", "organization"])
def test_provider_overrides_in_the_body_are_refused_and_never_reach_an_upstream(
        gateway: RunningServer, upstream: LoopbackHTTPServer, field: str) -> None:
    with LoopbackHTTPServer(name="attacker") as attacker:
        attacker.handler = lambda rec: pytest.fail("the attacker's server was called")
        value = attacker.url if field in ("api_base", "base_url") else {"X-Evil": "1"} if "headers" in field else "k"
        r = post(gateway, {**CHAT, field: value})
        assert_error_shape(r, 400, "forbidden_parameter")
        assert attacker.requests == []
    assert upstream.take() == []


def test_client_headers_are_never_forwarded(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    r = post(gateway, CHAT, **{"x-api-key": "client-override", "openai-organization": "evil", "x-base-url": "x"})
    assert r.status_code == 200
    rec = upstream.take_one()
    assert rec.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert not {"x-api-key", "openai-organization", "x-base-url"} & {h.lower() for h in rec.headers}


def test_unknown_field_is_400(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    assert_error_shape(post(gateway, {**CHAT, "logit_bias": {"1": 2}}), 400, "unsupported_parameter")
    assert upstream.take() == []


def test_body_too_large_is_413(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_error_shape(post(gateway, big), 413, "request_too_large")
    # without a Content-Length (chunked), the limit holds while reading
    r = httpx.post(gateway.url + "/v1/chat/completions", content=iter([json.dumps(big).encode()]),
                   headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert_error_shape(r, 413, "request_too_large")
    assert upstream.take() == []


def test_no_cors_and_probes(gateway: RunningServer) -> None:
    r = httpx.options(gateway.url + "/v1/chat/completions", headers={
        "origin": "https://evil.example", "access-control-request-method": "POST"}, timeout=10)
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers
    assert httpx.get(gateway.url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert httpx.get(gateway.url + "/readyz", timeout=10).json() == {"status": "ready"}
    assert httpx.get(gateway.url + "/metrics", timeout=10).status_code == 401
    post(gateway, CHAT)
    metrics = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert metrics.status_code == 200
    assert 'llm_requests_total{model="stub-model"' in metrics.text


def test_upstream_failure_says_no_more_than_its_kind(gateway: RunningServer, upstream: LoopbackHTTPServer) -> None:
    from tests._services.loopback_http import Reply

    upstream.handler = lambda rec: Reply(f'{{"error": {{"message": "boom at http://10.1.2.3/ {UPSTREAM_KEY}"}}}}'
                                         .encode(), status=500)
    r = post(gateway, CHAT)
    assert_error_shape(r, 502, "upstream_error")
    assert "10.1.2.3" not in r.text


def test_non_loopback_without_keys_refuses_to_start(tmp_path: object) -> None:
    r = subprocess.run([sys.executable, "-m", "aixpy", "serve", "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "not a loopback address" in r.stderr
