"""HTTP requests as :class:`~aixpy.telemetry.events.HttpEvent` s, without importing ``aixpy.http``.

``aixpy.http`` and ``aixpy.telemetry`` sit on the same floor and never import each other. The HTTP
layer keeps its own public hook (``HttpClient(on_request=[...])`` receiving a
:class:`~aixpy.http.RequestEvent`); an :class:`HttpBridge` is such a hook — a callable that takes
anything shaped like a ``RequestEvent`` — which turns it into an ``HttpEvent`` and emits it. The
instrumented wrappers (one floor up, in ``llm``/``embeddings``) call :func:`attach_http` on what they
wrap, which puts one bridge on each HTTP client it finds.

A bridge says whether anyone listens (``listening``); the HTTP client skips a hook that does not, so
with no subscriber and no wrapper handler no ``RequestEvent`` is built for it.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from aixpy.telemetry.events import HttpEvent
from aixpy.telemetry.hub import Handler, emit, listening

__all__ = ["HttpBridge", "RequestLike", "attach_http", "http_event"]

_MAX_DEPTH = 6


class RequestLike(Protocol):
    """The fields of :class:`aixpy.http.RequestEvent` a bridge reads."""

    @property
    def provider(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def method(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def seconds(self) -> float: ...
    @property
    def bytes(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def stream(self) -> bool: ...


def http_event(req: RequestLike, timestamp: float) -> HttpEvent:
    """The :class:`HttpEvent` of a request event that ended at ``timestamp`` (epoch seconds)."""
    return HttpEvent(timestamp=timestamp - req.seconds, duration=req.seconds, error=req.error,
                     provider=req.provider, model=req.model, method=req.method, host=req.host,
                     path=req.path.split("?", 1)[0], status=req.status, bytes=req.bytes, stream=req.stream)


class HttpBridge:
    """An ``on_request`` hook that emits each request as an :class:`HttpEvent` to the global subscribers
    and to the ``on_event`` handlers of the wrappers that attached it (one bridge per HTTP client)."""

    __slots__ = ("_local", "_lock")

    def __init__(self) -> None:
        self._local: tuple[Handler, ...] = ()
        self._lock = threading.Lock()

    def add(self, handler: Handler) -> None:
        """Also send this client's events to ``handler`` (added once)."""
        with self._lock:
            if handler not in self._local:
                self._local = (*self._local, handler)

    @property
    def listening(self) -> bool:
        return bool(self._local) or listening(kind=HttpEvent.kind)

    def __call__(self, req: RequestLike) -> None:
        emit(http_event(req, time.time()), self._local)

    def __repr__(self) -> str:
        return f"HttpBridge(handlers={len(self._local)})"


def attach_http(root: object, on_event: Handler | None = None) -> int:
    """Put an :class:`HttpBridge` on every HTTP client reachable from ``root`` (a provider or a stack
    of wrappers); ``on_event`` also receives their events. Returns how many clients were found.

    An HTTP client is recognised by its ``on_request`` list of hooks; the search follows the
    attributes, lists, tuples and dict values of aixpy objects only, a few levels deep, so a client
    a provider creates later (lazily) is not reached.
    """
    found = 0
    seen: set[int] = set()
    todo: list[tuple[object, int]] = [(root, 0)]
    while todo:
        obj, depth = todo.pop()
        if id(obj) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(obj))
        hooks = getattr(obj, "on_request", None) if _is_aixpy(obj) else None
        if isinstance(hooks, list):
            bridge = next((h for h in hooks if isinstance(h, HttpBridge)), None)
            if bridge is None:
                bridge = HttpBridge()
                hooks.append(bridge)
            if on_event is not None:
                bridge.add(on_event)
            found += 1
            continue
        todo.extend((child, depth + 1) for child in _children(obj))
    return found


def _is_aixpy(obj: object) -> bool:
    return type(obj).__module__.startswith("aixpy.")


def _children(obj: object) -> list[object]:
    """What may lead to an HTTP client: aixpy objects and containers (a vocabulary or a cache of vectors
    is skipped item by item, never descended into)."""
    values: list[Any]
    if isinstance(obj, list | tuple):
        values = list(obj)
    elif isinstance(obj, dict):
        values = list(obj.values())
    elif _is_aixpy(obj):
        values = list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if isinstance(name, str) and hasattr(obj, name):
                    values.append(getattr(obj, name))
    else:
        return []
    return [v for v in values if isinstance(v, list | tuple | dict) or _is_aixpy(v)]
