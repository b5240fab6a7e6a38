"""Wire codec of OpenAI's ``POST {base_url}/embeddings`` (and every OpenAI-compatible server; pure, no I/O).

Request: ``{"model": str, "input": [str, ...], "user"?: str, "dimensions"?: int,
"encoding_format": "float" | "base64"}``. Answer::

    {"object": "list", "model": str,
     "data": [{"object": "embedding", "index": int, "embedding": [float, ...] | "<base64 of float32 LE>"}, ...],
     "usage": {"prompt_tokens": int, "total_tokens": int}}

``data`` is put back in input order by ``index``; a wrong count, a missing, duplicate, out-of-range or
non-integer index, ragged or empty vectors, non-numbers and NaN/infinity are each a
:class:`~aixpy.errors.ResponseFormatError`. ``usage`` is optional (some compatible servers omit it).

Documented limits (OpenAI API reference, *Create embeddings*): at most 2048 inputs per request, 8192
tokens per input, 300,000 tokens summed over one request. Only ``text-embedding-3-*`` models accept
``dimensions`` (see :func:`resolve_dimensions`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from aixpy.embeddings.codecs._vectors import Matrix, decode_json, error_message, finite, to_matrix, usage_tokens
from aixpy.errors import ConfigError, ResponseFormatError

__all__ = [
    "ENCODING_FORMATS",
    "MAX_INPUTS",
    "MAX_INPUT_TOKENS",
    "MAX_REQUEST_TOKENS",
    "NATIVE_DIMENSIONS",
    "OFFICIAL_HOST",
    "PATH",
    "EncodingFormat",
    "build_request",
    "parse_response",
    "resolve_dimensions",
    "supports_dimensions",
]

PATH = "/embeddings"
OFFICIAL_HOST = "api.openai.com"
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000
NATIVE_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}

EncodingFormat = Literal["float", "base64"]
ENCODING_FORMATS: tuple[EncodingFormat, ...] = ("float", "base64")


def supports_dimensions(model: str) -> bool:
    """Whether OpenAI accepts ``dimensions`` for ``model`` (the ``text-embedding-3`` family and later)."""
    return model.startswith("text-embedding-3-")


def resolve_dimensions(model: str, dimensions: int | None, *, official: bool,
                       send: bool | None = None) -> tuple[int | None, int | None]:
    """``(expected vector width or None if unknown, value of the request's "dimensions" or None)``.

    * ``text-embedding-3-*``: ``dimensions`` (1 to the native width) is sent and is the width.
    * ``text-embedding-ada-002`` (fixed 1536): ``dimensions`` other than 1536 is a :class:`ConfigError`.
    * another model on ``api.openai.com``: ``dimensions`` is a :class:`ConfigError` (OpenAI rejects it).
    * another model on a compatible server (vLLM, llama.cpp, a gateway...): ``dimensions`` declares the
      width and is not sent; without it the width is learned from the first answer.

    ``send=True`` sends ``dimensions`` whatever the model (a compatible server with Matryoshka models);
    ``send=False`` never sends it.
    """
    native = NATIVE_DIMENSIONS.get(model)
    if dimensions is not None and dimensions < 1:
        raise ConfigError(f"dimensions must be >= 1, got {dimensions}", path="dimensions")
    if send is not None:
        if send and dimensions is None:
            raise ConfigError("send_dimensions needs dimensions", path="dimensions")
        return (dimensions if dimensions is not None else native), (dimensions if send else None)
    if dimensions is None:
        return native, None
    if supports_dimensions(model):
        if native is not None and dimensions > native:
            raise ConfigError(f"{model} has at most {native} dimensions, got {dimensions}", path="dimensions")
        return dimensions, dimensions
    if native is not None:
        if dimensions != native:
            raise ConfigError(f"{model} does not support custom dimensions (it always returns {native}); "
                              "use text-embedding-3-small/-large for shorter vectors", path="dimensions")
        return native, None
    if official:
        raise ConfigError(f"{model!r} does not accept custom dimensions on {OFFICIAL_HOST}: only text-embedding-3 "
                          "models do", path="dimensions")
    return dimensions, None


def build_request(texts: Sequence[str], *, model: str, dimensions: int | None = None,
                  encoding_format: EncodingFormat = "float", user: str | None = None) -> dict[str, Any]:
    """The JSON body of one request (``input`` is always a list, even for one text)."""
    if encoding_format not in ENCODING_FORMATS:
        raise ConfigError(f"encoding_format must be 'float' or 'base64', got {encoding_format!r}",
                          path="encoding_format")
    body: dict[str, Any] = {"model": model, "input": list(texts)}
    if user:
        body["user"] = user
    if dimensions is not None:
        body["dimensions"] = dimensions
    body["encoding_format"] = encoding_format
    return body


def parse_response(body: bytes | str, n: int, *, encoding_format: EncodingFormat = "float",
                   provider: str = "openai", model: str | None = None) -> tuple[Matrix, int | None]:
    """``((n, dims) float32 matrix in input order, usage.prompt_tokens or None)`` from a 2xx body."""

    def bad(why: str) -> ResponseFormatError:
        return ResponseFormatError(why, provider=provider, model=model)

    obj = decode_json(body, provider=provider, model=model)
    message = error_message(obj)
    if message is not None:
        raise bad(f"the server answered an error: {message}")
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list):
        raise bad("response has no 'data' list")
    if len(data) != n:
        raise bad(f"got {len(data)} embeddings for {n} texts")
    rows: list[Any] = [None] * n
    for pos, item in enumerate(data):
        index = item.get("index") if isinstance(item, dict) else None
        if type(index) is not int:
            raise bad(f"data[{pos}] has no integer 'index'")
        if not 0 <= index < n:
            raise bad(f"data[{pos}].index {index} is out of range for {n} texts")
        if rows[index] is not None:
            raise bad(f"index {index} appears twice in data")
        if "embedding" not in item:
            raise bad(f"data[{pos}] has no 'embedding'")
        rows[index] = item["embedding"]
    if encoding_format == "base64":
        matrix = _from_base64(rows, provider=provider, model=model)
    else:
        matrix = to_matrix(rows, n, provider=provider, model=model, body=body)
    usage = obj.get("usage")
    return matrix, usage_tokens(usage.get("prompt_tokens")) if isinstance(usage, dict) else None


def _from_base64(rows: list[Any], *, provider: str, model: str | None) -> Matrix:
    """Rows of base64 little-endian float32 (what ``encoding_format: base64`` returns)."""
    raw: list[bytes] = []
    for i, row in enumerate(rows):
        if not isinstance(row, str):
            raise ResponseFormatError(f"embedding {i} is {type(row).__name__}, expected a base64 string",
                                      provider=provider, model=model)
        try:
            raw.append(base64.b64decode(row, validate=True))
        except (binascii.Error, ValueError):
            raise ResponseFormatError(f"embedding {i} is not valid base64", provider=provider, model=model) from None
    width = len(raw[0]) if raw else 0
    if width == 0 or width % 4 or any(len(r) != width for r in raw):
        raise ResponseFormatError(f"base64 embeddings have lengths {sorted({len(r) for r in raw})} bytes, expected "
                                  "one equal, non-zero multiple of 4", provider=provider, model=model)
    matrix = np.frombuffer(b"".join(raw), dtype="<f4").reshape(len(raw), width // 4).astype(np.float32)
    return finite(matrix, provider=provider, model=model)
