"""Embedded Qdrant backend: ids, persistence, the filter compiler, locking and crash durability."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aixpy import vectorstores
from aixpy.errors import CapacityError, ConfigError, InvalidInputError, MissingDependencyError, StoreError
from aixpy.vectorstores import CollectionOptions, Document, Query, Scope
from aixpy.vectorstores import _qdrant_common as qc
from aixpy.vectorstores import _qdrant_filters as qf
from aixpy.vectorstores import filters as F
from aixpy.vectorstores.filters import Filter, matches
from aixpy.vectorstores.qdrant import QdrantCollection, QdrantStore
from aixpy.vectorstores.types import utcnow

from ._random_filters import FilterFuzzer
from ._support import doc, doc_fields, ids, summary

SRC = str(Path(__file__).resolve().parents[2] / "src")


def open_store(path: Path) -> QdrantStore:
    s = vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(path)}})
    assert isinstance(s, QdrantStore)
    return s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QdrantStore]:
    s = open_store(tmp_path / "q")
    yield s
    s.close()


def vec(i: int, dims: int = 4) -> list[float]:
    rng = np.random.default_rng(i)
    return [float(x) for x in rng.standard_normal(dims)]


# ------------------------------------------------------------------ ids, config, dependency


def test_point_ids_are_deterministic_uuid5() -> None:
    # Pinned values: stored collections depend on them never changing.
    assert qc.point_id("doc-1") == "166b5fe9-e795-54f6-94f0-79fb99c5c3d0"
    assert qc.point_id("é") == "0284615f-9eca-5a3f-a1d5-d26b194ba5d4"
    assert qc.point_id("doc-1") == str(uuid.uuid5(qc.POINT_ID_NAMESPACE, "doc-1"))
    assert uuid.UUID(qc.point_id("x")).version == 5
    assert len({qc.point_id(f"d{i}") for i in range(1000)}) == 1000


def test_point_ids_are_stable_across_processes() -> None:
    code = "from aixpy.vectorstores._qdrant_common import point_id; print(point_id('doc-1'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": SRC, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == qc.point_id("doc-1")


def test_only_one_location_may_be_configured(tmp_path: Path) -> None:
    for extra in ({"url": "http://localhost:6333"}, {"host": "localhost"}, {"local": ":memory:"}):
        with pytest.raises(ConfigError, match="exactly one"):
            vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(tmp_path / "q"), **extra}})


def test_default_path_when_no_qdrant_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with vectorstores.new({"provider": "qdrant", "embedding_dimensions": 3, "metric": "dot"}) as s:
        assert isinstance(s, QdrantStore)
        assert s.path == (tmp_path / ".aixpy" / "qdrant").resolve()
        c = s.collection("docs")
        assert c.dimensions == 3
        assert c.options.metric == "dot"


def test_missing_extra_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qdrant_edge", None)  # makes `import qdrant_edge` raise ImportError
    with pytest.raises(MissingDependencyError) as info:
        vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(tmp_path / "q")}})
    assert "qdrant-edge-py" in str(info.value)
    assert "pip install 'aixpy[qdrant]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_module_import_does_not_load_the_engine() -> None:
    code = "import sys, aixpy.vectorstores.qdrant; assert 'qdrant_edge' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": SRC})


# ------------------------------------------------------------------ persistence


def _sample_docs() -> list[Document]:
    future = utcnow() + timedelta(days=1)
    return [
        doc("a", vec(1), "alpha", metadata={"year": 2020, "nested": {"x": [1, None]}, "big": 2**63 - 1},
            tags=["t1"], scope=Scope(tenant="acme", user="u1"), embedding_model="m1"),
        doc("b", vec(2), "beta", metadata={"lang": "fr", "ok": True}, expires_at=future),
        doc("c", vec(3), "", scope=Scope(session="s1")),
        doc("gone", vec(5), "expired", expires_at=utcnow() - timedelta(seconds=1)),
    ]


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_reopen_keeps_data_dimensions_metric_and_options(tmp_path: Path, metric: str) -> None:
    opts = CollectionOptions(dimensions=4, metric=metric, dedup=True, dedup_threshold=0.9,  # type: ignore[arg-type]
                             ttl=timedelta(days=3), max_documents=50)
    q = Query(vec(9), limit=3, include_embeddings=True)
    with open_store(tmp_path / "q") as s:
        c = s.collection("docs", opts)
        assert c.upsert_batch(_sample_docs()).inserted == 4
        before = [doc_fields(d) for d in c.get(["a", "b", "c"])]
        times = [(d.created_at, d.updated_at, d.expires_at) for d in c.get(["a", "b", "c"])]
        first = summary(c.query(q))
    with open_store(tmp_path / "q") as s:
        assert s.list_collections() == ["docs"]
        c = s.collection("docs")
        assert c.options == opts
        assert c.dimensions == 4
        assert [doc_fields(d) for d in c.get(["a", "b", "c"])] == before
        assert [(d.created_at, d.updated_at, d.expires_at) for d in c.get(["a", "b", "c"])] == times
        assert summary(c.query(q)) == first
        assert s.collection("docs", opts).count() == 3  # "gone" stays invisible after reopen
        assert c.get(["gone"]) == []
        other = "dot" if metric != "dot" else "cosine"
        with pytest.raises(InvalidInputError, match="different options"):
            s.collection("docs", CollectionOptions(dimensions=4, metric=other))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="different options"):
            s.collection("docs", CollectionOptions(dimensions=5, metric=opts.metric, dedup=True,
                                                   dedup_threshold=0.9, ttl=opts.ttl, max_documents=50))
        c.upsert(doc("d", vec(4)))  # still writable
        assert c.count() == 4


def test_lazy_dimensions_survive_reopen(tmp_path: Path) -> None:
    with open_store(tmp_path / "q") as s:
        c = s.collection("lazy", CollectionOptions(metric="euclidean"))
        assert c.dimensions is None
        assert not (tmp_path / "q" / "lazy" / "shard").exists()  # the shard waits for the first vector
        assert c.count() == 0
        assert c.query(Query([1.0, 2.0], limit=3)).matches == []
    with open_store(tmp_path / "q") as s:
        c = s.collection("lazy")
        assert c.dimensions is None
        c.upsert(doc("x", [1.0, 2.0, 3.0]))
        assert c.dimensions == 3
    with open_store(tmp_path / "q") as s:
        c = s.collection("lazy", CollectionOptions(metric="euclidean"))
        assert c.dimensions == 3
        assert ids(c.get(["x"])) == ["x"]
        with pytest.raises(InvalidInputError):
            c.upsert(doc("y", [1.0, 2.0]))


def test_created_at_is_kept_across_reopen_and_update(tmp_path: Path) -> None:
    with open_store(tmp_path / "q") as s:
        s.collection("c", CollectionOptions(dimensions=4)).upsert(doc("a", vec(1), "one"))
        [first] = s.collection("c").get(["a"])
    time.sleep(0.01)
    with open_store(tmp_path / "q") as s:
        c = s.collection("c")
        assert c.upsert(doc("a", vec(2), "two")).updated == 1
        [again] = c.get(["a"])
        assert again.created_at == first.created_at
        assert again.updated_at is not None
        assert first.updated_at is not None
        assert again.updated_at > first.updated_at
        assert again.content == "two"


def test_drop_and_list_collections(store: QdrantStore) -> None:
    store.collection("b", CollectionOptions(dimensions=2)).upsert(doc("x", [1.0, 0.0]))
    store.collection("a")
    assert store.list_collections() == ["a", "b"]
    old = store.collection("b")
    assert store.drop_collection("b") is True
    assert store.drop_collection("b") is False
    assert store.list_collections() == ["a"]
    with pytest.raises(StoreError, match="closed"):
        old.count()
    assert store.collection("b", CollectionOptions(dimensions=3)).count() == 0  # a new, empty one


def test_wrappers_share_one_shard(store: QdrantStore) -> None:
    one = store.collection("c", CollectionOptions())
    two = store.collection("c")
    one.upsert(doc("x", [1.0, 2.0]))
    assert two.dimensions == 2
    assert ids(two.get(["x"])) == ["x"]


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    s = open_store(tmp_path / "q")
    c = s.collection("c", CollectionOptions(dimensions=2))
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        c.upsert(doc("x", [1.0, 2.0]))
    with pytest.raises(StoreError, match="closed"):
        s.collection("c")


def test_integers_beyond_64_bits_are_refused_not_corrupted(store: QdrantStore) -> None:
    c = store.collection("c", CollectionOptions(dimensions=2))
    r = c.upsert_batch([doc("ok", [1.0, 0.0], metadata={"n": 2**63 - 1}),
                        doc("bad", [1.0, 0.0], metadata={"n": [2**64]}),
                        doc("big", [1.0, 0.0], metadata={"n": 2**63})])
    assert (r.inserted, r.failed_ids) == (1, ["bad", "big"])
    assert all("64 bits" in e.message and e.type is InvalidInputError for e in r.errors)
    assert c.get(["ok"])[0].metadata == {"n": 2**63 - 1}


# ------------------------------------------------------------------ locking


def test_second_open_of_a_path_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path / "q") as s:
        s.collection("c", CollectionOptions(dimensions=2)).upsert(doc("x", [1.0, 2.0]))
        with pytest.raises(StoreError, match="in use by another process"):
            open_store(tmp_path / "q")
        code = textwrap.dedent(f"""
            from aixpy import vectorstores
            from aixpy.errors import StoreError
            try:
                vectorstores.new({{"provider": "qdrant", "qdrant": {{"path": {str(tmp_path / "q")!r}}}}})
            except StoreError as e:
                print("refused:", e)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": SRC})
        assert "refused:" in out.stdout, out.stderr
        assert "in use by another process" in out.stdout
        # the open store was not disturbed by the refused opener
        c = s.collection("c")
        c.upsert(doc("y", [2.0, 1.0]))
        assert c.count() == 2
    with open_store(tmp_path / "q") as s:  # released on close
        assert s.collection("c").count() == 2


# ------------------------------------------------------------------ scores, paging, expiry


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_scores_follow_the_conventions_exactly(store: QdrantStore, metric: str) -> None:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((300, 8)).astype(np.float32)
    data[10] = data[11]  # an exact tie, broken by id
    c = store.collection("m", CollectionOptions(dimensions=8, metric=metric))  # type: ignore[arg-type]
    c.upsert_batch([doc(f"d{i:03d}", data[i]) for i in range(len(data))])
    for qi in (10, 50, 99):
        q = data[qi] + np.float32(0.01)
        x, qq = data.astype(np.float64), q.astype(np.float64)
        if metric == "cosine":
            s = x @ qq / (np.linalg.norm(x, axis=1) * np.linalg.norm(qq))
        elif metric == "dot":
            s = x @ qq
        else:
            s = 1.0 / (1.0 + np.linalg.norm(x - qq, axis=1))
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))
        got = c.query(Query(q, limit=15, offset=5))
        assert ids(got) == [f"d{i:03d}" for i in order[5:20]]
        assert [m.rank for m in got] == list(range(6, 21))
        tol = 1e-6 if metric == "cosine" else 1e-9  # cosine rows are stored as float32 unit vectors
        for m in got:
            i = int(m.document.id[1:])
            assert m.score == pytest.approx(s[i], rel=tol, abs=tol)
            d = {"cosine": 1 - s[i], "dot": -s[i], "euclidean": 1 / s[i] - 1}[metric]
            assert m.distance == pytest.approx(d, rel=tol, abs=tol)
        cut = float(s[order[12]] + s[order[13]]) / 2
        kept = c.query(Query(q, limit=100, min_score=cut))
        assert ids(kept) == [f"d{i:03d}" for i in order[:13]]
    everything = ids(c.query(Query(data[10], limit=300)))
    assert everything.index("d011") == everything.index("d010") + 1  # equal scores: id order
    with pytest.raises(InvalidInputError, match="metric"):
        c.query(Query(data[0], metric="dot" if metric != "dot" else "cosine"))


def test_include_embeddings_returns_the_original_vector(store: QdrantStore) -> None:
    c = store.collection("c", CollectionOptions(dimensions=3, metric="cosine"))
    c.upsert(doc("a", [3.0, 4.0, 12.0]))
    [m] = c.query(Query([3.0, 4.0, 12.0], limit=1, include_embeddings=True)).matches
    assert m.document.embedding == pytest.approx([3.0, 4.0, 12.0], rel=1e-6)
    assert m.score == pytest.approx(1.0, abs=1e-12)
    assert c.get(["a"])[0].embedding == pytest.approx([3.0, 4.0, 12.0], rel=1e-6)


def test_expired_documents_free_capacity_and_are_purged(store: QdrantStore) -> None:
    c = store.collection("c", CollectionOptions(dimensions=2, max_documents=2))
    past = utcnow() - timedelta(seconds=1)
    c.upsert_batch([doc("old", [1.0, 0.0], expires_at=past), doc("a", [0.0, 1.0])])
    r = c.upsert_batch([doc("b", [1.0, 1.0]), doc("c", [1.0, 2.0])])
    assert (r.inserted, r.failed_ids) == (1, ["c"])
    assert "max_documents" in r.errors[0].message
    assert r.errors[0].type is CapacityError
    assert c.count() == 2
    assert c.delete(["old"]).not_found_ids == ["old"]
    assert isinstance(c, QdrantCollection)
    assert c.delete(["b"]).deleted == 1
    c.upsert(doc("gone", [2.0, 1.0], expires_at=past))
    assert c.purge_expired() == 1
    assert c.optimize() in (True, False)
    assert ids(c.query(Query([1.0, 1.0], limit=10))) == ["a"]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_dedup_in_batches_and_against_stored(store: QdrantStore, metric: str) -> None:
    c = store.collection("c", CollectionOptions(dimensions=3, metric=metric, dedup=True,  # type: ignore[arg-type]
                                                dedup_threshold=0.95))
    assert c.upsert(doc("a", [1.0, 0.0, 0.0], "same")).inserted == 1
    r = c.upsert_batch([
        doc("b", [0.0, 1.0, 0.0], "same"),           # content of a
        doc("c", [2.0, 0.02, 0.0], "x"),             # near a (cosine), far in L2
        doc("a", [0.0, 0.0, 1.0], "moved"),          # update: never deduplicated
        doc("d", [1.0, 0.01, 0.0], "y"),             # a was replaced: no longer a near-duplicate
        doc("e", [0.0, 0.0, 5.0], "z"),              # near the new a
        doc("f", [0.0, -1.0, 0.0], ""),              # empty content is never a content duplicate
        doc("g", [-1.0, 0.0, 0.0], ""),
        doc("h", [0.0, 0.5, -0.5], "same"),          # a no longer holds "same"
    ])
    assert r.deduplicated_ids == ["b", "c", "e"]
    assert (r.inserted, r.updated, r.failed) == (4, 1, 0)
    assert c.count() == 5
    assert c.upsert(doc("i", [0.0, 0.0, 3.0], "other")).deduplicated_ids == ["i"]  # near a, stored


# ------------------------------------------------------------------ the filter compiler


KEYS = ["a", "b", "s", "l", "weird key", "ключ", 'q"k', "x\\y"]
EXTRA_KEYS = ["missing", "x.y"]  # filter-only: x.y can never be stored (keys may not hold '.')
INTS = [-2, -1, 0, 1, 2, 3, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1]
FLOATS = [0.0, -0.0, 0.5, 1.0, 2.0, 1.5, 9007199254740992.0, 1e300]
STRINGS = ["", "a", "ab", "abc", "b", "hello world", "Hello", "1", "true", "é"]
SCALARS: list[Any] = [*INTS, *FLOATS, True, False, *STRINGS]


def _value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.6:
        return rng.choice(SCALARS)
    if r < 0.7:
        return None
    if r < 0.9:
        return [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
    return rng.choice([[[1]], [["a"]], {"a": 1}, {"x": "hello"}, [{"a": 1}], []])


FUZZ = FilterFuzzer(KEYS, EXTRA_KEYS, SCALARS, [*INTS, *FLOATS], _value, meta_probability=0.5)


def test_compiled_filters_agree_with_the_reference_evaluator(store: QdrantStore) -> None:
    rng = random.Random(20240601)
    docs = FUZZ.dataset(rng, 160)
    c = store.collection("f", CollectionOptions(dimensions=4))
    r = c.upsert_batch(docs)
    assert r.inserted == len(docs), r.errors
    now = utcnow()
    visible = [d for d in docs if not d.is_expired(now)]
    inexact = 0
    for n in range(500):
        f = FUZZ.filter(rng)
        expected = sorted(d.id for d in visible if matches(f, d))
        inexact += not qf.compile_filter(f).exact
        assert c.count(f) == len(expected), (n, f)
        got = c.query(Query([1.0, 1.0, 1.0, 1.0], limit=len(docs), filter=f))
        assert sorted(ids(got)) == expected, (n, f)
    assert inexact > 10  # the post-filter path (numbers >= 2**53, unaddressable keys) was exercised


@pytest.mark.parametrize(("flt", "exact"), [
    (F.field("a").eq(1), True),
    (F.field("a").eq(2**53), False),
    (F.field("a").gt(-(2**53)), False),
    (F.field('q"k').eq("x"), False),
    (F.field("weird key").contains("x"), True),
    (F.Cond("x.y", "eq", 1), True),  # can never match: folded to a constant
    (~F.field("a").in_([1, 2**60]) | F.tags_any("t"), False),
    (F.field("a").eq(2**60) & F.Cond("x.y", "exists", True), True),  # AND with constant false
])
def test_compiler_marks_inexact_conditions(flt: Filter, exact: bool) -> None:
    assert qf.compile_filter(flt).exact is exact


def test_hand_built_edge_cases_follow_the_reference() -> None:
    nobody = Document(id="x", tags=["t"])
    for f in (F.TagsMatch((), "any"), F.TagsMatch((), "all"), F.ScopeIs()):
        assert qf.compile_filter(f).node == qf.Const(matches(f, nobody))


def test_constant_filters_fold() -> None:
    assert qf.compile_filter(F.Cond("x.y", "eq", 1)).node == qf.FALSE
    assert qf.compile_filter(F.Cond("x.y", "ne", 1)).node == qf.TRUE
    assert qf.compile_filter(~F.Cond("x.y", "exists", True) & F.tags_any("t")).node == qf.MatchValue(qf.F_TAGS, "t")


def test_edge_constants_select_all_and_nothing(store: QdrantStore) -> None:
    c = store.collection("c", CollectionOptions(dimensions=2))
    c.upsert_batch([doc("a", [1.0, 0.0]), doc("b", [0.0, 1.0])])
    qe = store._qe
    shard = c._h.shard
    for node, want in ((qf.TRUE, 2), (qf.FALSE, 0), (qf.Negate(qf.FALSE), 2),
                       (qf.All((qf.TRUE, qf.Negate(qf.TRUE))), 0)):
        assert shard.count(qe.CountRequest(exact=True, filter=qf.to_edge(qe, node))) == want


# ------------------------------------------------------------------ crash durability


WRITER = textwrap.dedent("""
    import sys
    from aixpy import vectorstores
    from aixpy.vectorstores import CollectionOptions, Document

    store = vectorstores.new({"provider": "qdrant", "qdrant": {"path": sys.argv[1]}})
    coll = store.collection("crash", CollectionOptions(dimensions=8, metric="cosine"))
    print("ready", flush=True)
    batch = 0
    while True:
        docs = [Document(id=f"b{batch}-{i}", content=f"batch {batch} doc {i}",
                         embedding=[float(batch + 1), float(i + 1)] + [0.5] * 6,
                         metadata={"batch": batch}) for i in range(20)]
        result = coll.upsert_batch(docs)
        assert result.inserted == 20, result.errors
        print(batch, flush=True)
        batch += 1
""")


@pytest.mark.parametrize("kill_after", [0, 1, 5, 25])
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "q"
    env = {**os.environ, "PYTHONPATH": SRC}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    acked: list[int] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
        while len(acked) < kill_after:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "writer ended"
            acked.append(int(line))
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-stream: the writer is already on the next batch
        child.wait(timeout=60)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    with open_store(path) as s:
        c = s.collection("crash")
        assert c.dimensions == 8
        want = [f"b{b}-{i}" for b in acked for i in range(20)]
        assert ids(c.get(want)) == want
        assert c.count() >= len(want)
        assert c.count() % 20 == 0  # a batch is all-or-nothing
        if acked:
            assert c.count(F.field("batch").eq(acked[-1])) == 20
        assert c.upsert(doc("after", [1.0] * 8, "new")).inserted == 1
        top = c.query(Query([1.0] * 8, limit=1))
        assert ids(top) == ["after"]
    with open_store(path) as s:
        assert ids(s.collection("crash").get(["after"])) == ["after"]
