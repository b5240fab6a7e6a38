"""Hybrid (BM25 + vector, RRF k=60) vs vector-only retrieval: recall@5 (and recall@1, MRR) on two sets.

1. **corpus**: ``examples/corpus`` (10 files) indexed with the real pipeline (``Indexer``, the default
   local embedding model) and 16 hand-written questions, each answered by one file; a query is a hit
   when a chunk of that file is in the top k (chunks of one file count once: the first).
2. **codes**: a generated keyword-heavy set: ``--docs`` near-identical incident reports that differ
   only by an identifier (``XJ-40721``...), a part number and a rare surname; each query names one
   document's identifier or surname in a paraphrased sentence. Embeddings cannot tell the codes
   apart; BM25 can.

Both sets run on the memory backend and on embedded Qdrant (``--stores``); pgvector computes the
same BM25 as memory. Prints one table row per (set, store, mode).

    python bench/hybrid.py                 # both sets, memory + qdrant
    python bench/hybrid.py --docs 200      # smaller generated set
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path
from typing import Any

from aixpy import embeddings, vectorstores
from aixpy.rag.indexer import Indexer, search
from aixpy.vectorstores import CollectionOptions, Document

ROOT = Path(__file__).resolve().parents[1]

QUESTIONS = [  # (query, the file that answers it)
    ("what is a dense vector representation of text meaning", "embeddings.md"),
    ("how many hours of sun do tomato plants need", "gardening.md"),
    ("what does a 429 status code mean and how should I retry", "http-retries.md"),
    ("exponential backoff with jitter", "http-retries.md"),
    ("how long to cook spaghetti al dente", "pasta.txt"),
    ("what goes in pyproject.toml", "python-packaging.txt"),
    ("hatchling build backend and extras", "python-packaging.txt"),
    ("retriever finds passages then a language model writes the answer", "rag-basics.md"),
    ("attacker makes the server fetch 169.254.169.254", "security-ssrf.md"),
    ("how to block requests to cloud metadata addresses", "security-ssrf.md"),
    ("which planets are gas giants", "solar-system.html"),
    ("how old is the solar system", "solar-system.html"),
    ("wild yeast starter and lactic acid bacteria", "sourdough.md"),
    ("how long should dough ferment in bulk", "sourdough.md"),
    ("exact nearest neighbour search versus approximate HNSW", "vector-databases.rst"),
    ("cosine similarity between two vectors", "embeddings.md"),
]

SURNAMES = ["Okonkwo", "Vasquez-Ruiz", "Nakagawa", "Abernethy", "Szymanski", "Oyelaran", "Quintero", "Haraldsen",
            "Mbeki", "Thistlewood", "Kowalczyk", "Adeyemi", "Castellanos", "Lindqvist", "Papadakis", "Ferreira"]
DEVICES = ["pump controller", "cooling unit", "gateway", "battery module", "sensor hub"]


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=500, help="documents of the generated set")
    p.add_argument("--queries", type=int, default=200, help="queries of the generated set")
    p.add_argument("--stores", default="memory,qdrant")
    p.add_argument("--k", type=int, default=5)
    return p.parse_args()


def _store(name: str, tmp: str) -> vectorstores.VectorStore:
    if name == "qdrant":
        return vectorstores.new({"provider": "qdrant", "qdrant": {"path": f"{tmp}/qdrant"}})
    return vectorstores.new({"provider": name})


def _scores(ranked: list[list[str]], wanted: list[str], k: int) -> tuple[float, float, float]:
    """(recall@k, recall@1, MRR@k) where each ranking lists answer keys best first."""
    n = len(wanted)
    at_k = sum(w in r[:k] for r, w in zip(ranked, wanted, strict=True)) / n
    at_1 = sum(r[:1] == [w] for r, w in zip(ranked, wanted, strict=True)) / n
    mrr = sum(1 / (r.index(w) + 1) for r, w in zip(ranked, wanted, strict=True) if w in r[:k]) / n
    return at_k, at_1, mrr


def _dedup(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def corpus_set(emb: Any, store: vectorstores.VectorStore, k: int) -> dict[str, tuple[float, float, float]]:
    coll = store.collection("corpus", CollectionOptions(dimensions=emb.dimensions()))
    Indexer(emb, coll).index_path(ROOT / "examples" / "corpus")
    wanted = [f for _, f in QUESTIONS]
    out = {}
    for mode in ("vector", "hybrid"):
        ranked = [_dedup([h.source for h in search(emb, coll, q, limit=4 * k, hybrid=mode == "hybrid")])
                  for q, _ in QUESTIONS]
        out[mode] = _scores(ranked, wanted, k)
    return out


def codes_set(emb: Any, store: vectorstores.VectorStore, n_docs: int, n_queries: int,
              k: int) -> dict[str, tuple[float, float, float]]:
    rng = random.Random(7)
    codes = rng.sample(range(10_000, 99_999), n_docs)
    docs, facts = [], []
    for i in range(n_docs):
        code = f"XJ-{codes[i]}"
        part = f"P{rng.randrange(100, 999)}-{rng.choice('ABCDEFGH')}{rng.randrange(10, 99)}"
        name = f"{rng.choice(SURNAMES)}{i}"
        device = rng.choice(DEVICES)
        text = (f"Incident {code}: the {device} stopped responding during the night shift. Technician {name} "
                f"replaced part {part}, ran the diagnostics again and returned the {device} to service.")
        docs.append((f"doc{i}", text))
        facts.append((code, name, device))
    vecs = emb.embed_array([t for _, t in docs])
    coll = store.collection("codes", CollectionOptions(dimensions=emb.dimensions()))
    coll.upsert_batch([Document(i, t, v) for (i, t), v in zip(docs, vecs, strict=True)])
    picks = [rng.randrange(n_docs) for _ in range(n_queries)]
    queries = []
    for j, i in enumerate(picks):
        code, name, device = facts[i]
        queries.append(f"what was done about incident {code}?" if j % 2 == 0 else
                       f"which {device} did technician {name} repair")
    qvecs = emb.embed_array(queries)
    wanted = [f"doc{i}" for i in picks]
    out = {}
    for mode in ("vector", "hybrid", "keyword"):  # keyword alone: for reference
        ranked = []
        for q, v in zip(queries, qvecs, strict=True):
            query = vectorstores.Query(v, limit=k, text=q, mode=mode)  # type: ignore[arg-type]
            ranked.append([m.document.id for m in coll.query(query)])
        out[mode] = _scores(ranked, wanted, k)
    return out


def main() -> None:
    a = _args()
    emb = embeddings.new({"provider": "local"})
    print(f"embedding model: {emb.model()} ({emb.dimensions()} dims); k = {a.k}; RRF k = 60")
    print(f"{'set':<8} {'store':<8} {'mode':<7} {'recall@' + str(a.k):>9} {'recall@1':>9} {'MRR@' + str(a.k):>7}")
    for name in a.stores.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            store = _store(name, tmp)
            try:
                rows = {"corpus": corpus_set(emb, store, a.k),
                        "codes": codes_set(emb, store, a.docs, a.queries, a.k)}
            finally:
                store.close()
        for set_name, res in rows.items():
            for mode, (rk, r1, mrr) in res.items():
                print(f"{set_name:<8} {name:<8} {mode:<7} {rk:>9.3f} {r1:>9.3f} {mrr:>7.3f}")


if __name__ == "__main__":
    main()
