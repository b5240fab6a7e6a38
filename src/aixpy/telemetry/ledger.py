"""The usage ledger: every call's tokens and cost by UTC day, provider, model and agent, and the day's
totals that budgets are checked against.

Two stores with one interface (:class:`UsageLedger`):

* :class:`SQLiteLedger` — a local file (default ``./.aixpy/usage.sqlite3``), in WAL mode; every change
  is one ``BEGIN IMMEDIATE`` transaction, so several processes on one machine can share the file and
  no increment is lost; it survives restarts.
* :class:`RedisLedger` — shared by every replica of a service (needs the ``redis`` extra): counters are
  ``HINCRBY``/``HINCRBYFLOAT`` in one ``MULTI`` transaction and a budget check-and-reserve is one Lua
  script, so a budget holds across a fleet.

Budgets reserve before a call and settle after it (:meth:`UsageLedger.reserve`, :meth:`UsageLedger.settle`):
a reservation is granted only if, for every scope it names, ``used + reserved + estimate <= limit``,
checked and taken atomically; settling releases the estimate and records the actual usage. A scope is
``"global"`` (every call of the day) or ``"agent:<name>"``. A reservation held by a process that died
before settling stays counted until the UTC day ends (the conservative side of a budget).

Only numbers and bounded names are stored: never prompts, completions or ids.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DEFAULT_LEDGER_PATH",
    "GLOBAL",
    "Limit",
    "RedisLedger",
    "Refusal",
    "Reservation",
    "SQLiteLedger",
    "Totals",
    "UsageLedger",
    "UsageRecord",
    "UsageRow",
    "agent_scope",
    "utc_day",
]

DEFAULT_LEDGER_PATH = Path(".aixpy") / "usage.sqlite3"
GLOBAL = "global"


def agent_scope(agent: str) -> str:
    """The budget scope of one agent."""
    return f"agent:{agent}"


def utc_day(ts: float | None = None) -> str:
    """The UTC day of ``ts`` (epoch seconds; now by default) as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).date().isoformat()


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one call used. ``cost_usd`` is ``None`` when its price is unknown (counted as an unpriced call)."""

    provider: str
    model: str
    agent: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class UsageRow:
    """The usage of one (day, provider, model, agent)."""

    day: str
    provider: str
    model: str
    agent: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "provider": self.provider, "model": self.model, "agent": self.agent,
                "calls": self.calls, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "tokens": self.tokens, "cost_usd": round(self.cost_usd, 9),
                "unpriced_calls": self.unpriced_calls}


@dataclass(frozen=True, slots=True)
class Totals:
    """A scope's day: tokens and cost recorded, and what live reservations hold."""

    tokens: int = 0
    cost_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Limit:
    """One budget to check: ``kind`` is ``"tokens"`` or ``"cost"``; ``name`` is how errors call it."""

    scope: str
    kind: str
    value: float
    name: str = ""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a granted :meth:`UsageLedger.reserve` holds, to hand back to :meth:`UsageLedger.settle`."""

    day: str
    scopes: tuple[str, ...]
    tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the first limit that the estimate would cross."""

    limit: Limit
    day: str
    used: float
    requested: float


class UsageLedger(Protocol):
    """What budgets, alerts and ``aixpy usage`` need from a ledger."""

    def reserve(self, scopes: Sequence[str], tokens: int, cost_usd: float, limits: Sequence[Limit],
                day: str | None = None) -> Reservation | Refusal: ...

    def settle(self, reservation: Reservation | None, record: UsageRecord | None, day: str | None = None
               ) -> Totals: ...

    def totals(self, scope: str = GLOBAL, day: str | None = None) -> Totals: ...

    def rows(self, since: str, until: str | None = None) -> list[UsageRow]: ...

    def first_alert(self, name: str, day: str) -> bool: ...

    def today(self) -> str: ...

    def close(self) -> None: ...


def record_scopes(record: UsageRecord) -> tuple[str, ...]:
    """The scopes a call counts in: global, and its agent's when it has one."""
    return (GLOBAL, agent_scope(record.agent)) if record.agent else (GLOBAL,)


def _days(since: str, until: str) -> list[str]:
    d, end = date.fromisoformat(since), date.fromisoformat(until)
    out: list[str] = []
    while d <= end and len(out) < 3660:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


# --------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, agent TEXT NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0, unpriced_calls INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, provider, model, agent));
CREATE TABLE IF NOT EXISTS totals (
    day TEXT NOT NULL, scope TEXT NOT NULL, tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,
    reserved_tokens INTEGER NOT NULL DEFAULT 0, reserved_cost REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (day, scope));
CREATE TABLE IF NOT EXISTS alerts (day TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (day, name));
"""

_ADD_TOTALS = """INSERT INTO totals (day, scope, tokens, cost_usd, reserved_tokens, reserved_cost)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, scope) DO UPDATE SET tokens = tokens + excluded.tokens,
cost_usd = cost_usd + excluded.cost_usd, reserved_tokens = MAX(0, reserved_tokens + excluded.reserved_tokens),
reserved_cost = MAX(0.0, reserved_cost + excluded.reserved_cost)"""

_ADD_USAGE = """INSERT INTO usage (day, provider, model, agent, calls, input_tokens, output_tokens, cached_tokens,
cost_usd, unpriced_calls) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT (day, provider, model, agent) DO UPDATE
SET calls = calls + 1, input_tokens = input_tokens + excluded.input_tokens,
output_tokens = output_tokens + excluded.output_tokens, cached_tokens = cached_tokens + excluded.cached_tokens,
cost_usd = cost_usd + excluded.cost_usd, unpriced_calls = unpriced_calls + excluded.unpriced_calls"""


class SQLiteLedger:
    """A ledger in a local SQLite file, safe for several threads and processes (see the module docstring).

    ``now`` gives the time (epoch seconds) that picks the UTC day; tests pass a manual clock.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_LEDGER_PATH, *, now: Callable[[], float] = time.time,
                 busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.now = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._tx() as cur:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r})"

    def _tx(self) -> _Tx:
        return _Tx(self._conn, self._lock)

    def _day(self, day: str | None) -> str:
        return day or utc_day(self.now())

    def today(self) -> str:
        """The UTC day of the ledger's clock."""
        return utc_day(self.now())

    @staticmethod
    def _read(cur: sqlite3.Cursor, day: str, scope: str) -> Totals:
        row = cur.execute("SELECT tokens, cost_usd, reserved_tokens, reserved_cost FROM totals WHERE day = ? AND "
                          "scope = ?", (day, scope)).fetchone()
        return Totals(*row) if row else Totals()

    def reserve(self, scopes: Sequence[str], tokens: int, cost_usd: float, limits: Sequence[Limit],
                day: str | None = None) -> Reservation | Refusal:
        day = self._day(day)
        with self._tx() as cur:
            current = {s: self._read(cur, day, s) for s in {*scopes, *(lim.scope for lim in limits)}}
            refusal = check_limits(current, limits, tokens, cost_usd, day)
            if refusal is not None:
                return refusal
            for s in scopes:
                cur.execute(_ADD_TOTALS, (day, s, 0, 0.0, tokens, cost_usd))
        return Reservation(day, tuple(scopes), tokens, cost_usd)

    def settle(self, reservation: Reservation | None, record: UsageRecord | None, day: str | None = None) -> Totals:
        day = reservation.day if reservation is not None else self._day(day)
        with self._tx() as cur:
            if reservation is not None:
                for s in reservation.scopes:
                    cur.execute(_ADD_TOTALS, (day, s, 0, 0.0, -reservation.tokens, -reservation.cost_usd))
            if record is not None:
                cost = record.cost_usd or 0.0
                cur.execute(_ADD_USAGE, (day, record.provider, record.model, record.agent, record.input_tokens,
                                         record.output_tokens, record.cached_tokens, cost,
                                         1 if record.cost_usd is None else 0))
                for s in record_scopes(record):
                    cur.execute(_ADD_TOTALS, (day, s, record.tokens, cost, 0, 0.0))
            return self._read(cur, day, GLOBAL)

    def totals(self, scope: str = GLOBAL, day: str | None = None) -> Totals:
        with self._tx() as cur:
            return self._read(cur, self._day(day), scope)

    def rows(self, since: str, until: str | None = None) -> list[UsageRow]:
        until = until or self._day(None)
        with self._tx() as cur:
            got = cur.execute("SELECT day, provider, model, agent, calls, input_tokens, output_tokens, cached_tokens, "
                              "cost_usd, unpriced_calls FROM usage WHERE day >= ? AND day <= ? "
                              "ORDER BY day, provider, model, agent", (since, until)).fetchall()
        return [UsageRow(*r) for r in got]

    def first_alert(self, name: str, day: str) -> bool:
        """Whether this is the first time ``name`` fires on ``day`` (in every process sharing the file)."""
        with self._tx() as cur:
            return cur.execute("INSERT OR IGNORE INTO alerts (day, name) VALUES (?, ?)", (day, name)).rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Tx:
    """One ``BEGIN IMMEDIATE`` transaction (the write lock taken up front: read-check-write is atomic)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self._conn, self._lock = conn, lock

    def __enter__(self) -> sqlite3.Cursor:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._conn.cursor()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        try:
            self._conn.execute("COMMIT" if e is None else "ROLLBACK")
        finally:
            self._lock.release()


def check_limits(current: dict[str, Totals], limits: Sequence[Limit], tokens: int, cost_usd: float,
                 day: str) -> Refusal | None:
    """The first of ``limits`` that ``tokens``/``cost_usd`` more would cross, given each scope's totals."""
    for lim in limits:
        t = current.get(lim.scope, Totals())
        if lim.kind == "tokens":
            used, asked = float(t.tokens + t.reserved_tokens), float(tokens)
        else:
            used, asked = t.cost_usd + t.reserved_cost, cost_usd
        if used + asked > lim.value:
            return Refusal(lim, day, used, asked)
    return None


# --------------------------------------------------------------------------- Redis

# KEYS: the totals hashes of every scope checked or reserved; ARGV: day-ttl, tokens, cost, n_reserve,
# then per limit (key index, kind, value). Reserves on the first n_reserve keys. Returns {} or, refused,
# {the 0-based index of the limit crossed, what its scope had used or reserved}.
_RESERVE_LUA = """
local ttl, tokens, cost, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5
while i <= #ARGV do
  local key = KEYS[tonumber(ARGV[i])]
  local kind, value = ARGV[i + 1], tonumber(ARGV[i + 2])
  local used
  if kind == 'tokens' then
    used = tonumber(redis.call('HGET', key, 'tokens') or '0') + tonumber(redis.call('HGET', key, 'rtokens') or '0')
    if used + tokens > value then return {tostring((i - 5) / 3), tostring(used)} end
  else
    used = tonumber(redis.call('HGET', key, 'cost') or '0') + tonumber(redis.call('HGET', key, 'rcost') or '0')
    if used + cost > value then return {tostring((i - 5) / 3), tostring(used)} end
  end
  i = i + 3
end
for k = 1, n do
  redis.call('HINCRBY', KEYS[k], 'rtokens', tokens)
  redis.call('HINCRBYFLOAT', KEYS[k], 'rcost', cost)
  redis.call('EXPIRE', KEYS[k], ttl)
end
return {}
"""

_SEP = "\x1f"
_FIELDS = ("calls", "input_tokens", "output_tokens", "cached_tokens", "cost_usd", "unpriced_calls")


@dataclass
class RedisLedger:
    """A ledger in Redis, shared by every process that uses the same ``url`` and ``prefix``.

    Day keys expire ``retention_days`` after their last write. ``client`` may be given instead of
    ``url`` (any ``redis.Redis``); ``now`` picks the UTC day.
    """

    url: str | None = None
    prefix: str = "aixpy:usage:"
    retention_days: int = 400
    client: Any = None
    now: Callable[[], float] = time.time
    _script: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.client is None:
            try:
                import redis
            except ImportError as e:
                from aixpy.errors import MissingDependencyError

                raise MissingDependencyError("redis (for the Redis usage ledger)", "pip install 'aixpy[redis]'") from e
            if not self.url:
                from aixpy.errors import ConfigError

                raise ConfigError("the Redis usage ledger needs a url (redis://host:6379/0)", path="ledger.url")
            self.client = redis.Redis.from_url(self.url)
        self._script = self.client.register_script(_RESERVE_LUA)

    def __repr__(self) -> str:
        return f"RedisLedger(prefix={self.prefix!r})"

    @property
    def _ttl(self) -> int:
        return self.retention_days * 86400

    def _day(self, day: str | None) -> str:
        return day or utc_day(self.now())

    def today(self) -> str:
        """The UTC day of the ledger's clock."""
        return utc_day(self.now())

    def _totals_key(self, day: str, scope: str) -> str:
        return f"{self.prefix}totals:{day}:{scope}"

    def reserve(self, scopes: Sequence[str], tokens: int, cost_usd: float, limits: Sequence[Limit],
                day: str | None = None) -> Reservation | Refusal:
        day = self._day(day)
        keys = [self._totals_key(day, s) for s in scopes]
        args: list[Any] = [self._ttl, tokens, repr(float(cost_usd)), len(keys)]
        for lim in limits:
            key = self._totals_key(day, lim.scope)
            if key not in keys:
                keys.append(key)
            args += [keys.index(key) + 1, lim.kind, repr(float(lim.value))]
        got = self._script(keys=keys, args=args)
        if got:
            lim = limits[int(float(_text(got[0])))]
            return Refusal(lim, day, float(_text(got[1])), float(tokens if lim.kind == "tokens" else cost_usd))
        return Reservation(day, tuple(scopes), tokens, cost_usd)

    def settle(self, reservation: Reservation | None, record: UsageRecord | None, day: str | None = None) -> Totals:
        day = reservation.day if reservation is not None else self._day(day)
        pipe = self.client.pipeline(transaction=True)
        if reservation is not None:
            for s in reservation.scopes:
                key = self._totals_key(day, s)
                pipe.hincrby(key, "rtokens", -reservation.tokens)
                pipe.hincrbyfloat(key, "rcost", -reservation.cost_usd)
        if record is not None:
            cost = record.cost_usd or 0.0
            usage_key = f"{self.prefix}day:{day}"
            name = _SEP.join((record.provider, record.model, record.agent))
            for fname, n in zip(_FIELDS, (1, record.input_tokens, record.output_tokens, record.cached_tokens, cost,
                                          1 if record.cost_usd is None else 0), strict=True):
                if fname == "cost_usd":
                    pipe.hincrbyfloat(usage_key, f"{name}{_SEP}{fname}", n)
                elif n:
                    pipe.hincrby(usage_key, f"{name}{_SEP}{fname}", int(n))
            pipe.expire(usage_key, self._ttl)
            for s in record_scopes(record):
                key = self._totals_key(day, s)
                pipe.hincrby(key, "tokens", record.tokens)
                pipe.hincrbyfloat(key, "cost", cost)
                pipe.expire(key, self._ttl)
        pipe.hgetall(self._totals_key(day, GLOBAL))
        return _totals(pipe.execute()[-1])

    def totals(self, scope: str = GLOBAL, day: str | None = None) -> Totals:
        return _totals(self.client.hgetall(self._totals_key(self._day(day), scope)))

    def rows(self, since: str, until: str | None = None) -> list[UsageRow]:
        out: list[UsageRow] = []
        for day in _days(since, until or self._day(None)):
            grouped: dict[tuple[str, str, str], dict[str, float]] = {}
            for k, v in self.client.hgetall(f"{self.prefix}day:{day}").items():
                provider, model, agent, fname = _text(k).split(_SEP)
                grouped.setdefault((provider, model, agent), {})[fname] = float(_text(v))
            for (provider, model, agent), f in sorted(grouped.items()):
                calls, inp, outp, cached = (int(f.get(n, 0)) for n in _FIELDS[:4])
                out.append(UsageRow(day, provider, model, agent, calls, inp, outp, cached, f.get("cost_usd", 0.0),
                                    int(f.get("unpriced_calls", 0))))
        return out

    def first_alert(self, name: str, day: str) -> bool:
        return bool(self.client.set(f"{self.prefix}alert:{day}:{name}", 1, nx=True, ex=3 * 86400))

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _totals(h: dict[Any, Any]) -> Totals:
    d = {_text(k): _text(v) for k, v in h.items()}
    return Totals(int(float(d.get("tokens", 0))), float(d.get("cost", 0.0)), max(0, int(float(d.get("rtokens", 0)))),
                  max(0.0, float(d.get("rcost", 0.0))))
