"""Wire codec of Hugging Face Text Embeddings Inference (TEI) (pure: no I/O).

* ``POST /embed`` ``{"inputs": [...], "normalize": bool, "truncate": bool, "truncation_direction"?:
  "Left"|"Right", "prompt_name"?: str}`` -> ``[[float, ...], ...]``, one vector per input, in order.
  ``normalize`` and ``truncate`` are always sent, ``false`` included (Aixgo could never send
  ``normalize: false``).
* ``GET /info`` -> ``{"model_id", "max_client_batch_size", "max_batch_tokens", "max_input_length",
  "max_concurrent_requests", "version", "model_type": {"embedding": {"pooling": ...}}, ...}``. It names
  the model but not its dimensions.
* ``GET /health`` -> 200 when the model answers, 503 when not.
* Errors: ``{"error": str, "error_type": "Validation"|"Tokenizer"|"Backend"|"Overloaded"|"Unhealthy"|
  "Empty"}`` with 413/422/424/429/503/400. A batch over the server's ``max_client_batch_size`` is
  refused with ``"batch size N > maximum allowed batch size M"`` (:func:`max_batch_from_error`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aixpy.embeddings.codecs.huggingface import Matrix, vectors_from_json
from aixpy.errors import ResponseFormatError

__all__ = [
    "EMBED_PATH",
    "HEALTH_PATH",
    "INFO_PATH",
    "TEIInfo",
    "build_embed",
    "max_batch_from_error",
    "parse_embed",
    "parse_info",
]

EMBED_PATH = "/embed"
INFO_PATH = "/info"
HEALTH_PATH = "/health"

_MAX_BATCH = re.compile(r"maximum allowed batch size\D{0,8}(\d+)", re.IGNORECASE)


def build_embed(
    texts: Sequence[str],
    *,
    normalize: bool = True,
    truncate: bool = True,
    truncation_direction: Literal["left", "right"] | None = None,
    prompt_name: str | None = None,
) -> dict[str, Any]:
    """The ``/embed`` body. ``normalize`` and ``truncate`` are always explicit."""
    body: dict[str, Any] = {"inputs": list(texts), "normalize": bool(normalize), "truncate": bool(truncate)}
    if truncation_direction is not None:
        body["truncation_direction"] = truncation_direction.capitalize()
    if prompt_name is not None:
        body["prompt_name"] = prompt_name
    return body


def parse_embed(body: bytes, n: int, *, provider: str | None = None, model: str | None = None) -> Matrix:
    """``(n, dims)`` float32 from a 2xx ``/embed`` answer; anything else is a ResponseFormatError."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ResponseFormatError(f"/embed answer is not JSON: {e}", provider=provider, model=model) from None
    return vectors_from_json(data, n, provider=provider, model=model, pool_tokens=False)


@dataclass(frozen=True, slots=True)
class TEIInfo:
    """What ``/info`` says about a TEI server (unknown fields are ``None``)."""

    model_id: str | None = None
    max_client_batch_size: int | None = None
    max_batch_tokens: int | None = None
    max_input_length: int | None = None
    max_concurrent_requests: int | None = None
    pooling: str | None = None
    version: str | None = None


def _pos_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def parse_info(body: bytes, *, provider: str | None = None) -> TEIInfo:
    """Parse ``/info``. Missing or odd fields become ``None``; a body that is not an object is an error."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ResponseFormatError(f"/info answer is not JSON: {e}", provider=provider) from None
    if not isinstance(data, dict):
        raise ResponseFormatError(f"/info answer is a {type(data).__name__}, not an object", provider=provider)
    model_type = data.get("model_type")
    pooling = None
    if isinstance(model_type, dict) and isinstance(model_type.get("embedding"), dict):
        p = model_type["embedding"].get("pooling")
        pooling = p if isinstance(p, str) else None
    model_id = data.get("model_id")
    version = data.get("version")
    return TEIInfo(
        model_id=model_id if isinstance(model_id, str) and model_id else None,
        max_client_batch_size=_pos_int(data.get("max_client_batch_size")),
        max_batch_tokens=_pos_int(data.get("max_batch_tokens")),
        max_input_length=_pos_int(data.get("max_input_length")),
        max_concurrent_requests=_pos_int(data.get("max_concurrent_requests")),
        pooling=pooling,
        version=version if isinstance(version, str) else None,
    )


def max_batch_from_error(body: str | bytes | None) -> int | None:
    """The server's batch limit from a "batch size N > maximum allowed batch size M" refusal, if any."""
    if not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    m = _MAX_BATCH.search(text)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None
