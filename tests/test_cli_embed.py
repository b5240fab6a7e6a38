"""``aixpy embed --provider/--model`` and ``aixpy bench embeddings``, offline (local model + hash)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from aixpy.cli import app
from aixpy.cli._bench import sample_texts, tracked, usage_from
from aixpy.embeddings.base import EmbeddingService, Matrix
from aixpy.embeddings.hashing import HashEmbeddings


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("AIXPY_CONFIG", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "no-tiktoken-cache"))  # token counts: estimated
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok_json(*args: str, input: str | None = None) -> Any:
    res = cli(*args, "--json", input=input)
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout)


def test_embed_with_provider_override() -> None:
    data = ok_json("embed", "--provider", "hash", "vector search", "sourdough bread")
    assert (data["provider"], data["model"], data["dimensions"], data["texts"]) == ("hash", "hash-bow", 256, 2)
    assert len(data["embeddings"]) == 2
    assert "embedding" not in data  # only for a single text
    for vec in data["embeddings"]:
        assert len(vec) == 256
        assert math.isclose(sum(v * v for v in vec), 1.0, rel_tol=1e-5)
    assert data["embeddings"][0] != data["embeddings"][1]
    assert data["cost_usd"] == 0.0
    assert data["latency_ms"] > 0

    one = ok_json("embed", "-p", "hash", "-", input="vector search")
    assert one["embedding"] == data["embeddings"][0]  # stdin gives the same vector as the argument

    human = cli("embed", "--provider", "hash", "machine learning")
    assert human.exit_code == 0, human.stderr
    assert "hash-bow" in human.stdout
    assert "dimensions 256" in human.stdout


def test_embed_default_is_the_local_model() -> None:
    data = ok_json("embed", "machine learning")
    assert (data["provider"], data["dimensions"]) == ("local", 384)
    assert data["model"].endswith("all-MiniLM-L6-v2")


def test_model_override_goes_into_the_providers_block(offline: Path) -> None:
    cfg = offline / "c.yaml"
    cfg.write_text("embeddings:\n  provider: hash\n  local:\n    batch_size: 8\n")
    res = cli("embed", "--config", str(cfg), "--provider", "local", "--model", "no-such-model", "x")
    assert res.exit_code == 2, res.output + res.stderr
    assert "no-such-model" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--provider", "openai"], ["OPENAI_API_KEY"]),
        (["--provider", "huggingface_tei"], ["embeddings.huggingface_tei.endpoint"]),
        (["--provider", "huggingface"], ["--model", "embeddings.huggingface.model"]),
        (["--provider", "hash", "--model", "m"], ["fixed model"]),
        (["--provider", "nope"], ["unknown embeddings provider 'nope'", "hash", "local"]),
    ],
)
def test_embed_errors_are_one_clear_line(args: list[str], words: list[str]) -> None:
    res = cli("embed", *args, "some text")
    assert res.exit_code == 2, res.output + res.stderr
    for w in words:
        assert w in res.stderr
    assert res.stderr.startswith("error:")
    assert "Traceback" not in res.stderr


def test_bench_local_vs_hash() -> None:
    data = ok_json("bench", "embeddings", "--providers", "local,hash", "--texts", "24", "--single", "6",
                   "--rounds", "2")
    assert (data["texts"], data["single_calls"], data["rounds"]) == (24, 6, 2)
    rows = {r["provider"]: r for r in data["rows"]}
    assert list(rows) == ["local", "hash"]
    assert (rows["local"]["dimensions"], rows["hash"]["dimensions"]) == (384, 256)
    for r in rows.values():
        assert r["error"] is None
        assert 0 < r["single_p50_ms"] <= r["single_p95_ms"]
        assert len(r["batch_rounds_s"]) == 2
        assert r["batch_texts_per_s"] == pytest.approx(24 / float(np.median(r["batch_rounds_s"])))
        assert r["batch_speedup"] == pytest.approx(r["batch_texts_per_s"] * r["single_p50_ms"] / 1000)
        assert r["cost_per_1k_texts_usd"] == 0.0

    table = cli("bench", "embeddings", "--providers", "hash", "--texts", "5", "--single", "2", "--rounds", "1")
    assert table.exit_code == 0, table.stderr
    for word in ("hash-bow", "p50 ms", "batch texts/s", "free"):
        assert word in table.stdout


def test_bench_reports_a_failing_provider_and_keeps_going() -> None:
    res = cli("bench", "embeddings", "--providers", "hash,openai", "--texts", "4", "--single", "2", "--json")
    assert res.exit_code == 1
    rows = {r["provider"]: r for r in json.loads(res.stdout)["rows"]}
    assert rows["hash"]["error"] is None
    assert "OPENAI_API_KEY" in rows["openai"]["error"]
    assert "OPENAI_API_KEY" in res.stderr


def test_bench_uses_file_lines_and_configured_providers(offline: Path) -> None:
    texts = offline / "texts.txt"
    texts.write_text("first line\n\nsecond line\nthird line\n")
    cfg = offline / "aixpy.yaml"
    cfg.write_text("embeddings:\n  provider: hash\n  local:\n    batch_size: 4\n")
    data = ok_json("bench", "embeddings", "--file", str(texts), "--single", "10", "--rounds", "1")
    assert data["texts"] == 3  # blank lines skipped
    assert data["single_calls"] == 3  # never more than there are texts
    assert [r["provider"] for r in data["rows"]] == ["hash", "local"]  # embeddings.provider, then blocks
    empty = offline / "empty.txt"
    empty.write_text("\n \n")
    res = cli("bench", "embeddings", "--file", str(empty))
    assert res.exit_code == 2
    assert "no non-empty lines" in res.stderr


class _Priced(EmbeddingService):
    """A tiny real provider reporting a priced OpenAI model name (no network, no token count)."""

    provider = "openai"

    def __init__(self) -> None:
        super().__init__(model="text-embedding-3-small", dimensions=3)

    def _embed_texts(self, texts: list[str]) -> Matrix:
        return np.ones((len(texts), 3), dtype=np.float32)


def test_usage_prices_known_models() -> None:
    svc, tracker = tracked(_Priced())
    svc.embed_batch(["x" * 40, "y" * 3])
    used = usage_from(tracker)
    assert used.estimated  # the provider reported no count (and no tiktoken cache offline)
    assert used.tokens == 11  # ceil(40/4) + max(1, ceil(3/4))
    assert used.cost_usd == pytest.approx(11 * 0.02 / 1e6)
    assert "~11 tokens" in used.describe()
    hashed, free = tracked(HashEmbeddings())
    hashed.embed("a b")
    assert usage_from(free).cost_usd == 0.0


def test_sample_texts_are_deterministic() -> None:
    a, b = sample_texts(50), sample_texts(50)
    assert a == b
    assert len(set(a)) > 40
    assert all(8 <= len(t.split()) <= 20 for t in a)


class _TEIHandler(BaseHTTPRequestHandler):
    """A loopback server speaking TEI's wire format (``/info``, ``/health``, ``/embed``), embedding with
    the hash embedder so answers can be checked exactly."""

    embedder = HashEmbeddings()
    batches: list[int] = []  # noqa: RUF012 - shared by the server's handler instances on purpose

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/info":
            self._send(200, {"model_id": "test/tei-hash", "max_client_batch_size": 8, "version": "1.5.0"})
        elif self.path == "/health":
            self._send(200, {})
        else:
            self._send(404, {"error": "not found", "error_type": "Validation"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/embed" or not body.get("normalize") or body.get("truncate") is not True:
            self._send(422, {"error": f"unexpected request {self.path} {body}", "error_type": "Validation"})
            return
        type(self).batches.append(len(body["inputs"]))
        self._send(200, self.embedder.embed_batch(body["inputs"]))


@pytest.fixture
def tei_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a fake-model TEI server on a free loopback port (stopped after)."""
    _TEIHandler.batches = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TEIHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_embed_and_bench_against_a_loopback_tei_server(offline: Path, tei_server: str) -> None:
    (offline / "aixpy.yaml").write_text(f"embeddings:\n  provider: local\n  huggingface_tei:\n"
                                        f"    endpoint: {tei_server}\n")
    data = ok_json("embed", "--provider", "huggingface_tei", "vector search", "sourdough bread")
    assert (data["provider"], data["model"], data["dimensions"]) == ("huggingface_tei", "test/tei-hash", 256)
    assert data["embeddings"] == HashEmbeddings().embed_batch(["vector search", "sourdough bread"])
    assert data["cost_usd"] == 0.0

    _TEIHandler.batches = []
    bench = ok_json("bench", "embeddings", "--providers", "huggingface_tei,hash", "--texts", "20", "--single", "4",
                    "--rounds", "1")
    rows = {r["provider"]: r for r in bench["rows"]}
    assert rows["huggingface_tei"]["error"] is None
    assert rows["huggingface_tei"]["dimensions"] == 256
    assert rows["huggingface_tei"]["batch_texts_per_s"] > 0
    # warm-up + 4 single calls of one text, then 20 texts in batches of at most max_client_batch_size=8
    assert _TEIHandler.batches[:5] == [1] * 5
    assert sorted(_TEIHandler.batches[5:], reverse=True) == [8, 8, 4]
