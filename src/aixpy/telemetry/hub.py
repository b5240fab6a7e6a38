"""Where events go: global subscribers plus, per wrapper, one ``on_event`` handler.

* :func:`subscribe` adds a handler for every event of the process and returns the function that
  removes it. The subscriber list is copy-on-write (a tuple swapped under a lock), so emitting
  reads it without a lock from any thread or event loop.
* :func:`listening` is the one check an instrumented wrapper makes before doing anything: when it
  is false the wrapper calls straight through — no clock read, no event built.
* :func:`emit` calls the wrapper's own handler, then every subscriber, in the emitting thread (or
  task). A handler that raises never breaks the call: its first failure is logged with the
  traceback at WARNING, later ones at DEBUG. Handlers must be quick and never block (an exporter
  queues the event and ships it elsewhere).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from aixpy.telemetry.events import Event

__all__ = ["Handler", "Timer", "capture_content", "capturing_content", "emit", "error_name", "listening", "subscribe",
           "subscribers"]

logger = logging.getLogger("aixpy.telemetry")

Handler = Callable[[Event], None]

_handlers: tuple[Handler, ...] = ()
_kinds: tuple[frozenset[str] | None, ...] = ()  # per handler: the kinds it wants (None: every kind)
_wanted: frozenset[str] | None = frozenset()     # the union (None: some handler wants every kind)
_lock = threading.Lock()
_failed: set[int] = set()  # id() of handlers whose failure was already logged with its traceback
_content_wanted = 0  # how many subscribers asked for content (capture_content)


def _set(handlers: tuple[Handler, ...], kinds: tuple[frozenset[str] | None, ...]) -> None:
    global _handlers, _kinds, _wanted
    _wanted = None if any(k is None for k in kinds) else frozenset().union(*(k for k in kinds if k is not None))
    _handlers, _kinds = handlers, kinds


def subscribe(handler: Handler, *, kinds: Iterable[str] | None = None) -> Callable[[], None]:
    """Send every event of the process to ``handler`` (only those of ``kinds``, e.g. ``{"llm.call"}``,
    when given); call the returned function to stop.

    ``kinds`` also tells the wrappers what to skip: a subscriber that does not want ``http.request``
    events does not switch the HTTP bridge on.

    >>> stop = subscribe(print)        # doctest: +SKIP
    >>> stop()                         # doctest: +SKIP
    """
    if not callable(handler):
        raise TypeError(f"a telemetry handler must be callable, not {type(handler).__name__}")
    wanted = None if kinds is None else frozenset(kinds)
    with _lock:
        _set((*_handlers, handler), (*_kinds, wanted))

    def unsubscribe() -> None:
        with _lock:
            if handler in _handlers:
                i = _handlers.index(handler)
                _set(_handlers[:i] + _handlers[i + 1:], _kinds[:i] + _kinds[i + 1:])
                _failed.discard(id(handler))

    return unsubscribe


def capture_content() -> Callable[[], None]:
    """Ask the instrumented wrappers to attach content (prompts, completions) to their events; call the
    returned function to stop asking. Off unless someone asks (an exporter's explicit ``capture_content``
    switch): events carry no content by default."""
    global _content_wanted
    with _lock:
        _content_wanted += 1
    done = False

    def stop() -> None:
        global _content_wanted
        nonlocal done
        with _lock:
            if not done:
                done = True
                _content_wanted -= 1

    return stop


def capturing_content() -> bool:
    """Whether some subscriber asked for content (see :func:`capture_content`)."""
    return _content_wanted > 0


def subscribers() -> tuple[Handler, ...]:
    """The global handlers, in the order they were added."""
    return _handlers


def listening(local: Handler | None = None, kind: str | None = None) -> bool:
    """Whether an event (of ``kind``, when given) would reach anyone: a wrapper's own handler or a global
    subscriber (that wants that kind)."""
    if local is not None:
        return True
    wanted = _wanted
    return bool(_handlers) if kind is None or wanted is None else kind in wanted


def emit(event: Event, local: Handler | tuple[Handler, ...] | None = None) -> None:
    """Deliver ``event`` to ``local`` (a wrapper's ``on_event``, or several) and then to every subscriber."""
    if isinstance(local, tuple):
        for handler in local:
            _deliver(handler, event)
    elif local is not None:
        _deliver(local, event)
    handlers, kinds = _handlers, _kinds
    if _wanted is None and all(k is None for k in kinds):
        for handler in handlers:
            _deliver(handler, event)
        return
    kind = event.kind
    for handler, wanted in zip(handlers, kinds, strict=False):
        if wanted is None or kind in wanted:
            _deliver(handler, event)


def _deliver(handler: Handler, event: Event) -> None:
    try:
        handler(event)
    except Exception:
        key = id(handler)
        with _lock:
            first = key not in _failed
            _failed.add(key)
        logger.log(logging.WARNING if first else logging.DEBUG, "telemetry handler %r failed on a %s event",
                   handler, event.kind, exc_info=first)


def error_name(err: BaseException) -> str:
    """What an event's ``error`` says: the exception's class name (never its message, which may hold content)."""
    return type(err).__name__


class Timer:
    """When an operation started: wall-clock ``timestamp`` for the event, a monotonic origin for durations."""

    __slots__ = ("started", "timestamp")

    def __init__(self) -> None:
        self.timestamp = time.time()
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.perf_counter() - self.started
