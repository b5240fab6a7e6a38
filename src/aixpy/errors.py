"""The one error tree of aixpy.

Every exception aixpy raises on purpose is a subclass of :class:`AixpyError`. Errors split in two
families: *your* mistakes (bad config, bad input, a missing extra), which retrying never fixes, and
*provider/backend* failures, which carry what you need to decide whether to retry. Vendor and driver
exceptions are mapped once, at the boundary where they are caught, and chained with ``raise ... from``.

::

    AixpyError
    ├── UserError                      a mistake in how aixpy is called or configured
    │   ├── ConfigError                bad YAML/config: carries file, key path and line
    │   ├── InvalidInputError          bad input value (also a ValueError)
    │   │   ├── DimensionMismatchError vector length differs from the collection/model
    │   │   ├── EmbeddingMismatchError a collection used with another embedding model than it was built with
    │   │   ├── UnsupportedFilterError a filter this backend cannot express (never silently dropped)
    │   │   └── UnsupportedQueryError  a query mode this backend cannot run (keyword/hybrid on firestore)
    │   ├── UnknownProviderError       no provider registered under that name
    │   ├── UnknownModelError          a model whose dimensions/price we cannot know
    │   ├── MissingDependencyError     an optional extra/package is not installed (also an ImportError)
    │   └── BlockedURLError            a URL refused by the SSRF guard
    ├── NotFoundError                  a document/collection that does not exist (also a LookupError)
    ├── CapacityError                  a configured limit (e.g. max_documents) would be exceeded
    │   └── BudgetExceededError        a daily token/cost budget would be crossed: the call was not sent
    ├── StoreError                     a vector-store backend failed (I/O, corrupt snapshot, driver error)
    ├── AgentError                     an agent run stopped before its answer; ``result`` is the partial run
    │   ├── UsageLimitExceededError    a run limit was reached (``limit``: requests, tool calls, tokens, cost)
    │   ├── AgentTimeoutError          the run's one deadline (``timeout``) passed
    │   ├── ToolRetriesExceededError   a tool's calls failed more often than ``max_tool_errors`` allows
    │   └── OutputValidationError      the final answer failed validation after every allowed retry
    └── ProviderError                  a remote/local model provider failed; carries provider, model,
        │                              status_code, retryable, and a short body excerpt (never secrets)
        ├── AuthenticationError        401/403: bad or missing API key
        ├── RateLimitError             429: retryable; ``retry_after`` seconds when the server said so
        ├── ProviderTimeoutError       connect/read/total timeout: retryable
        ├── ProviderConnectionError    could not connect / connection reset: retryable
        ├── ServerError                5xx: retryable
        │   └── ModelLoadingError      the model is still loading (HF 503); ``retry_after`` = estimate
        ├── InvalidRequestError        400/404/422: the provider rejected the request
        ├── ResponseFormatError        the provider answered with something we cannot parse
        │   └── InvalidToolArgumentsError  a tool call's arguments are not a JSON object;
        │                                  carries ``tool_name`` and ``tool_call_id`` (when known)
        ├── PartialBatchError          some sub-batches of a batch failed: ``failed`` indexes, their
        │                              errors, and the vectors of the texts that succeeded
        └── AllProvidersFailedError    every provider of a fallback chain failed; ``errors`` lists them

Secrets (API keys, tokens, passwords in URLs) never appear in messages or reprs: :func:`redact`
scrubs them from any text that goes into an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "AgentError",
    "AgentTimeoutError",
    "AixpyError",
    "AllProvidersFailedError",
    "AuthenticationError",
    "BlockedURLError",
    "BudgetExceededError",
    "CapacityError",
    "ConfigError",
    "DimensionMismatchError",
    "EmbeddingMismatchError",
    "InvalidInputError",
    "InvalidRequestError",
    "InvalidToolArgumentsError",
    "MissingDependencyError",
    "ModelLoadingError",
    "NotFoundError",
    "OutputValidationError",
    "PartialBatchError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "StoreError",
    "ToolRetriesExceededError",
    "UnknownModelError",
    "UnknownProviderError",
    "UnsupportedFilterError",
    "UnsupportedQueryError",
    "UsageLimitExceededError",
    "UserError",
    "redact",
]

_SECRET_PATTERNS = [
    # bearer / api-key headers and query parameters
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|x-goog-api-key|token|password|secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"),
    # well-known key shapes
    re.compile(r"\b(sk-(?:ant-|proj-)?)[A-Za-z0-9_-]{8,}"),
    re.compile(r"\b(hf_)[A-Za-z0-9]{8,}"),
    re.compile(r"\b(xai-)[A-Za-z0-9]{8,}"),
    re.compile(r"\b(AIza)[A-Za-z0-9_-]{20,}"),
    # user:password@ in URLs
    re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)"),
]


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Return ``text`` with API keys, tokens and URL passwords replaced by ``***``.

    ``secrets`` are exact values (e.g. the configured API key) that are removed wherever they occur.
    """
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    for pat in _SECRET_PATTERNS:
        if pat.groups >= 2:
            text = pat.sub(lambda m: m.group(1) + "***" + m.group(2), text)
        else:
            text = pat.sub(lambda m: m.group(1) + "***", text)
    return text


class AixpyError(Exception):
    """Base class of every error aixpy raises on purpose."""


# --------------------------------------------------------------------------- user errors


class UserError(AixpyError):
    """A mistake in how aixpy is called or configured. Retrying does not help."""


class ConfigError(UserError):
    """Invalid configuration. Names the file, the key path and the line when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        elif line:
            where = f"line {line}"
        parts = [p for p in (where, path) if p]
        prefix = (" ".join(parts) + ": ") if parts else ""
        super().__init__(prefix + message)


class InvalidInputError(UserError, ValueError):
    """An input value aixpy cannot accept (empty text, NaN in a vector, a bad id...)."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length differs from the dimensions of the collection or the model."""

    def __init__(self, expected: int, got: int, *, what: str = "embedding") -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"{what} has {got} dimensions, expected {expected}")


class EmbeddingMismatchError(InvalidInputError):
    """A collection built with one embedding model used with another (the message names both)."""


class UnsupportedFilterError(InvalidInputError):
    """A filter the backend cannot express. Raised instead of dropping or weakening the filter."""


class UnsupportedQueryError(InvalidInputError):
    """A query mode the backend cannot run (e.g. keyword or hybrid search without a keyword index);
    the message names the backend. Raised instead of silently running another kind of search."""


class UnknownProviderError(UserError):
    """No provider is registered under the requested name."""

    def __init__(self, kind: str, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown {kind} provider {name!r}; known: {', '.join(sorted(known)) or '(none)'}")


class UnknownModelError(UserError):
    """A model whose dimensions (or price) aixpy cannot know; set them explicitly."""


class MissingDependencyError(UserError, ImportError):
    """An optional dependency is missing. The message names the exact install command."""

    def __init__(self, what: str, install: str) -> None:
        self.install = install
        super().__init__(f"{what} is not installed; install it with: {install}")


class BlockedURLError(UserError):
    """A URL refused by the SSRF guard (scheme, host or resolved address not allowed)."""


# --------------------------------------------------------------------------- data / backend errors


class NotFoundError(AixpyError, LookupError):
    """The document, collection or resource does not exist."""


class CapacityError(AixpyError):
    """A configured limit (such as ``max_documents``) would be exceeded."""


class BudgetExceededError(CapacityError):
    """A call would cross a daily budget (``daily_token_limit`` or ``daily_cost_limit``); it was refused
    *before* any request was made. Not retryable until the UTC day changes or the limit is raised.

    Attributes: ``limit`` (which budget), ``scope`` (``"global"`` or ``"agent:<name>"``), ``day`` (UTC,
    ISO), ``used`` (already spent or reserved today), ``requested`` (this call's estimate) and
    ``allowed`` (the limit's value).
    """

    def __init__(self, *, limit: str, scope: str, day: str, used: float, requested: float, allowed: float) -> None:
        self.limit, self.scope, self.day = limit, scope, day
        self.used, self.requested, self.allowed = used, requested, allowed
        unit = "USD" if "cost" in limit else "tokens"
        super().__init__(f"{limit} of {scope} reached for {day} (UTC): {used:g} {unit} used or reserved + "
                         f"{requested:g} estimated for this call > {allowed:g}; the call was not sent")


class StoreError(AixpyError):
    """A vector-store backend failed (I/O, corrupt snapshot, driver error)."""


# --------------------------------------------------------------------------- agent errors


class AgentError(AixpyError):
    """An agent run stopped before its final answer. ``result`` is the partial run (an
    :class:`aixpy.agents.RunResult`: the steps done so far, usage and cost), never ``None``."""

    def __init__(self, message: str, *, result: Any) -> None:
        super().__init__(message)
        self.result = result


class UsageLimitExceededError(AgentError):
    """A run limit was reached; ``limit`` names it (``max_requests``, ``max_tool_calls``,
    ``max_total_tokens``, ``max_cost_usd``)."""

    def __init__(self, message: str, *, result: Any, limit: str) -> None:
        super().__init__(message, result=result)
        self.limit = limit


class AgentTimeoutError(AgentError):
    """The run's deadline (its ``timeout``, one for the whole run) passed."""


class ToolRetriesExceededError(AgentError):
    """The calls of one tool failed (bad arguments, an exception, a timeout) more often than
    ``max_tool_errors`` allows; ``tool`` names it."""

    def __init__(self, message: str, *, result: Any, tool: str) -> None:
        super().__init__(message, result=result)
        self.tool = tool


class OutputValidationError(AgentError):
    """The final answer did not validate against the output type after every allowed retry."""


# --------------------------------------------------------------------------- provider errors


class ProviderError(AixpyError):
    """A model provider failed. Never carries the API key.

    Attributes:
        provider: registry name of the provider ("openai", "local", ...).
        model: model name, when known.
        status_code: HTTP status, when there was a response.
        retryable: whether retrying the same call may succeed.
        body: a short, redacted excerpt of the response body.
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
        body: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.retryable = self.default_retryable if retryable is None else retryable
        self.body = redact(body[:500]) if body else None
        self.message = redact(message)
        super().__init__(self._render())

    def _render(self) -> str:
        ctx = [f"{k}={v}" for k, v in (("provider", self.provider), ("model", self.model),
                                       ("status", self.status_code)) if v is not None]
        return self.message + (f" ({', '.join(ctx)})" if ctx else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._render()!r}, retryable={self.retryable})"


class AuthenticationError(ProviderError):
    """401/403: the API key is missing, wrong or lacks permission."""


class RateLimitError(ProviderError):
    """429: too many requests. ``retry_after`` is the server's hint in seconds, if any."""

    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ProviderTimeoutError(ProviderError):
    """The provider did not answer in time."""

    default_retryable = True


class ProviderConnectionError(ProviderError):
    """The connection could not be made or was reset."""

    default_retryable = True


class ServerError(ProviderError):
    """The provider answered 5xx."""

    default_retryable = True


class ModelLoadingError(ServerError):
    """The model is still loading (e.g. Hugging Face 503). ``retry_after``: the server's estimate in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class PartialBatchError(ProviderError):
    """Some sub-batches of a batch call failed; nothing is silently lost.

    Attributes:
        failed: indexes (into the caller's list) of the texts with no vector.
        errors: the error of each failed sub-batch, in order.
        vectors: one entry per input text: the vector, or ``None`` where it failed.
    """

    def __init__(self, failed: Sequence[int], errors: Sequence[BaseException], vectors: Sequence[Any],
                 **kw: Any) -> None:
        self.failed = list(failed)
        self.errors = list(errors)
        self.vectors = list(vectors)
        first = f"{type(self.errors[0]).__name__}: {self.errors[0]}" if self.errors else "unknown error"
        kw.setdefault("retryable", any(getattr(e, "retryable", False) for e in self.errors))
        super().__init__(f"{len(self.failed)} of {len(self.vectors)} texts failed "
                         f"(indexes {_ranges(self.failed)}); first error: {first}", **kw)


def _ranges(indexes: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (kept short for messages)."""
    out: list[str] = []
    for i in sorted(indexes):
        if out and "-" not in out[-1].split(",")[-1] and int(out[-1].split("-")[-1]) == i - 1:
            out[-1] = f"{out[-1]}-{i}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[-1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    text = ", ".join(out[:10])
    return text + (f", ... ({len(out) - 10} more ranges)" if len(out) > 10 else "")


class InvalidRequestError(ProviderError):
    """The provider rejected the request (400/404/422...)."""


class ResponseFormatError(ProviderError):
    """The provider's answer could not be parsed."""


class InvalidToolArgumentsError(ResponseFormatError):
    """A tool call's arguments are not a JSON object (invalid JSON, or JSON that is not an object).

    ``tool_name`` names the tool the model called; ``tool_call_id`` is the call's id when the reply
    carried one (``None`` otherwise). An agent uses them to tell the model to correct its arguments.
    """

    def __init__(self, message: str, *, tool_name: str, tool_call_id: str | None = None,
                 provider: str | None = None, model: str | None = None, body: str | None = None) -> None:
        self.tool_name = tool_name
        self.tool_call_id = tool_call_id
        super().__init__(message, provider=provider, model=model, body=body)


class AllProvidersFailedError(ProviderError):
    """Every provider of a fallback chain failed. ``errors`` holds each one, in order."""

    def __init__(self, errors: Sequence[BaseException]) -> None:
        self.errors = list(errors)
        detail = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
        super().__init__(
            f"all {len(self.errors)} providers failed: {detail}",
            retryable=any(getattr(e, "retryable", False) for e in self.errors),
        )
