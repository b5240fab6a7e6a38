"""Firestore backend on the real emulator: filter compilation, the >1,000 path, batching, ids, credentials."""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aixpy import vectorstores
from aixpy.errors import ConfigError, InvalidInputError, StoreError
from aixpy.vectorstores import CollectionOptions, Document, Query, Scope
from aixpy.vectorstores import _firestore_codec as fc
from aixpy.vectorstores import _firestore_filters as ff
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.filters import Filter, matches
from aixpy.vectorstores.firestore import FirestoreCollection, FirestoreStore
from aixpy.vectorstores.types import utcnow

from ._support import brute_force, doc, ids

_projects = itertools.count()


def new_store(host: str, **kw: Any) -> FirestoreStore:
    return FirestoreStore(f"fs-test-{os.getpid()}-{next(_projects)}", emulator_host=host, **kw)


@pytest.fixture
def store(firestore_emulator: str) -> Iterator[FirestoreStore]:
    s = new_store(firestore_emulator)
    yield s
    s.close()


def native_ids(c: FirestoreCollection, plan: ff.Plan) -> set[str]:
    """Ids selected by the plan's Firestore clauses alone (no client-side re-check)."""
    q = fc.base_query(fc.where(plan.atoms), [fc.F_ID])
    return {str(fc.decode(d.fields[fc.F_ID])) for d in c._h.conn.run_query(c._h.catalog, q)}


# ------------------------------------------------------------------ filters vs the reference evaluator

KEYS = ["a", "b", "n", "__x__", "ключ"]
VALUES: list[Any] = ["x", "y", "xy", 0, 1, 1.0, 2.5, -3, True, False, 2**53 + 1]


def random_value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.2:
        return [rng.choice(VALUES) for _ in range(rng.randint(0, 3))]
    if r < 0.25:
        return None
    if r < 0.3:
        return {"inner": rng.choice(VALUES)}
    return rng.choice(VALUES)


def random_filter(rng: random.Random, depth: int = 0) -> Filter:
    r = rng.random()
    if depth < 2 and r < 0.3:
        parts = tuple(random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3)))
        return F.And(parts) if rng.random() < 0.5 else F.Or(parts)
    if depth < 2 and r < 0.38:
        return ~random_filter(rng, depth + 1)
    if r < 0.45:
        return F.tags_any(*rng.sample(["t1", "t2", "t3"], rng.randint(1, 2))) if rng.random() < 0.5 \
            else F.tags_all(*rng.sample(["t1", "t2", "t3"], rng.randint(1, 2)))
    if r < 0.5:
        return F.scope(tenant=rng.choice(["acme", "globex"]), user=rng.choice([None, "u1"]))
    ref = F.field(rng.choice(KEYS))
    scalar = [v for v in VALUES if not isinstance(v, bool) or rng.random() < 0.5]
    op = rng.choice(["eq", "ne", "in", "nin", "contains", "exists", "gt", "gte", "lt", "lte"])
    if op in ("gt", "gte", "lt", "lte"):
        return getattr(ref, op)(rng.choice([0, 1, 1.5, -3, 2.5, 2**53]))
    if op in ("in", "nin"):
        return (ref.in_ if op == "in" else ref.nin)(rng.sample(scalar, rng.randint(1, 3)))
    if op == "exists":
        return ref.exists()
    return getattr(ref, op)(rng.choice(scalar))


def test_random_filters_agree_with_the_reference_evaluator(store: FirestoreStore) -> None:
    rng = random.Random(20261122)
    docs = [doc(f"r{i:02d}", [1.0, float(i % 5), float(i % 3) + 0.5],
                metadata={k: random_value(rng) for k in rng.sample(KEYS, rng.randint(0, 4))},
                tags=rng.sample(["t1", "t2", "t3"], rng.randint(0, 2)),
                scope=Scope(tenant=rng.choice([None, "acme", "globex"]), user=rng.choice([None, "u1"])))
            for i in range(40)]
    c = store.collection("random", CollectionOptions(dimensions=3))
    assert c.upsert_batch(docs).inserted == len(docs)
    inexact = 0
    for _ in range(60):
        f = random_filter(rng)
        want = {d.id for d in docs if matches(f, d)}
        got = ids(c.query(Query([1.0, 1.0, 1.0], limit=100, filter=f)))
        assert set(got) == want, f
        assert len(got) == len(want), f
        assert c.count(f) == len(want), f
        plan = ff.compile_filter(f)
        native = native_ids(c, plan)
        assert native >= want, f  # the native part never drops a match ...
        if plan.exact:
            assert native == want, f  # ... and is the whole answer when the plan says so
        else:
            inexact += 1
    assert 0 < inexact < 60  # both paths ran


@pytest.mark.parametrize(("flt", "exact"), [
    (F.field("a").eq(1), True),
    (F.field("a").in_(["x", 1, True]), True),
    (F.field("a").gte(1) & F.field("b").lt(2.5) & F.tenant("acme"), True),
    (F.tags_any("t1") | F.field("a").eq("x") | F.tenant("acme"), True),
    (F.field("a").contains(1), True),
    (F.field("a").ne(1), False),
    (F.field("a").nin(["x"]), False),
    (~F.field("a").exists(), False),
    (F.field("a").contains("x"), False),
    (F.tags_all("t1", "t2"), False),
    (F.field("a").gt(2**53), False),
    (F.field("a").in_([str(i) for i in range(31)]), False),
])
def test_plan_exactness(flt: Filter, exact: bool) -> None:
    assert ff.compile_filter(flt).exact is exact


def test_unknown_filter_nodes_are_rejected_not_dropped() -> None:
    class Strange(Filter):
        __slots__ = ()

    with pytest.raises(InvalidInputError, match="unknown filter node"):
        ff.compile_filter(F.field("a").eq(1) & Strange())


def test_numbers_are_type_strict_and_exact(store: FirestoreStore) -> None:
    c = store.collection("types", CollectionOptions(dimensions=2))
    c.upsert_batch([doc("int", [1.0, 0.0], metadata={"v": 2**53 + 1}),
                    doc("float", [1.0, 1.0], metadata={"v": 2.0**53}), doc("bool", [0.0, 1.0], metadata={"v": True}),
                    doc("one", [1.0, 2.0], metadata={"v": 1.0})])
    for f, want in [(F.field("v").eq(2**53 + 1), {"int"}), (F.field("v").eq(2**53), {"float"}),
                    (F.field("v").eq(1), {"one"}), (F.field("v").eq(True), {"bool"}),
                    (F.field("v").gt(2**53), {"int"}), (F.field("v").gte(1), {"int", "float", "one"})]:
        assert set(ids(c.query(Query([1.0, 1.0], limit=10, filter=f)))) == want, f
        assert c.count(f) == len(want)


# ------------------------------------------------------------------ beyond 1,000 neighbours, batching


@pytest.fixture(scope="module")
def big(firestore_emulator: str) -> Iterator[tuple[FirestoreCollection, np.ndarray]]:
    s = new_store(firestore_emulator)
    rng = np.random.default_rng(5)
    data = rng.standard_normal((1203, 4)).astype(np.float32)
    c = s.collection("big", CollectionOptions(dimensions=4))
    far = set(np.argsort(data @ np.ones(4, dtype=np.float32))[:5].tolist())  # the 5 farthest from (1,1,1,1)
    r = c.upsert_batch([doc(f"b{i:04d}", row, metadata={"k": "rare" if i in far else "common"})
                        for i, row in enumerate(data.tolist())])
    assert (r.inserted, r.failed) == (1203, 0)
    yield c, data
    s.close()


def test_offset_plus_limit_beyond_1000_is_exact(big: tuple[FirestoreCollection, np.ndarray]) -> None:
    c, data = big
    q = np.array([1.0, 0.5, -0.25, 2.0], dtype=np.float32)
    rows, scores = brute_force(data, q, 1203, "cosine")
    res = c.query(Query(q.tolist(), limit=150, offset=1000))
    assert ids(res) == [f"b{i:04d}" for i in rows[1000:1150]]
    assert [m.rank for m in res.matches] == list(range(1001, 1151))
    assert [m.score for m in res.matches] == pytest.approx(scores[1000:1150], abs=1e-9)
    assert len(c.query(Query(q.tolist(), limit=2000)).matches) == 1203


def test_selective_inexact_filter_falls_back_to_a_scan(big: tuple[FirestoreCollection, np.ndarray]) -> None:
    c, data = big
    f = F.field("k").ne("common")  # inexact: re-checked here; its 5 matches are the farthest documents
    assert not ff.compile_filter(f).exact
    keep = [i for i in range(len(data)) if c.get([f"b{i:04d}"])[0].metadata["k"] == "rare"]
    q = np.ones(4, dtype=np.float32)
    rows, _ = brute_force(data[keep], q, 5, "cosine")
    assert ids(c.query(Query(q.tolist(), limit=3, offset=1, filter=f))) == [f"b{keep[i]:04d}" for i in rows[1:4]]
    assert c.count(f) == 5


def test_writes_go_in_batches_of_at_most_500(big: tuple[FirestoreCollection, np.ndarray],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    c, _ = big
    conn = c._h.conn
    sizes: list[int] = []
    real = conn._commit

    def spy(chunk: list[Any], done: int, total: int) -> None:
        sizes.append(len(chunk))
        real(chunk, done, total)

    monkeypatch.setattr(conn, "_commit", spy)
    r = c.delete([f"b{i:04d}" for i in range(1100)] + ["nope"])
    assert (r.deleted, r.not_found) == (1100, 1)
    assert sizes == [500, 500, 101]
    assert c.count() == 103


def test_drop_deletes_in_batches(firestore_emulator: str) -> None:
    s = new_store(firestore_emulator)
    c = s.collection("todrop", CollectionOptions(dimensions=2))
    c.upsert_batch([doc(f"x{i}", [1.0, float(i)]) for i in range(620)])
    assert s.list_collections() == ["todrop"]
    assert s.drop_collection("todrop") is True
    assert s.list_collections() == []
    with pytest.raises(StoreError, match="closed"):
        c.count()
    again = s.collection("todrop", CollectionOptions(dimensions=2))
    assert again.count() == 0
    assert native_ids(again, ff.Plan((), True)) == set()  # no orphan documents left behind
    s.close()


# ------------------------------------------------------------------ ids, metadata, TTL, metric


def test_ids_are_mapped_safely_and_kept(store: FirestoreStore) -> None:
    odd = ["a/b", "__x__", "~h", "~" + "0" * 64, "日" * 512, "a.b", "..a", "ü-1", "spaces inside", "__init"]
    assert fc.doc_key("a/b").startswith("~")
    assert fc.doc_key("__x__").startswith("~")
    assert fc.doc_key("~h") != "~h"
    assert fc.doc_key("plain") == "plain"
    assert len({fc.doc_key(i) for i in odd}) == len(odd)
    c = store.collection("ids", CollectionOptions(dimensions=2, metric="euclidean"))
    r = c.upsert_batch([doc(i, [float(n), 1.0], content=i) for n, i in enumerate(odd)])
    assert (r.inserted, r.failed) == (len(odd), 0)
    assert [d.id for d in c.get(list(reversed(odd)))] == list(reversed(odd))
    assert [d.content for d in c.get(odd)] == odd
    assert ids(c.query(Query([0.0, 1.0], limit=3))) == odd[:3]
    assert c.delete(["a/b", "__x__", "missing/one"]).not_found_ids == ["missing/one"]
    assert c.count() == len(odd) - 2


def test_metadata_firestore_maps_cannot_hold_round_trips(store: FirestoreStore) -> None:
    c = store.collection("meta", CollectionOptions(dimensions=2))
    meta = {"__x__": 1, "nested": [[1, 2], ["a"]], "f": 2.0, "i": 2, "d": {"__y__": [True, None]}}
    c.upsert(doc("m", [1.0, 0.0], metadata=meta))
    [got] = c.get(["m"])
    assert got.metadata == meta
    assert type(got.metadata["f"]) is float
    assert type(got.metadata["i"]) is int
    assert ids(c.query(Query([1.0, 0.0], filter=F.field("__x__").eq(1)))) == ["m"]


def test_expired_documents_are_purged(store: FirestoreStore) -> None:
    c = store.collection("ttl", CollectionOptions(dimensions=2))
    past = utcnow() - timedelta(seconds=1)
    c.upsert_batch([doc("old", [1.0, 0.0], expires_at=past), doc("new", [1.0, 0.1])])
    assert c.count() == 1
    assert c.purge_expired() == 1
    assert c.purge_expired() == 0
    assert ids(c.get(["old", "new"])) == ["new"]


def test_query_metric_must_be_the_collections(store: FirestoreStore) -> None:
    c = store.collection("metric", CollectionOptions(dimensions=2, metric="dot"))
    c.upsert(doc("a", [1.0, 2.0]))
    with pytest.raises(InvalidInputError, match="metric"):
        c.query(Query([1.0, 0.0], metric="cosine"))
    with pytest.raises(InvalidInputError, match="2048"):
        store.collection("huge", CollectionOptions(dimensions=4096))


def test_reopening_keeps_options_and_learned_dimensions(firestore_emulator: str) -> None:
    s1 = new_store(firestore_emulator)
    c = s1.collection("keep", CollectionOptions(metric="euclidean", dedup=True, ttl=timedelta(hours=1)))
    c.upsert(doc("a", [1.0, 2.0, 3.0]))
    s2 = FirestoreStore(s1.project_id, emulator_host=firestore_emulator)
    again = s2.collection("keep")
    assert again.options == CollectionOptions(dimensions=3, metric="euclidean", dedup=True, ttl=timedelta(hours=1))
    with pytest.raises(InvalidInputError, match="different options"):
        s2.collection("keep", CollectionOptions(metric="cosine"))
    s1.close()
    s2.close()


# ------------------------------------------------------------------ connection, credentials, errors


def fake_key(tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "fake-project", "private_key_id": "abc123",
        "private_key": pem, "client_email": "aixpy-test@fake-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


def test_credentials_file_is_loaded_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    path = fake_key(tmp_path)
    store = vectorstores.new({"provider": "firestore",
                              "firestore": {"project_id": "fake-project", "credentials_file": str(path)}})
    assert isinstance(store, FirestoreStore)
    try:
        creds = store._conn.credentials
        assert creds.service_account_email == "aixpy-test@fake-project.iam.gserviceaccount.com"
        assert "https://www.googleapis.com/auth/datastore" in creds.scopes
        assert store.emulator_host is None
        assert "PRIVATE KEY" not in repr(store)
        assert str(path) not in repr(store)
    finally:
        store.close()  # no call was made: nothing was sent anywhere


def test_adc_uses_google_application_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fake_key(tmp_path)))
    store = FirestoreStore("fake-project")
    try:
        assert store._conn.credentials.service_account_email.startswith("aixpy-test@")
    finally:
        store.close()


def test_bad_credentials_file_is_a_config_error_without_its_content(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "service_account", "private_key": "SECRET-MATERIAL"}')
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(ConfigError, match="service-account key") as info:
            FirestoreStore("p", credentials_file=str(path))
        assert "SECRET-MATERIAL" not in str(info.value)
        assert info.value.path == "vectorstore.firestore.credentials_file"


def test_emulator_host_from_config_or_environment(firestore_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    from_env = FirestoreStore(f"env-{os.getpid()}")
    assert from_env.emulator_host == firestore_emulator
    from_env.collection("e", CollectionOptions(dimensions=2)).upsert(doc("a", [1.0, 0.0]))
    from_env.close()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # the explicit setting wins
    explicit = FirestoreStore(f"env-{os.getpid()}", emulator_host=firestore_emulator)
    assert explicit.collection("e").count() == 1
    explicit.close()
    assert os.environ["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:9"  # never rewritten by the store


def test_unreachable_server_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests._services._proc import free_port

    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    store = FirestoreStore("p", emulator_host=f"127.0.0.1:{free_port()}", timeout=1.0)
    with pytest.raises(StoreError, match="firestore: get failed"):
        store.collection("x")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_collections()


def test_documents_returned_keep_their_fields(store: FirestoreStore) -> None:
    c = store.collection("fields", CollectionOptions(dimensions=2))
    d = Document(id="x", content="c", embedding=[0.5, 0.25], embedding_model="m", metadata={"k": [1, "a"]},
                 tags=["t"], scope=Scope(tenant="acme", session="s"))
    c.upsert(d)
    [m] = c.query(Query([1.0, 0.0], include_embeddings=True)).matches
    assert (m.document.content, m.document.embedding, m.document.embedding_model) == ("c", [0.5, 0.25], "m")
    assert (m.document.metadata, m.document.tags, m.document.scope) == ({"k": [1, "a"]}, ["t"], d.scope)
