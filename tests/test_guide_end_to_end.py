"""The issue's "Done when: every provider in the guide's YAML works by config alone", end to end.

Each guide snippet (``tests/config/fixtures/guide/``) is loaded as a user would load it; only its network
location is pointed at something that runs here (a loopback HTTP server, the session's postgres, the
Firestore emulator); then it is built with ``aixpy.embeddings.new`` / ``aixpy.vectorstores.new`` and used.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from aixpy import embeddings, vectorstores
from aixpy.config import AixpyConfig, VectorStoreConfig, load_config, load_config_str
from aixpy.config.stores import QdrantStoreConfig
from aixpy.vectorstores import Document, Query
from aixpy.vectorstores import filters as F
from tests.config.test_guide_examples import ENV
from tests.embeddings._hf_tei import TEIFake
from tests.embeddings._servers import Handler, LoopbackServer, Recorded, Reply, fake_openai, vector_for

GUIDE = Path(__file__).parent / "config" / "fixtures" / "guide"
TEXTS = ["machine learning", "deep learning with vectors", "a third text", "zürich café ☕", "the last one"]


def guide(name: str) -> AixpyConfig:
    return load_config(GUIDE / name, env=ENV)


def pooled_hf(rec: Recorded) -> Reply:
    """Hugging Face feature-extraction: one 384-d sentence vector per input."""
    return Reply.json([vector_for(t, 384) for t in rec.json["inputs"]])


def unit_rows(texts: list[str], dims: int = 1024) -> np.ndarray:
    rows = np.array([vector_for(t, dims) for t in texts], dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def wide_tei(max_client_batch_size: int = 32) -> Handler:
    """TEI serving the guide's BAAI/bge-large-en-v1.5 (1024-d): ``TEIFake`` answers ``/info``; ``/embed``
    is answered here (``TEIFake``'s vectors are at most 64-d)."""
    fake = TEIFake(model_id="BAAI/bge-large-en-v1.5", max_client_batch_size=max_client_batch_size)

    def handle(rec: Recorded) -> Reply:
        if rec.path != "/embed":
            return fake(rec)
        texts = rec.json["inputs"]
        return Reply.json((unit_rows(texts) if rec.json["normalize"] else
                           np.array([vector_for(t, 1024) for t in texts])).tolist())

    return handle


# --------------------------------------------------------------------------- embeddings


def test_openai_guide_snippet_embeds_through_a_compatible_server() -> None:
    cfg = guide("embeddings_openai.yaml").embeddings
    with LoopbackServer() as srv:
        srv.handler = fake_openai(shuffle=True)  # answers out of order: ``index`` says where each row goes
        local = cfg.model_copy(update={"openai": cfg.openai.model_copy(update={"base_url": srv.url + "/v1"})})
        with embeddings.new(local) as svc:
            out = svc.embed_array(TEXTS)
            assert ENV["OPENAI_API_KEY"] not in repr(svc)
        rec = srv.take_one()
    assert (rec.method, rec.path) == ("POST", "/v1/embeddings")
    assert rec.headers["authorization"] == f"Bearer {ENV['OPENAI_API_KEY']}"
    assert rec.json["model"] == "text-embedding-3-small"
    assert rec.json["input"] == TEXTS
    assert "dimensions" not in rec.json  # the guide sets none: the model's native width
    assert out.shape == (len(TEXTS), 1536)
    np.testing.assert_array_equal(out, np.array([vector_for(t, 1536) for t in TEXTS], dtype=np.float32))


def test_huggingface_guide_snippet_waits_for_a_loading_model() -> None:
    cfg = guide("embeddings_huggingface.yaml").embeddings
    with LoopbackServer() as srv:
        srv.handler = pooled_hf
        # wait_for_model: true -> a "loading" 503 is waited out (its estimate is short), then the call goes on
        srv.script(Reply.error(503, {"error": "Model is currently loading", "estimated_time": 0.05}))
        hf = cfg.huggingface.model_copy(update={"endpoint": srv.url + "/hf-inference"})
        with embeddings.new(cfg.model_copy(update={"huggingface": hf})) as svc:
            out = svc.embed_array(TEXTS)
            assert svc.dimensions() == 384
        first, second = srv.take()
    path = "/hf-inference/models/sentence-transformers/all-MiniLM-L6-v2/pipeline/feature-extraction"
    for rec in (first, second):
        assert (rec.method, rec.path) == ("POST", path)
        assert rec.headers["authorization"] == f"Bearer {ENV['HUGGINGFACE_API_KEY']}"
        assert rec.headers["x-wait-for-model"] == "true"  # wait_for_model: true
        assert "x-use-cache" not in rec.headers  # use_cache: true is the server's default: nothing to turn off
        assert rec.json == {"inputs": TEXTS}
    np.testing.assert_array_equal(out, np.array([vector_for(t, 384) for t in TEXTS], dtype=np.float32))


def test_tei_guide_snippet_embeds_normalized_vectors() -> None:
    cfg = guide("embeddings_tei.yaml").embeddings
    with LoopbackServer() as srv:
        srv.handler = wide_tei(max_client_batch_size=3)
        tei = cfg.huggingface_tei.model_copy(update={"endpoint": srv.url})
        with embeddings.new(cfg.model_copy(update={"huggingface_tei": tei})) as svc:
            assert [r.path for r in srv.take()] == ["/info"]  # batch size from the server
            out = svc.embed_array(TEXTS)
            assert (svc.model(), svc.dimensions()) == ("BAAI/bge-large-en-v1.5", 1024)
        recs = srv.take()
    assert [r.path for r in recs] == ["/embed", "/embed"]
    assert sorted(len(r.json["inputs"]) for r in recs) == [2, 3]  # capped by max_client_batch_size
    assert all(r.json["normalize"] is True for r in recs)  # normalize: true reaches the server
    assert sorted(t for r in recs for t in r.json["inputs"]) == sorted(TEXTS)
    np.testing.assert_allclose(out, unit_rows(TEXTS), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


COMBINED = """
embeddings:
  provider: openai
  openai:
    api_key: ${OPENAI_API_KEY}
    model: text-embedding-3-small
    base_url: {openai}/v1
    dimensions: 1024
  cache: {backend: redis, redis_url: "{redis}", prefix: "{prefix}"}
  retry: {max_attempts: 2, initial_backoff: 0.01, max_backoff: 0.05, retry_on: [server_error]}
  fallback:
    - provider: huggingface_tei
      huggingface_tei:
        endpoint: {tei}
        model: BAAI/bge-large-en-v1.5
        normalize: true
"""


def test_cache_retry_fallback_in_one_yaml(redis_url: str, redis_prefix: str) -> None:
    import redis

    with LoopbackServer() as oai, LoopbackServer() as tei:
        oai.reply = Reply.error(503)  # the primary is down for the whole test
        tei.handler = wide_tei()
        text = (COMBINED.replace("{openai}", oai.url).replace("{tei}", tei.url)
                .replace("{redis}", redis_url).replace("{prefix}", redis_prefix))
        cfg = load_config_str(text, "combined.yaml", env=ENV).embeddings
        with embeddings.new(cfg) as svc:
            assert [r.path for r in tei.take()] == ["/info"]
            tei.script(Reply.error(503))  # the fallback fails once too: the whole chain is retried
            first = svc.embed_array(TEXTS)
        assert [r.path for r in oai.take()] == ["/v1/embeddings"] * 2  # one per attempt
        assert [r.path for r in tei.take()] == ["/embed"] * 2  # the scripted 503, then the answer
        np.testing.assert_allclose(first, unit_rows(TEXTS), rtol=1e-6)
        client = redis.Redis.from_url(redis_url)
        try:
            assert len(list(client.scan_iter(match=redis_prefix + "*"))) == len(TEXTS)
        finally:
            client.close()
        # a new service (as in another process) from the same config: every vector comes from Redis
        with embeddings.new(cfg) as again:
            tei.take()  # its construction's /info
            second = again.embed_array(TEXTS[::-1])
        assert oai.take() == []
        assert tei.take() == []
        np.testing.assert_array_equal(second, first[::-1])


# --------------------------------------------------------------------------- vector stores

STORES = ["vectorstore_memory.yaml", "vectorstore_qdrant.yaml", "vectorstore_pgvector.yaml",
          "vectorstore_firestore.yaml"]
EMB = embeddings.new({"provider": "hash", "hash": {"dimensions": 384}})  # the guide's embedding_dimensions: 384
DOCS = [
    ("d01", "machine learning models learn patterns from data", {"year": 2019, "lang": "en"}, ["ml"]),
    ("d02", "deep learning uses neural networks with many layers", {"year": 2021, "lang": "en"}, ["ml", "dl"]),
    ("d03", "vector databases store embeddings for similarity search", {"year": 2022, "lang": "en"}, ["db"]),
    ("d04", "les bases de données vectorielles stockent des embeddings", {"year": 2023, "lang": "fr"}, ["db"]),
    ("d05", "postgres with pgvector adds vector search to sql", {"year": 2023, "lang": "en"}, ["db", "sql"]),
    ("d06", "firestore offers nearest neighbour vector queries", {"year": 2024, "lang": "en"}, ["db", "cloud"]),
    ("d07", "cooking pasta needs salted boiling water", {"year": 2020, "lang": "en"}, ["food"]),
    ("d08", "l'apprentissage automatique apprend à partir des données", {"year": 2020, "lang": "fr"}, ["ml"]),
    ("d09", "similarity search ranks documents by vector distance", {"year": 2024, "lang": "en"}, ["db"]),
]
QUERIES = {  # limit 4: the first two queries rank 5 candidates, so the cut matters too
    "plain": ("similarity search over vector embeddings", None),
    "year": ("vector search for deep learning data", F.field("year").gte(2021)),
    "lang": ("des données vectorielles et des embeddings", F.field("lang").eq("fr")),
    "tags": ("vector search with sql or firestore queries",
             F.tags_any("sql", "cloud") | (F.field("year").lt(2023) & F.tags_all("db"))),
}


def documents() -> list[Document]:
    vecs = EMB.embed_array([d[1] for d in DOCS])
    return [Document(id=i, content=c, embedding=v, metadata=m, tags=t) for (i, c, m, t), v in zip(DOCS, vecs,
                                                                                                  strict=True)]


def brute_force(query: str, flt: F.Filter | None, limit: int = 4) -> list[tuple[str, float]]:
    """The reference ranking: cosine in float64 over the documents ``filters.matches`` keeps."""
    q = EMB.embed_array([query])[0].astype(np.float64)
    scored = [(d.id, float(np.asarray(d.embedding, dtype=np.float64) @ q)) for d in documents()
              if F.matches(flt, d)]
    ranked = sorted((s for s in scored if s[1] >= 0.05), key=lambda s: (-s[1], s[0]))
    return ranked[:limit]


def localize(name: str, request: pytest.FixtureRequest) -> VectorStoreConfig:
    """The guide's ``vectorstore:`` block with only its location changed to something running here."""
    vs = guide(name).vectorstore
    if vs.provider == "pgvector":
        dsn, schema = str(request.getfixturevalue("postgres_dsn")), f"guide_{uuid.uuid4().hex[:12]}"
        request.addfinalizer(lambda: drop_schema(dsn, schema))
        pg = vs.pgvector.model_copy(update={"connection_string": SecretStr(dsn), "schema_name": schema})
        return vs.model_copy(update={"pgvector": pg})
    if vs.provider == "firestore":
        host = request.getfixturevalue("firestore_emulator")
        fs = vs.firestore.model_copy(update={"emulator_host": host, "project_id": f"guide-{uuid.uuid4().hex[:12]}"})
        return vs.model_copy(update={"firestore": fs})
    if vs.provider == "qdrant":
        # The guide points at a Qdrant server (host: localhost, port: 6333), which cannot run here:
        # qdrant-client's local mode (local: ":memory:") takes the place of host/port. It is the same
        # client API and aixpy code path as against a server, minus the transport.
        q = QdrantStoreConfig.model_validate(vs.qdrant.model_dump(exclude={"host", "port"}) | {"local": ":memory:"})
        return vs.model_copy(update={"qdrant": q})
    return vs  # memory: as is


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def collection_name(vs: VectorStoreConfig) -> str:
    """The guide's collection: qdrant/firestore ``collection``, pgvector ``table``; memory names none
    (the CLI's default, ``knowledge_base``)."""
    block = getattr(vs, vs.provider)
    return str(getattr(block, "table", None) or getattr(block, "collection", None) or "knowledge_base")


def exercise(vs: VectorStoreConfig) -> tuple[dict[str, list[tuple[str, float]]], dict[str, int]]:
    """Upsert the documents, then run every query and count: ``({query: [(id, score)]}, {query: count})``."""
    with vectorstores.new(vs) as store:
        col = store.collection(collection_name(vs))
        assert (col.dimensions, col.options.metric) == (384, "cosine")  # embedding_dimensions from the guide
        res = col.upsert_batch(documents())
        assert (res.inserted, res.failed) == (len(DOCS), 0), res.errors
        assert col.count() == len(DOCS)
        got = col.get(["d04"])[0]
        assert (got.content, got.metadata, got.tags) == (DOCS[3][1], DOCS[3][2], DOCS[3][3])
        ranked, counts = {}, {}
        for key, (text, flt) in QUERIES.items():
            result = col.query(Query(embedding=EMB.embed_array([text])[0], limit=4, filter=flt, min_score=0.05))
            ranked[key] = [(m.document.id, m.score) for m in result]
            counts[key] = col.count(flt)
        assert store.list_collections() == [collection_name(vs)]
    return ranked, counts


@pytest.mark.parametrize("name", STORES)
def test_guide_vectorstore_by_config_alone(name: str, request: pytest.FixtureRequest) -> None:
    vs = localize(name, request)
    if vs.provider == "memory":
        assert vs.memory is not None
        assert vs.memory.max_documents == 10000
    ranked, counts = exercise(vs)
    for key, (text, flt) in QUERIES.items():
        expected = brute_force(text, flt)
        assert len(expected) >= 2, key  # every query ranks several documents
        assert [i for i, _ in ranked[key]] == [i for i, _ in expected], key
        np.testing.assert_allclose([s for _, s in ranked[key]], [s for _, s in expected], atol=1e-5)
        assert counts[key] == sum(F.matches(flt, d) for d in documents()), key


def test_every_guide_vectorstore_ranks_the_same(request: pytest.FixtureRequest) -> None:
    results = {name: exercise(localize(name, request)) for name in STORES}
    (first, (ranked0, counts0)), *others = results.items()
    for key in QUERIES:  # the data has no near-ties, so one ranking is right
        scores = [s for _, s in ranked0[key]]
        assert all(a - b > 1e-4 for a, b in itertools.pairwise(scores)), (key, scores)
    ids0 = {k: [i for i, _ in v] for k, v in ranked0.items()}
    assert all(len(v) >= 2 for v in ids0.values()), ids0
    for name, (ranked, counts) in others:
        assert {k: [i for i, _ in v] for k, v in ranked.items()} == ids0, (first, name)
        for key in QUERIES:
            np.testing.assert_allclose([s for _, s in ranked[key]], [s for _, s in ranked0[key]], atol=1e-5)
        assert counts == counts0, (first, name)
