"""``aixpy serve``: an OpenAI-compatible gateway over the models, agents and embeddings of a config (extra ``serve``).

::

    from aixpy.config import load_config
    from aixpy.serve import create_app, run

    app = create_app(load_config("aixpy.yaml"))     # any ASGI server
    run(load_config("aixpy.yaml"))                  # or uvicorn, as `aixpy serve` does

Endpoints: ``POST /v1/chat/completions`` (JSON or SSE), ``POST /v1/embeddings``, ``GET /v1/models``,
``GET /healthz``, ``GET /readyz``, ``GET /metrics``. The ``model`` of a request names a configured agent
(its cascade, retry, timeout, cache, rate limit and budgets apply), a model service, an
``serve.allow_models`` ``provider:model``, or the configured embedding model; nothing else.

Why Starlette on uvicorn: a gateway's own cost is routing, JSON and SSE framing per request, and
Starlette is the ASGI toolkit underneath FastAPI without its per-request pydantic validation and OpenAPI
machinery, which this server would not use: the request bodies are parsed by the sans-IO
:mod:`aixpy.serve._openai_wire` (so the wire is testable without a server and refuses unknown fields
itself), and the models stay aixpy's own dataclasses. Both packages are small (starlette depends on
anyio only), and uvicorn gives what the security brief asks of the transport: h11's header size limit
(``h11_max_incomplete_event_size``), bounded graceful shutdown on SIGTERM
(``timeout_graceful_shutdown``) and multi-process workers.

Security: client keys are stored as SHA-256 hashes and compared with ``hmac.compare_digest``; they are
required whenever the server listens on a non-loopback address (:func:`run` refuses otherwise); a key
may be limited to some models; a request can never set a provider's URL, key or headers (such fields are
refused, and client headers are never forwarded); bodies are limited (413); no CORS; errors use the
OpenAI shape and carry no upstream body, URL, key or stack trace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aixpy.errors import ConfigError, MissingDependencyError
from aixpy.serve._gateway import exposure_problem, hash_key, is_loopback

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from aixpy.config import AixpyConfig

__all__ = ["create_app", "hash_key", "is_loopback", "run"]


def create_app(config: AixpyConfig) -> Starlette:
    """The ASGI app serving ``config``."""
    try:
        from aixpy.serve._app import create_app as _create
    except ImportError as e:
        raise MissingDependencyError("starlette", "pip install 'aixpy[serve]'") from e
    return _create(config)


def run(config: AixpyConfig, *, config_path: str | None = None, host: str | None = None, port: int | None = None,
        workers: int | None = None) -> None:
    """Serve ``config`` with uvicorn until SIGINT/SIGTERM (in-flight requests get
    ``serve.graceful_shutdown`` seconds to finish). ``host``/``port``/``workers`` override ``serve:``.

    Raises :class:`~aixpy.errors.ConfigError` when ``host`` is not loopback and no client key is
    configured, and when ``workers`` > 1 without a ``config_path`` (each worker loads the file itself).
    """
    s = config.serve
    host = s.host if host is None else host
    port = s.port if port is None else port
    workers = s.workers if workers is None else workers
    problem = exposure_problem(host, s)
    if problem is not None:
        raise ConfigError(problem, path="serve.api_keys")
    try:
        import uvicorn
    except ImportError as e:
        raise MissingDependencyError("uvicorn", "pip install 'aixpy[serve]'") from e
    options = {"host": host, "port": port, "http": "h11", "h11_max_incomplete_event_size": s.max_header_bytes,
               "timeout_graceful_shutdown": int(s.graceful_shutdown + 0.999), "server_header": False,
               "proxy_headers": False, "access_log": False, "log_level": "info"}
    if workers > 1:
        if config_path is None:
            raise ConfigError("--workers > 1 needs a config file (each worker process loads it)", path="serve.workers")
        os.environ["AIXPY_CONFIG"] = str(config_path)
        with _sigterm_exits_0():
            uvicorn.run("aixpy.serve._app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
        return
    app = create_app(config)
    with _sigterm_exits_0():
        uvicorn.run(app, **options)  # type: ignore[arg-type]


def _exit_0(signum: int, frame: object) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def _sigterm_exits_0() -> Iterator[None]:
    """A SIGTERM ends the process with status 0 rather than by the signal. uvicorn handles SIGTERM itself while
    it serves (stop accepting, drain for ``timeout_graceful_shutdown``), then restores the handler it found and
    raises the signal again: with this handler that re-raise is a clean exit, so a drained shutdown reports
    success to the process manager, not death by SIGTERM (143)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_0)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
