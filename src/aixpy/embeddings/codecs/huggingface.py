"""Wire codec of the Hugging Face Inference API's ``feature-extraction`` task (pure: no I/O).

Three route styles, chosen from the configured ``endpoint`` (see :func:`resolve_route`):

``router`` (the default, what ``huggingface_hub`` 2.x sends)
    ``POST https://router.huggingface.co/hf-inference/models/{model}/pipeline/feature-extraction``,
    body ``{"inputs": [...], "normalize"?, "truncate"?, "prompt_name"?}`` (the task's parameters sit at
    the root of the body). The serverless options are headers: ``x-wait-for-model: true`` and
    ``x-use-cache: false``.
``legacy`` (the guide's ``https://api-inference.huggingface.co`` shape, for servers that still speak it)
    ``POST {endpoint}/models/{model}``, body ``{"inputs": [...], "options": {"wait_for_model": b,
    "use_cache": b}}`` (the options also go as headers). ``api-inference.huggingface.co`` itself answers
    410 Gone since 2025, so that host is read as the router unless ``api_style: legacy`` is set.
``endpoint`` (a dedicated Inference Endpoint, or any server taking the task's body at its URL)
    ``POST {endpoint}`` exactly as configured (no ``/`` added or removed) with the router's body and headers.

Answers: ``[[float, ...], ...]`` (one vector per text; a lone text may come back as ``[float, ...]``),
or token-level ``[[[float, ...], ...], ...]`` for models without a pooling layer, which are mean-pooled
over tokens here. Errors: ``{"error": str | [str], "estimated_time"?: float}``; a 503 with
``estimated_time`` (or "currently loading") means the model is loading (:func:`loading_estimate`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import numpy as np
import numpy.typing as npt

from aixpy.errors import ConfigError, ResponseFormatError

__all__ = [
    "LEGACY_HOST",
    "OPTION_HEADERS",
    "ROUTER_HOST",
    "ROUTER_URL",
    "ApiStyle",
    "HFRequest",
    "build_request",
    "check_model_id",
    "loading_estimate",
    "parse_vectors",
    "resolve_route",
    "vectors_from_json",
]

ROUTER_URL = "https://router.huggingface.co/hf-inference"
ROUTER_HOST = "router.huggingface.co"
LEGACY_HOST = "api-inference.huggingface.co"
TASK = "feature-extraction"
OPTION_HEADERS = ("x-wait-for-model", "x-use-cache")
"""The headers :func:`build_request` may send (the serverless options)."""

ApiStyle = Literal["router", "legacy", "endpoint"]
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?$")

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class HFRequest:
    """One request: ``path`` relative to the base URL, the JSON body and the extra headers."""

    path: str
    json: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def check_model_id(model: str) -> str:
    """A Hub model id (``org/name`` or ``name``); anything that could change the URL path is refused."""
    if not _MODEL_ID.match(model) or ".." in model:
        raise ConfigError(f"{model!r} is not a Hugging Face model id (expected 'org/name')", path="model")
    return model


def resolve_route(endpoint: str | None, api_style: str = "auto") -> tuple[str, ApiStyle]:
    """``(base URL, style)`` for a configured ``endpoint`` and ``api_style`` (``auto`` or a style).

    ``auto``: no endpoint, the router host or the retired ``api-inference.huggingface.co`` -> the router
    (``/hf-inference`` added to a bare router URL); a URL ending in ``/hf-inference`` -> router shape at
    that URL (a proxy of the router); any other URL -> ``endpoint``.
    """
    given = (endpoint or ROUTER_URL).strip()
    url = given.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"endpoint {endpoint!r} is not an http(s) URL", path="endpoint")
    if api_style not in ("auto", "router", "legacy", "endpoint"):
        raise ConfigError(f"api_style must be auto, router, legacy or endpoint, not {api_style!r}", path="api_style")
    host = parts.hostname.lower()
    if api_style == "auto":
        if host == LEGACY_HOST:
            return ROUTER_URL, "router"
        if host == ROUTER_HOST and parts.path in ("", "/"):
            return ROUTER_URL, "router"
        if parts.path.endswith("/hf-inference"):
            return url, "router"
        return given, "endpoint"
    style: ApiStyle = api_style  # type: ignore[assignment]
    if style == "router" and host == ROUTER_HOST and parts.path in ("", "/"):
        url = ROUTER_URL
    return (given if style == "endpoint" else url), style


def split_endpoint(url: str) -> tuple[str, str]:
    """``(origin, path)`` of an ``endpoint``-style URL, so the request goes to exactly that URL: its
    path (and query) as given, with no ``/`` added or removed; ``/`` for a URL without a path."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}", path + (f"?{parts.query}" if parts.query else "")


def request_path(model: str, style: ApiStyle, endpoint_path: str = "") -> str:
    """The path (relative to the base URL) a ``feature-extraction`` call goes to: for the ``endpoint``
    style, ``endpoint_path`` (from :func:`split_endpoint`) as it is."""
    if style == "endpoint":
        return endpoint_path
    quoted = quote(check_model_id(model), safe="/")
    return f"/models/{quoted}/pipeline/{TASK}" if style == "router" else f"/models/{quoted}"


def build_request(
    texts: Sequence[str],
    *,
    model: str,
    style: ApiStyle,
    wait_for_model: bool = True,
    use_cache: bool = True,
    normalize: bool | None = None,
    truncate: bool | None = None,
    prompt_name: str | None = None,
    endpoint_path: str = "",
) -> HFRequest:
    """The request embedding ``texts`` (always sent as a list, so the answer is always one row per text).

    ``normalize``/``truncate``/``prompt_name`` are the task's parameters; ``None`` leaves the server's
    default and is not sent. ``false`` is sent as ``false``.
    """
    body: dict[str, Any] = {"inputs": list(texts)}
    for key, value in (("normalize", normalize), ("truncate", truncate), ("prompt_name", prompt_name)):
        if value is not None:
            body[key] = value
    headers: dict[str, str] = {}  # names: OPTION_HEADERS
    if wait_for_model:
        headers["x-wait-for-model"] = "true"
    if not use_cache:
        headers["x-use-cache"] = "false"
    if style == "legacy":
        body["options"] = {"wait_for_model": wait_for_model, "use_cache": use_cache}
    return HFRequest(request_path(model, style, endpoint_path), body, headers)


# --------------------------------------------------------------------------- responses


def _bad(message: str, provider: str | None, model: str | None) -> ResponseFormatError:
    return ResponseFormatError(message, provider=provider, model=model)


def _numeric(arr: npt.NDArray[Any]) -> bool:
    return arr.dtype.kind in "iuf"


def _mean_pool_ragged(rows: list[Any], provider: str | None, model: str | None) -> Matrix:
    """Token-level output whose texts have different token counts: mean-pool each text on its own."""
    pooled = []
    for i, row in enumerate(rows):
        try:
            tokens = np.asarray(row)
        except ValueError:
            raise _bad(f"text {i}: token vectors of different lengths", provider, model) from None
        if tokens.ndim != 2 or tokens.shape[0] == 0 or not _numeric(tokens):
            raise _bad(f"text {i}: expected a list of token vectors, got shape {tokens.shape}", provider, model)
        pooled.append(tokens.astype(np.float32).mean(axis=0))
    if len({p.shape for p in pooled}) > 1:
        raise _bad("texts came back with different dimensions", provider, model)
    return np.stack(pooled).astype(np.float32, copy=False)


def vectors_from_json(data: Any, n: int, *, provider: str | None = None, model: str | None = None,
                      pool_tokens: bool = True) -> Matrix:
    """``(n, dims)`` float32 from decoded JSON: 2-D rows, a 1-D vector when ``n == 1``, or (with
    ``pool_tokens``) 3-D token vectors mean-pooled over tokens. Anything else, a count other than ``n``,
    non-numbers, NaN or infinity raise :class:`~aixpy.errors.ResponseFormatError`."""
    if not isinstance(data, list):
        raise _bad(f"expected a JSON array of vectors, got {type(data).__name__}", provider, model)
    try:
        arr = np.asarray(data)
    except ValueError:  # ragged
        arr = None
    if arr is None or arr.dtype == object:
        token_level = all(isinstance(r, list) and r and all(isinstance(t, list) for t in r) for r in data)
        if not pool_tokens or not token_level or len(data) != n:
            raise _bad("vectors of different lengths", provider, model)
        out = _mean_pool_ragged(data, provider, model)
    else:
        if arr.size and not _numeric(arr):
            raise _bad(f"vectors hold {arr.dtype.kind!r} values, not numbers", provider, model)
        if arr.ndim == 1 and n == 1 and arr.size:
            arr = arr.reshape(1, -1)
        if arr.ndim == 3 and pool_tokens:
            if arr.shape[1] == 0:
                raise _bad("token-level output with no tokens", provider, model)
            arr = arr.astype(np.float32).mean(axis=1)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise _bad(f"expected {n} vectors, got an array of shape {arr.shape}", provider, model)
        out = arr.astype(np.float32, copy=False)
    if out.shape[0] != n:
        raise _bad(f"expected {n} vectors, got {out.shape[0]}", provider, model)
    if not np.isfinite(out).all():
        raise _bad("vectors hold NaN or infinite values", provider, model)
    return out


def parse_vectors(body: bytes, n: int, *, provider: str | None = None, model: str | None = None) -> Matrix:
    """The vectors of a 2xx ``feature-extraction`` answer for ``n`` texts (see :func:`vectors_from_json`)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(f"answer is not JSON: {e}", provider, model) from None
    if isinstance(data, dict):
        msg = data.get("error")
        raise _bad(f"expected vectors, got an object{f' with error {msg!r}' if msg else ''}", provider, model)
    return vectors_from_json(data, n, provider=provider, model=model)


def loading_estimate(status: int | None, body: str | bytes | None) -> float | None:
    """Seconds until a loading model is ready, when a 503 says the model is loading, else ``None``.

    ``estimated_time`` of the body (``0.0`` when the body only says "loading" without an estimate).
    """
    if status != 503 or not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        est = data.get("estimated_time")
        if isinstance(est, int | float) and not isinstance(est, bool) and math.isfinite(est) and est >= 0:
            return float(est)
        err = data.get("error")
        text = " ".join(err) if isinstance(err, list) else str(err or "")
    return 0.0 if "loading" in text.lower() else None
