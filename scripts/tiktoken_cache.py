#!/usr/bin/env python3
"""Put tiktoken's ``cl100k_base`` BPE file into ``$AIXPY_CACHE/tiktoken`` for the token-counting tests.

Idempotent; ``make test`` runs it before pytest::

    python scripts/tiktoken_cache.py

aixpy never lets tiktoken download an encoding (see ``aixpy.embeddings.policies.cost``), and the tests
never reach the internet, so the exact-count tests need the file on disk beforehand. It is the public
``cl100k_base.tiktoken`` file, which the LiteLLM wheel on PyPI ships verbatim: the script downloads that
wheel once (``pip download --no-deps``, from the configured package index only), takes the one file out
of it, checks its sha256 against the value tiktoken itself expects, and stores it under tiktoken's cache
name (the sha1 of its URL). Nothing of LiteLLM is installed. Prints the cache directory.

Exit status: 0 ready; 1 the file could not be had (the message says why).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
WHEEL = "litellm==1.106.2"
MEMBER = "litellm/litellm_core_utils/tokenizers/" + hashlib.sha1(URL.encode()).hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("AIXPY_CACHE", Path.home() / ".cache" / "aixpy")) / "tiktoken"


def intact(path: Path) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def fetch(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise SystemExit(f"tiktoken_cache: could not download {WHEEL}: {done.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as whl:
            try:
                data = whl.read(MEMBER)
            except KeyError:
                raise SystemExit(f"tiktoken_cache: {wheels[0].name} has no {MEMBER}") from None
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise SystemExit("tiktoken_cache: the cl100k_base file in the wheel does not have the expected sha256")
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)


def main() -> int:
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / hashlib.sha1(URL.encode()).hexdigest()
    if not intact(target):
        print(f"tiktoken_cache: fetching cl100k_base from the {WHEEL} wheel", file=sys.stderr)
        fetch(target)
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
