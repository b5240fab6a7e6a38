"""What the server serves, apart from HTTP: client keys, the model ids exposed, the models built from config,
the embedding service, and the mapping of aixpy errors to OpenAI error responses."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
from typing import TYPE_CHECKING, Any

from aixpy.errors import (
    AuthenticationError,
    BudgetExceededError,
    CapacityError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    UserError,
)
from aixpy.serve._openai_wire import WireError

if TYPE_CHECKING:
    from aixpy.config import AixpyConfig, ServeConfig, ServeKeyConfig
    from aixpy.embeddings.base import EmbeddingService
    from aixpy.llm.model import ChatModel

__all__ = ["Gateway", "error_of", "exposure_problem", "hash_key", "is_loopback"]

log = logging.getLogger("aixpy.serve")


def hash_key(key: str) -> str:
    """The ``sha256:`` to put in ``serve.api_keys`` for a client key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address; ``0.0.0.0``/``::`` are not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def exposure_problem(host: str, serve: ServeConfig) -> str | None:
    """Why the server must not start on ``host`` (no client keys on a non-loopback address), or ``None``."""
    if is_loopback(host) or any(not k.disabled for k in serve.api_keys):
        return None
    return (f"--host {host} is not a loopback address and serve.api_keys has no enabled key: refusing to serve "
            "without client authentication (add keys, see docs/serve.md, or listen on 127.0.0.1)")


class Gateway:
    """The state one server process shares between requests (built once, at startup)."""

    def __init__(self, config: AixpyConfig) -> None:
        self.config = config
        self.serve = config.serve
        self._keys = [(bytes.fromhex(k.sha256), k) for k in self.serve.api_keys]
        self.auth_required = bool(self._keys)
        self._models: dict[str, ChatModel] = {}
        self._lock = threading.Lock()
        self._embedder: EmbeddingService | None = None
        self._store: Any = None
        self.embedding_model: str | None = None
        if config.embeddings is not None:
            from aixpy import embeddings

            self._embedder = embeddings.new(config.embeddings)
            self.embedding_model = self._embedder.model()
        self.chat_ids = [a.name for a in config.agents] + [s.name for s in config.model_services] \
            + [m for m in self.serve.allow_models]

    # ------------------------------------------------------------------ auth

    def authenticate(self, authorization: str | None) -> ServeKeyConfig | None:
        """The key a request's ``Authorization: Bearer`` header presents; ``None`` when auth is off.
        Every configured hash is compared (``hmac.compare_digest``), whichever matches."""
        if not self.auth_required:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise WireError("missing bearer API key (Authorization: Bearer <key>)", status=401,
                            type="invalid_request_error", code="invalid_api_key")
        digest = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found: ServeKeyConfig | None = None
        for expected, key in self._keys:
            if hmac.compare_digest(expected, digest):
                found = key
        if found is None or found.disabled:
            raise WireError("invalid API key", status=401, type="invalid_request_error", code="invalid_api_key")
        return found

    def model_ids(self, key: ServeKeyConfig | None) -> list[str]:
        ids = self.chat_ids + ([self.embedding_model] if self.embedding_model else [])
        return [m for m in dict.fromkeys(ids) if key is None or key.models is None or m in key.models]

    def check_model(self, key: ServeKeyConfig | None, model: str, *, embedding: bool = False) -> None:
        known = model == self.embedding_model if embedding else model in self.chat_ids
        if not known:
            raise WireError(f"the model {model!r} does not exist or is not served here", status=404,
                            code="model_not_found", param="model")
        if key is not None and key.models is not None and model not in key.models:
            raise WireError(f"this API key may not use the model {model!r}", status=403,
                            type="permission_error", code="model_not_allowed", param="model")

    # ------------------------------------------------------------------ models

    def chat_model(self, name: str) -> ChatModel:
        """The model for a served id, built once: an agent (its cascade, retry, timeout, cache, rate limit,
        budgets), a model service, or an allowed ``provider:model``."""
        model = self._models.get(name)
        if model is not None:
            return model
        with self._lock:
            if name not in self._models:
                self._models[name] = self._build(name)
            return self._models[name]

    def _build(self, name: str) -> ChatModel:
        from aixpy import llm
        from aixpy.llm.policies import InstrumentedModel

        spec: Any = next((a for a in self.config.agents if a.name == name), name)
        model = llm.new(spec, services=self.config)
        if not self.config.observability.instruments:  # emit events for /metrics (config-built agents already do)
            model = InstrumentedModel(model)
        return model

    @property
    def embedder(self) -> EmbeddingService:
        assert self._embedder is not None
        return self._embedder

    def check_stores(self) -> None:
        """Raise unless the configured vector store answers (``/readyz``); runs in a worker thread."""
        if self.config.vectorstore is None:
            return
        if self._store is None:
            from aixpy import vectorstores

            self._store = vectorstores.new(self.config.vectorstore)
        self._store.list_collections()

    async def aclose(self) -> None:
        for model in list(self._models.values()):
            await model.aclose()
        if self._embedder is not None:
            await self._embedder.aclose()
        close = getattr(self._store, "close", None)
        if close is not None:
            close()


def error_of(e: BaseException) -> WireError:
    """The OpenAI error response for an exception: client mistakes say what was wrong; upstream failures
    say only which kind of failure it was (no upstream URL, body or key); anything else is a 500."""
    if isinstance(e, WireError):
        return e
    if isinstance(e, BudgetExceededError):
        return WireError("the daily budget of this model is spent", status=429, type="insufficient_quota",
                         code="budget_exceeded")
    if isinstance(e, CapacityError):
        return WireError("a configured limit was reached", status=429, type="insufficient_quota")
    if isinstance(e, UserError):
        return WireError(str(e)[:500], status=400)
    if isinstance(e, RateLimitError):
        return WireError("the upstream provider is rate limiting; retry later", status=429,
                         type="rate_limit_error", code="rate_limit_exceeded")
    if isinstance(e, ProviderTimeoutError):
        return WireError("the upstream provider timed out", status=504, type="api_error", code="upstream_timeout")
    if isinstance(e, InvalidRequestError):
        return WireError(f"the upstream provider rejected the request: {e.message[:300]}", status=400)
    if isinstance(e, AuthenticationError):
        return WireError("the upstream provider refused the server's credentials", status=502, type="api_error",
                         code="upstream_error")
    if isinstance(e, ProviderError):
        status = f" (HTTP {e.status_code})" if e.status_code else ""
        return WireError(f"the upstream provider failed: {type(e).__name__}{status}", status=502, type="api_error",
                         code="upstream_error")
    log.error("internal error serving a request", exc_info=e)
    return WireError("internal server error", status=500, type="api_error", code="internal_error")
