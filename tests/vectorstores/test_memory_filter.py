"""Property test: the memory backend's vectorised filters agree with the reference ``matches``."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aixpy.vectorstores import Document, Scope, filters
from aixpy.vectorstores import filters as F
from aixpy.vectorstores._memory_filter import FilterIndex
from aixpy.vectorstores.filters import Filter

KEYS = ["a", "b", "c"]
TAGS = ["t1", "t2", "t3"]
NAMES = ["x", "y"]

scalars = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5, -1.0, 2**53 + 1, 2**60, float(2**53)]),
    st.sampled_from(["", "ab", "abc", "b", "1"]),
)
values = st.one_of(st.none(), scalars, st.lists(scalars, max_size=3), st.just({"k": 1}))


@st.composite
def documents(draw: st.DrawFn, i: int) -> Document:
    meta = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=3))
    tags = draw(st.lists(st.sampled_from(TAGS), max_size=3, unique=True))
    scope = Scope(*(draw(st.one_of(st.none(), st.sampled_from(NAMES))) for _ in range(3)))
    return Document(id=f"d{i}", metadata=meta, tags=tags, scope=scope)


def leaf() -> st.SearchStrategy[Filter]:
    key = st.sampled_from(KEYS)
    number = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 2.0, -1.0, 2**53, 2**53 + 1, 2**60]))
    return st.one_of(
        st.builds(lambda k, v: F.field(k).eq(v), key, scalars),
        st.builds(lambda k, v: F.field(k).ne(v), key, scalars),
        st.builds(lambda k, v, op: getattr(F.field(k), op)(v), key, number,
                  st.sampled_from(["gt", "gte", "lt", "lte"])),
        st.builds(lambda k, v: F.field(k).in_(v), key, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(lambda k, v: F.field(k).nin(v), key, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(lambda k, v: F.field(k).contains(v), key, scalars),
        st.builds(lambda k: F.field(k).exists(), key),
        st.builds(lambda t: F.tags_any(*t), st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)),
        st.builds(lambda t: F.tags_all(*t), st.lists(st.sampled_from(TAGS), min_size=1, max_size=2)),
        st.builds(lambda t, u: F.scope(tenant=t, user=u), st.sampled_from(NAMES), st.none() | st.sampled_from(NAMES)),
    )


trees: st.SearchStrategy[Filter] = st.recursive(
    leaf(),
    lambda sub: st.one_of(
        st.builds(lambda xs: filters.And(tuple(xs)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda xs: filters.Or(tuple(xs)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(filters.Not, sub),
    ),
    max_leaves=6,
)


@st.composite
def corpora(draw: st.DrawFn) -> list[Document]:
    n = draw(st.integers(0, 12))
    return [draw(documents(i)) for i in range(n)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=corpora(), flts=st.lists(trees, min_size=1, max_size=4))
def test_index_agrees_with_reference(docs: list[Document], flts: list[Filter]) -> None:
    index = FilterIndex(docs)
    for f in flts:  # several filters on one index: cached columns must not leak between them
        got = index.mask(f).tolist()
        assert got == [filters.matches(f, d) for d in docs], f


def test_big_integers_are_compared_exactly() -> None:
    big: Any = 2**53 + 1
    docs = [Document(id="a", metadata={"v": big}), Document(id="b", metadata={"v": float(2**53)})]
    index = FilterIndex(docs)
    assert index.mask(F.field("v").gt(2**53)).tolist() == [True, False]
    assert index.mask(F.field("v").eq(2**53)).tolist() == [False, True]
    assert index.mask(F.field("v").eq(big)).tolist() == [True, False]
