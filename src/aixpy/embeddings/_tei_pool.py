"""Client-side load balancing over several TEI servers (the guide's ``TEIPool`` + nginx ``least_conn``).

:class:`EndpointPool` is only bookkeeping (no I/O, thread-safe, usable from threads and asyncio alike):

* **selection**: ``round_robin`` (the guide's ``TEIPool``) or ``least_outstanding`` (nginx's
  ``least_conn``: the endpoint with the fewest requests in flight, ties broken round-robin);
* **ejection**: after ``eject_after`` consecutive failures (connection errors, timeouts, 5xx, bad
  bodies; a 429 is "busy", not "broken", and does not count) an endpoint is out for ``cooldown``
  seconds (nginx ``max_fails=3 fail_timeout=30s``); after the cool-down it must pass a ``/health``
  probe before it gets traffic again (:meth:`EndpointPool.pick` says when to probe);
* **failover** is the caller's loop: a failed sub-batch is re-sent to an endpoint it has not tried yet
  (``exclude``), so nothing is lost and order is kept by the caller.

When nothing is left, :meth:`EndpointPool.unavailable` builds one error naming every endpoint (URLs
without credentials or query strings) and why it is out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from aixpy.errors import InvalidInputError, ProviderConnectionError, ProviderError
from aixpy.http import safe_url

__all__ = ["Endpoint", "EndpointPool", "Pick", "Selection"]

log = logging.getLogger("aixpy.embeddings")

Selection = Literal["round_robin", "least_outstanding"]
C = TypeVar("C")


@dataclass(eq=False)
class Endpoint(Generic[C]):
    """One server of the pool and its live state. ``client`` is whatever the caller talks to it with."""

    index: int
    url: str  # display form: no credentials, no query string
    client: C
    outstanding: int = 0
    failures: int = 0  # consecutive
    ejected_until: float | None = None
    last_error: str | None = None
    requests: int = 0
    errors: int = 0

    @property
    def ejected(self) -> bool:
        return self.ejected_until is not None


@dataclass(frozen=True, slots=True)
class Pick(Generic[C]):
    """The endpoint to use; ``probe`` means: check ``/health`` first, then :meth:`EndpointPool.probed`."""

    endpoint: Endpoint[C]
    probe: bool = False


@dataclass
class EndpointPool(Generic[C]):
    """Selection, in-flight counts and ejection for a fixed list of endpoints (see the module docstring)."""

    endpoints: Sequence[Endpoint[C]]
    selection: Selection = "round_robin"
    eject_after: int = 3
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    provider: str | None = None
    _next: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise InvalidInputError("an endpoint pool needs at least one endpoint")
        if self.selection not in ("round_robin", "least_outstanding"):
            raise InvalidInputError(f"selection must be round_robin or least_outstanding, not {self.selection!r}")
        if self.eject_after < 1 or self.cooldown < 0:
            raise InvalidInputError("eject_after must be >= 1 and cooldown >= 0")

    @classmethod
    def of(cls, urls: Sequence[str], clients: Sequence[C], **kw: object) -> EndpointPool[C]:
        eps = [Endpoint(i, safe_url(u), c) for i, (u, c) in enumerate(zip(urls, clients, strict=True))]
        return cls(eps, **kw)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ selection

    def pick(self, exclude: Collection[int] = ()) -> Pick[C] | None:
        """The next endpoint to send to, skipping ``exclude`` (indexes already tried for this sub-batch).

        An ejected endpoint whose cool-down is over comes first, with ``probe=True`` (it gets traffic only
        after a good ``/health``; if the probe fails, pick again); else a healthy one by ``selection``.
        ``None`` when nothing is usable. The pick counts as in flight until :meth:`done` (or
        :meth:`probed` with ``ok=False``).
        """
        with self._lock:
            now = self.clock()
            n = len(self.endpoints)
            order = [self.endpoints[(self._next + k) % n] for k in range(n)]
            due = [e for e in order if e.ejected and e.index not in exclude
                   and e.ejected_until is not None and e.ejected_until <= now]
            if due:  # cool-down over: this sub-batch checks it first (and goes elsewhere if it is still down)
                chosen = min(due, key=lambda e: e.ejected_until or 0.0)
                chosen.ejected_until = now + self.cooldown  # one prober at a time; probed() settles it
                chosen.outstanding += 1
                chosen.requests += 1
                return Pick(chosen, probe=True)
            live = [e for e in order if not e.ejected and e.index not in exclude]
            if not live:
                return None
            chosen = min(live, key=lambda e: e.outstanding) if self.selection == "least_outstanding" else live[0]
            self._next = (chosen.index + 1) % n
            chosen.outstanding += 1
            chosen.requests += 1
            return Pick(chosen)

    def probed(self, endpoint: Endpoint[C], ok: bool, error: str | None = None) -> None:
        """Result of the ``/health`` probe of a :class:`Pick` with ``probe=True``."""
        with self._lock:
            if ok:
                endpoint.ejected_until = None
                endpoint.failures = 0
                log.info("TEI endpoint %s passed its health check; back in the pool", endpoint.url)
            else:
                endpoint.outstanding -= 1
                endpoint.ejected_until = self.clock() + self.cooldown
                endpoint.last_error = error or endpoint.last_error
                log.info("TEI endpoint %s still unhealthy; next check in %.0f s", endpoint.url, self.cooldown)

    def done(self, endpoint: Endpoint[C], error: BaseException | None = None, *, counts: bool = True) -> None:
        """A request finished. ``error`` with ``counts`` adds a consecutive failure (ejecting at the limit)."""
        with self._lock:
            endpoint.outstanding -= 1
            if error is None:
                endpoint.failures = 0
                return
            endpoint.errors += 1
            endpoint.last_error = f"{type(error).__name__}: {error}"
            if not counts:
                return
            endpoint.failures += 1
            if endpoint.failures >= self.eject_after and not endpoint.ejected:
                endpoint.ejected_until = self.clock() + self.cooldown
                log.warning("TEI endpoint %s ejected after %d consecutive failures (last: %s); retry in %.0f s",
                            endpoint.url, endpoint.failures, endpoint.last_error, self.cooldown)

    # ------------------------------------------------------------------ reporting

    def status(self) -> list[dict[str, object]]:
        """One dict per endpoint: url, healthy, outstanding, consecutive failures, requests, errors."""
        with self._lock:
            return [{"url": e.url, "healthy": not e.ejected, "outstanding": e.outstanding, "failures": e.failures,
                     "requests": e.requests, "errors": e.errors, "last_error": e.last_error} for e in self.endpoints]

    def unavailable(self, errors: Sequence[tuple[Endpoint[C], BaseException]] = (), *,
                    model: str | None = None) -> ProviderError:
        """The error for "no endpoint could take this sub-batch", naming each endpoint and why."""
        tried = {e.index: err for e, err in errors}
        now = self.clock()
        parts = []
        with self._lock:
            for e in self.endpoints:
                if e.index in tried:
                    why = f"{type(tried[e.index]).__name__}: {tried[e.index]}"
                elif e.ejected and e.ejected_until is not None:
                    why = (f"ejected after {e.failures} consecutive failures, next check in "
                           f"{max(0.0, e.ejected_until - now):.0f} s (last: {e.last_error})")
                else:
                    why = "not tried"
                parts.append(f"{e.url} ({why})")
        last = errors[-1][1] if errors else None
        if len(self.endpoints) == 1 and isinstance(last, ProviderError):
            return last
        return ProviderConnectionError(
            f"all {len(self.endpoints)} TEI endpoints failed or are ejected: " + "; ".join(parts),
            provider=self.provider, model=model, retryable=True)
