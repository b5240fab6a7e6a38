"""Wire codec of Ollama's ``POST /api/embed`` (pure, no I/O).

Request: ``{"model": str, "input": [str, ...], "truncate": bool, "keep_alive"?: str | number,
"dimensions"?: int, "options"?: {...}}`` (``truncate: false`` makes an over-long input an error instead
of being cut to the context length; ``dimensions`` asks models that support it for shorter vectors).
Answer: ``{"model": str, "embeddings": [[float, ...], ...], "total_duration"?: int,
"load_duration"?: int, "prompt_eval_count"?: int}``; the vectors come in input order (there is no
index). Errors are ``{"error": str}`` with a 4xx/5xx status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aixpy.embeddings.codecs._vectors import Matrix, decode_json, error_message, to_matrix, usage_tokens
from aixpy.errors import ResponseFormatError

__all__ = ["PATH", "build_request", "parse_response"]

PATH = "/api/embed"


def build_request(texts: Sequence[str], *, model: str, truncate: bool = True, keep_alive: str | float | None = None,
                  dimensions: int | None = None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of one ``/api/embed`` request (``input`` is always a list)."""
    body: dict[str, Any] = {"model": model, "input": list(texts), "truncate": truncate}
    if options:
        body["options"] = dict(options)
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def parse_response(body: bytes | str, n: int, *, provider: str = "ollama",
                   model: str | None = None) -> tuple[Matrix, int | None]:
    """``((n, dims) float32 matrix, prompt_eval_count or None)`` from a 2xx body."""
    obj = decode_json(body, provider=provider, model=model)
    message = error_message(obj)
    if message is not None:
        raise ResponseFormatError(f"the server answered an error: {message}", provider=provider, model=model)
    rows = obj.get("embeddings") if isinstance(obj, dict) else None
    if not isinstance(rows, list):
        raise ResponseFormatError("response has no 'embeddings' list (is this an Ollama server?)",
                                  provider=provider, model=model)
    return to_matrix(rows, n, provider=provider, model=model, body=body), usage_tokens(obj.get("prompt_eval_count"))
