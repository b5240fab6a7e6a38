"""Qdrant through qdrant-client: the client-form filter compiler, config dispatch, secrets, a
reopened local directory, and the REST requests the server mode sends.

No Qdrant server binary can run here. ``rest_server`` is a loopback HTTP server speaking the part
of Qdrant's REST API aixpy uses, with qdrant-client's local mode behind it: the client's real HTTP
transport, request building and response parsing run end to end, and every request is recorded
so the tests can check what aixpy sends (distance, hnsw_config, wait=true, payload indexes,
filters, score_threshold, hnsw_ef, api-key header).
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from qdrant_client import QdrantClient, models

from aixpy import vectorstores
from aixpy.config.stores import QdrantStoreConfig
from aixpy.errors import ConfigError, InvalidInputError, MissingDependencyError, NotFoundError, StoreError
from aixpy.vectorstores import CollectionOptions, Query, Scope
from aixpy.vectorstores import _qdrant_filters as qf
from aixpy.vectorstores import filters as F
from aixpy.vectorstores._qdrant_server import QdrantServerStore, client_kwargs
from aixpy.vectorstores.filters import matches
from aixpy.vectorstores.qdrant import QdrantStore
from aixpy.vectorstores.types import utcnow

from ._support import doc, doc_fields, ids, summary
from .test_qdrant import FUZZ, vec

SRC = str(Path(__file__).resolve().parents[2] / "src")
KEY = "qk-test-0123456789abcdef"


def local_store() -> QdrantServerStore:
    s = vectorstores.new({"provider": "qdrant", "qdrant": {"local": ":memory:"}})
    assert isinstance(s, QdrantServerStore)
    return s


# ------------------------------------------------------------------ the filter compiler, client form


def test_client_filters_agree_with_the_reference_evaluator() -> None:
    rng = random.Random(20240602)
    docs = FUZZ.dataset(rng, 90)
    with local_store() as s:
        c = s.collection("f", CollectionOptions(dimensions=4))
        assert c.upsert_batch(docs).inserted == len(docs)
        visible = [d for d in docs if not d.is_expired(utcnow())]
        inexact = 0
        for n in range(300):
            f = FUZZ.filter(rng)
            expected = sorted(d.id for d in visible if matches(f, d))
            inexact += not qf.compile_filter(f).exact
            assert c.count(f) == len(expected), (n, f)
            if n % 4 == 0:
                got = c.query(Query([1.0, 1.0, 1.0, 1.0], limit=len(docs), filter=f))
                assert sorted(ids(got)) == expected, (n, f)
    assert inexact > 5  # the post-filter path (numbers >= 2**53, unaddressable keys) was exercised


def test_client_constants_and_has_id_select_what_they_say() -> None:
    with local_store() as s:
        c = s.collection("c", CollectionOptions(dimensions=2))
        c.upsert_batch([doc("a", [1.0, 0.0]), doc("b", [0.0, 1.0])])
        from aixpy.vectorstores._qdrant_common import point_id

        for node, want in ((qf.TRUE, 2), (qf.FALSE, 0), (qf.Negate(qf.FALSE), 2),
                           (qf.All((qf.TRUE, qf.Negate(qf.TRUE))), 0), (qf.HasId((point_id("a"),)), 1),
                           (qf.Negate(qf.HasId((point_id("a"), point_id("b")))), 0)):
            assert s._client.count("c", count_filter=qf.to_client(models, node), exact=True).count == want


# ------------------------------------------------------------------ config and dispatch


def test_client_kwargs_per_mode() -> None:
    url = QdrantStoreConfig(url="https://q.example:6333", api_key=KEY, timeout=2.5)  # type: ignore[arg-type]
    assert client_kwargs(url) == {"url": "https://q.example:6333", "port": 6333, "grpc_port": 6334,
                                  "prefer_grpc": False, "https": None, "api_key": KEY, "timeout": 3,
                                  "check_compatibility": False}
    host = QdrantStoreConfig(host="qdrant.internal", port=7333, grpc_port=7334, prefer_grpc=True, https=True)
    assert client_kwargs(host) == {"host": "qdrant.internal", "port": 7333, "grpc_port": 7334, "prefer_grpc": True,
                                   "https": True, "api_key": None, "timeout": 10, "check_compatibility": False}
    assert client_kwargs(QdrantStoreConfig(local=":memory:")) == {"location": ":memory:"}
    assert client_kwargs(QdrantStoreConfig(local="/data/q")) == {"path": "/data/q",
                                                                  "force_disable_check_same_thread": True}


def test_dispatch_by_config(tmp_path: Path) -> None:
    with vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(tmp_path / "e")}}) as s:
        assert isinstance(s, QdrantStore)
    with vectorstores.new({"provider": "qdrant", "qdrant": {"local": str(tmp_path / "l")}}) as s:
        assert isinstance(s, QdrantServerStore)
        assert not s.remote
    with vectorstores.new({"provider": "qdrant", "qdrant": {"url": "http://127.0.0.1:9"}}) as s:
        assert isinstance(s, QdrantServerStore)
        assert (s.remote, s.where) == (True, "http://127.0.0.1:9")
    with vectorstores.new({"provider": "qdrant", "qdrant": {"host": "127.0.0.1", "port": 9}}) as s:
        assert isinstance(s, QdrantServerStore)
        assert s.where == "127.0.0.1:9"
    with pytest.raises(ConfigError, match="exactly one") as info:
        vectorstores.new({"provider": "qdrant", "qdrant": {"url": "http://a", "host": "b", "api_key": KEY}})
    assert KEY not in str(info.value)


def test_api_key_never_in_reprs_or_errors() -> None:
    port = _free_port()  # nothing listens there
    with pytest.warns(UserWarning, match="insecure connection"):  # qdrant-client's own warning
        s = vectorstores.new({"provider": "qdrant", "embedding_dimensions": 3,
                              "qdrant": {"url": f"http://127.0.0.1:{port}", "api_key": KEY, "timeout": 2}})
    with s:
        assert KEY not in repr(s)
        with pytest.raises(StoreError, match="cannot reach the server") as info:
            s.collection("docs")
        assert KEY not in str(info.value)
        assert KEY not in repr(info.value)
        assert isinstance(info.value.__cause__, Exception)  # chained to the client's exception


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_client", None)  # makes `import qdrant_client` raise ImportError
    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'aixpy[qdrant]'")):
        vectorstores.new({"provider": "qdrant", "qdrant": {"local": ":memory:"}})


def test_module_import_does_not_load_the_client() -> None:
    code = ("import sys, aixpy.vectorstores.qdrant, aixpy.vectorstores._qdrant_server; "
            "assert 'qdrant_client' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC})


# ------------------------------------------------------------------ local directory


# qdrant-client leaves its .lock file object open when the directory is locked by another client.
@pytest.mark.filterwarnings(r"ignore:Exception ignored in.*\.lock:pytest.PytestUnraisableExceptionWarning")
def test_local_directory_reopen_keeps_options_and_data(tmp_path: Path) -> None:
    cfg = {"provider": "qdrant", "qdrant": {"local": str(tmp_path / "q")}}
    opts = CollectionOptions(dimensions=4, metric="euclidean", dedup=True, dedup_threshold=0.9,
                             ttl=timedelta(days=3), max_documents=50)
    future = utcnow() + timedelta(days=1)
    docs = [doc("a", vec(1), "alpha", metadata={"year": 2020, "nested": {"x": [1, None]}}, tags=["t1"],
                scope=Scope(tenant="acme", user="u1"), embedding_model="m1"),
            doc("b", vec(2), "beta", metadata={"ok": True}, expires_at=future),
            doc("gone", vec(5), "expired", expires_at=utcnow() - timedelta(seconds=1))]
    q = Query(vec(9), limit=3, include_embeddings=True)
    with vectorstores.new(cfg) as s:
        c = s.collection("docs", opts)
        assert c.upsert_batch(docs).inserted == 3
        s.collection("lazy", CollectionOptions(metric="dot"))
        before, first = [doc_fields(d) for d in c.get(["a", "b"])], summary(c.query(q))
        with pytest.raises(StoreError, match="already accessed"):  # local mode locks its directory
            vectorstores.new(cfg)
        gc.collect()  # here, under the filter above
    with vectorstores.new(cfg) as s:
        assert s.list_collections() == ["docs", "lazy"]
        c = s.collection("docs")
        assert c.options == opts
        assert [doc_fields(d) for d in c.get(["a", "b"])] == before
        assert summary(c.query(q)) == first
        assert c.count() == 2
        assert c.get(["gone"]) == []
        assert c.upsert(doc("c", [x * 1.001 for x in vec(1)], "near a")).deduplicated_ids == ["c"]
        with pytest.raises(InvalidInputError, match="different options"):
            s.collection("docs", CollectionOptions(dimensions=4, metric="cosine"))
        lazy = s.collection("lazy")
        assert (lazy.dimensions, lazy.options.metric) == (None, "dot")
        lazy.upsert(doc("x", [1.0, 2.0, 3.0]))
        assert lazy.dimensions == 3
        assert s.drop_collection("lazy") is True
        assert s.drop_collection("lazy") is False
    with vectorstores.new(cfg) as s:
        assert s.list_collections() == ["docs"]


def test_foreign_collections_are_hidden_and_refused(tmp_path: Path) -> None:
    with local_store() as s:
        s._client.create_collection("theirs", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        s.collection("ours", CollectionOptions(dimensions=2))
        assert s.list_collections() == ["ours"]
        with pytest.raises(InvalidInputError, match="not created by aixpy"):
            s.collection("theirs")


# ------------------------------------------------------------------ the REST code path


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeQdrant:
    """What the loopback server knows: its backing local-mode client, the requests, injected failures."""

    backend: QdrantClient
    url: str = ""
    api_key: str | None = None
    requests: list[Recorded] = field(default_factory=list)
    fail: list[tuple[int, str]] = field(default_factory=list)  # (status, body) answered to the next requests

    def sent(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]


def _update() -> dict[str, Any]:
    return {"operation_id": 0, "status": "completed"}


def _dump(x: Any) -> Any:
    if isinstance(x, list):
        return [_dump(v) for v in x]
    return x.model_dump(mode="json") if hasattr(x, "model_dump") else x


def _route(fake: FakeQdrant, method: str, path: str, body: Any) -> Any:
    b, parts = fake.backend, path.strip("/").split("/")
    if parts == ["collections"]:
        return {"collections": [{"name": c.name} for c in b.get_collections().collections]}
    name, rest = parts[1], parts[2:]
    if rest == ["exists"]:
        return {"exists": b.collection_exists(name)}
    if not rest:
        if method == "GET":
            return _dump(b.get_collection(name))
        if method == "DELETE":
            return b.delete_collection(name)
        cc = models.CreateCollection.model_validate(body)
        return b.create_collection(name, vectors_config=cc.vectors, hnsw_config=cc.hnsw_config, metadata=cc.metadata,
                                   sparse_vectors_config=cc.sparse_vectors)
    if rest == ["index"]:
        models.CreateFieldIndex.model_validate(body)  # recorded only: local mode has no payload indexes
        return _update()
    if rest == ["points"] and method == "PUT":
        ops = models.PointsBatch.model_validate(body)
        b.upsert(name, points=ops.batch)
        return _update()
    if rest == ["points"]:
        pr = models.PointRequest.model_validate(body)
        return _dump(b.retrieve(name, pr.ids, with_payload=pr.with_payload, with_vectors=pr.with_vector))
    if rest == ["points", "query"]:
        qr = models.QueryRequest.model_validate(body)
        return _dump(b.query_points(name, query=qr.query, query_filter=qr.filter, limit=qr.limit,
                                    with_payload=qr.with_payload, with_vectors=qr.with_vector,
                                    score_threshold=qr.score_threshold))
    if rest == ["points", "query", "batch"]:
        batch = models.QueryRequestBatch.model_validate(body)
        plain = [r.model_copy(update={"params": None}) for r in batch.searches]  # local mode warns on params
        return _dump(b.query_batch_points(name, requests=plain))
    if rest == ["points", "count"]:
        cr = models.CountRequest.model_validate(body)
        return _dump(b.count(name, count_filter=cr.filter, exact=bool(cr.exact)))
    if rest == ["points", "scroll"]:
        sr = models.ScrollRequest.model_validate(body)
        pts, nxt = b.scroll(name, scroll_filter=sr.filter, limit=sr.limit, offset=sr.offset,
                            with_payload=sr.with_payload, with_vectors=sr.with_vector)
        return {"points": _dump(pts), "next_page_offset": nxt}
    if rest == ["points", "delete"]:
        sel: Any = models.PointIdsList.model_validate(body) if "points" in body else \
            models.FilterSelector.model_validate(body)
        b.delete(name, points_selector=sel)
        return _update()
    raise LookupError(path)


def _handler(fake: FakeQdrant) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _any(self) -> None:
            url = urlsplit(self.path)
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n)) if n else None
            fake.requests.append(Recorded(self.command, url.path, parse_qs(url.query), body,
                                          {k.lower(): v for k, v in self.headers.items()}))
            if fake.api_key is not None and self.headers.get("api-key") != fake.api_key:
                return self._answer(401, {"status": {"error": "Must provide an API key"}})
            if fake.fail:
                status, text = fake.fail.pop(0)
                return self._answer(status, {"status": {"error": text}, "time": 0.0})
            try:
                result = _route(fake, self.command, url.path, body)
            except (LookupError, ValueError) as e:
                return self._answer(404, {"status": {"error": f"Not found: {e}"}, "time": 0.0})
            self._answer(200, {"result": result, "status": "ok", "time": 0.0})

        do_GET = do_PUT = do_POST = do_DELETE = _any

    return Handler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def rest_server() -> Iterator[FakeQdrant]:
    fake = FakeQdrant(QdrantClient(location=":memory:"))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    except OSError as e:
        pytest.fail(f"cannot start the loopback Qdrant REST server: {e}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    fake.backend.close()


def remote(fake: FakeQdrant, **extra: Any) -> QdrantServerStore:
    s = vectorstores.new({"provider": "qdrant", "qdrant": {"url": fake.url, "hnsw_m": 24,
                                                          "hnsw_ef_construct": 180, **extra}})
    assert isinstance(s, QdrantServerStore)
    return s


def test_rest_collection_creation_indexes_and_options(rest_server: FakeQdrant) -> None:
    with remote(rest_server) as s:
        s.collection("docs", CollectionOptions(dimensions=3, metric="euclidean", dedup=True, max_documents=9))
        [create] = rest_server.sent("PUT", "/collections/docs")
        assert create.body["vectors"] == {"size": 3, "distance": "Euclid"}
        assert create.body["hnsw_config"] == {"m": 24, "ef_construct": 180}
        assert create.body["metadata"]["aixpy"] == {
            "format": 1, "dimensions": 3, "metric": "euclidean",
            "options": {"dedup": True, "dedup_threshold": 0.99, "max_documents": 9, "ttl_seconds": None},
            "keyword": True}
        assert create.body["sparse_vectors"] == {"bm25": {"modifier": "idf"}}
        indexes = rest_server.sent("PUT", "/collections/docs/index")
        assert all(r.query == {"wait": ["true"]} for r in indexes)
        schemas = {r.body["field_name"]: r.body["field_schema"] for r in indexes}
        assert schemas == {
            "tenant": {"type": "keyword", "is_tenant": True}, "user": "keyword", "session": "keyword",
            "tags": "keyword", "meta_keys": "keyword", "list_keys": "keyword", "meta_bools": "keyword",
            "content_sha256": "keyword", "expires_at": {"type": "integer", "lookup": False, "range": True}}
        s.collection("cos", CollectionOptions(dimensions=2))
        assert rest_server.sent("PUT", "/collections/cos")[0].body["vectors"] == {"size": 2, "distance": "Dot"}
    with remote(rest_server) as s:  # a new client reads the options back from the collection metadata
        assert s.list_collections() == ["cos", "docs"]
        assert s.collection("docs").options == CollectionOptions(dimensions=3, metric="euclidean", dedup=True,
                                                                 max_documents=9)


def test_rest_writes_wait_and_queries_send_what_we_intend(rest_server: FakeQdrant) -> None:
    with remote(rest_server) as s:
        c = s.collection("docs", CollectionOptions(dimensions=2))
        batch = [doc(f"d{i:03d}", [1.0, i / 300], metadata={"i": i, "lang": "en" if i % 2 else "fr"},
                     scope=Scope(tenant="acme")) for i in range(300)]
        assert c.upsert_batch(batch).inserted == 300
        upserts = rest_server.sent("PUT", "/collections/docs/points")
        assert [len(r.body["batch"]["ids"]) for r in upserts] == [256, 44]  # batched
        assert all(r.query == {"wait": ["true"]} for r in upserts)
        f = F.field("lang").eq("en") & F.tenant("acme") & F.field("i").gte(100)
        got = c.query(Query([1.0, 0.5], limit=5, offset=2, min_score=0.9, filter=f))
        want = sorted((d for d in batch if matches(f, d)), key=lambda d: -(1.0 + 0.5 * d.metadata["i"] / 300)
                      / (1.25**0.5 * (1 + (d.metadata["i"] / 300) ** 2) ** 0.5))
        assert ids(got) == [d.id for d in want[2:7]]
        [q] = rest_server.sent("POST", "/collections/docs/points/query")
        assert q.body["limit"] == 8  # offset + limit + 1: candidates are re-ranked exactly
        assert q.body["params"] == {"hnsw_ef": 256}  # qdrant.hnsw_ef default (raised to the limit when larger)
        assert 0.9 - 1e-5 < q.body["score_threshold"] < 0.9
        assert q.body["with_vector"] is True
        must = q.body["filter"]["must"]
        assert {"key": "meta.lang", "match": {"value": "en"}} in must
        assert {"key": "tenant", "match": {"value": "acme"}} in must
        assert {"key": "meta.i", "range": {"gte": 100.0}} in must
        assert c.delete(["d001", "nope"]).deleted == 1
        [delete] = rest_server.sent("POST", "/collections/docs/points/delete")
        assert delete.query == {"wait": ["true"]}
        assert c.count(f) == len(want)
        c.clear()
        assert c.count() == 0


def test_rest_dedup_and_expiry(rest_server: FakeQdrant) -> None:
    with remote(rest_server) as s:
        c = s.collection("d", CollectionOptions(dimensions=3, dedup=True, dedup_threshold=0.95))
        c.upsert(doc("a", [1.0, 0.0, 0.0], "same"))
        past = utcnow() - timedelta(seconds=1)
        r = c.upsert_batch([doc("b", [0.0, 1.0, 0.0], "same"), doc("c", [1.0, 0.01, 0.0], "x"),
                            doc("e", [0.0, 0.0, 1.0], "e", expires_at=past)])
        assert (r.deduplicated_ids, r.inserted) == (["b", "c"], 1)
        batches = rest_server.sent("POST", "/collections/d/points/query/batch")
        assert len(batches) == 2  # one per upsert call: the new documents of a chunk are looked up at once
        assert [len(b.body["searches"]) for b in batches] == [1, 3]  # the whole chunk of new documents
        assert all(s["params"] == {"exact": True} for b in batches for s in b.body["searches"])
        assert c.count() == 1  # e expired: the live filter is sent on every read
        count = rest_server.sent("POST", "/collections/d/points/count")[-1].body
        assert {"is_empty": {"key": "expires_at"}} in count["filter"]["should"]


def test_rest_api_key_and_server_errors(rest_server: FakeQdrant) -> None:
    rest_server.api_key = KEY
    with pytest.warns(UserWarning, match="insecure connection"):
        s = remote(rest_server, api_key=KEY)
    with s:
        c = s.collection("docs", CollectionOptions(dimensions=2))
        assert all(r.headers.get("api-key") == KEY for r in rest_server.requests)
        rest_server.fail.append((500, "Service internal error: disk full"))
        with pytest.raises(StoreError, match=r"retrieve in collection 'docs' failed \(HTTP 500.*disk full") as info:
            c.upsert(doc("a", [1.0, 2.0]))
        assert info.value.__cause__ is not None
        rest_server.fail.append((404, "Not found: Collection `docs` doesn't exist!"))
        with pytest.raises(NotFoundError, match="doesn't exist"):
            c.count()
    with pytest.warns(UserWarning, match="insecure connection"):
        bad = remote(rest_server, api_key="wrong-key-456789")
    with bad, pytest.raises(StoreError, match=r"authentication failed.*401") as info:
        bad.collection("docs")
    assert "wrong-key-456789" not in str(info.value)


# ------------------------------------------------------------------ the gRPC code path (transport errors only)


def test_grpc_connection_refused_is_mapped() -> None:
    cfg = {"host": "127.0.0.1", "port": _free_port(), "grpc_port": _free_port(), "prefer_grpc": True, "timeout": 2}
    with vectorstores.new({"provider": "qdrant", "qdrant": cfg}) as s:
        with pytest.raises(StoreError, match=r"cannot reach the server \(gRPC UNAVAILABLE") as info:
            s.collection("docs")
        assert type(info.value.__cause__).__module__.startswith("grpc")


def test_grpc_sends_the_api_key_and_maps_unauthenticated() -> None:
    import grpc

    seen: list[tuple[str, dict[str, str]]] = []

    def deny(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "Invalid api-key")
        raise AssertionError("abort raises")

    class Deny(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            seen.append((details.method, {str(k): str(v) for k, v in details.invocation_metadata}))
            return grpc.unary_unary_rpc_method_handler(deny)

    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=2), handlers=[Deny()])
    port = server.add_insecure_port("127.0.0.1:0")
    if not port:
        pytest.fail("cannot start the loopback gRPC server")
    server.start()
    try:
        cfg = {"host": "127.0.0.1", "port": _free_port(), "grpc_port": port, "prefer_grpc": True, "https": False,
               "api_key": KEY, "timeout": 5}
        with pytest.warns(UserWarning, match="insecure connection"):
            s = vectorstores.new({"provider": "qdrant", "qdrant": cfg})
        with s, pytest.raises(StoreError, match=r"authentication failed \(gRPC UNAUTHENTICATED") as info:
            s.collection("docs")
        assert KEY not in str(info.value)
        method, metadata = seen[0]
        assert method.startswith("/qdrant.Collections/")
        assert metadata.get("api-key") == KEY
    finally:
        server.stop(grace=None)
