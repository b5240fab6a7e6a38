"""``RedisRateLimiter``: token buckets kept in Redis, so every process of a fleet draws from one quota.

Each limit is a hash ``{tokens, ts}`` under ``prefix + "{name}:requests"`` / ``"{name}:tokens"`` (the
hash tag keeps both in one cluster slot). One Lua script refills and reserves them atomically, on the
Redis server's own clock (``TIME``): processes on different machines never compare their clocks. The
semantics are those of :class:`~aixpy.policy.ratelimit.RateLimiter`: a caller reserves now (the balance
may go negative) and sleeps on its own clock for the wait the script returns; a wait beyond the call's
deadline reserves nothing and raises :class:`~aixpy.policy.deadline.DeadlineExceededError` at once.

When Redis is down the call goes on unlimited (a warning is logged; a provider's 429 still goes
through the retry loop), or raises :class:`~aixpy.errors.StoreError` with ``strict=True``.
"""

from __future__ import annotations

import logging
from typing import Any

from aixpy.errors import InvalidInputError
from aixpy.policy._redis import RedisClients, safe_url
from aixpy.policy.deadline import SYSTEM_CLOCK, Clock, Deadline, DeadlineExceededError
from aixpy.policy.ratelimit import too_late

__all__ = ["RedisRateLimiter"]

logger = logging.getLogger("aixpy.policy")

# KEYS: the buckets. ARGV[1]: "reserve" (check the wait against ARGV[2], -1: no limit) or "adjust"
# (apply as is). Then per bucket: rate (per second), capacity, amount (negative gives back).
# Returns {granted (1/0), wait in seconds as a string}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local reserve = ARGV[1] == 'reserve'
local max_wait = tonumber(ARGV[2])
local state = {}
local wait = 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[3 * i])
  local cap = tonumber(ARGV[3 * i + 1])
  local amount = tonumber(ARGV[3 * i + 2])
  local st = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(st[1]) or cap
  local ts = tonumber(st[2]) or now
  if now > ts then
    tokens = math.min(cap, tokens + (now - ts) * rate)
    ts = now
  end
  state[i] = {tokens, ts, rate, cap, amount}
  if reserve then
    local w = (amount - tokens) / rate
    if w > wait then wait = w end
  end
end
if reserve and max_wait >= 0 and wait > max_wait then
  return {0, tostring(wait)}
end
for i = 1, #KEYS do
  local s = state[i]
  local tokens = math.min(s[4], s[1] - s[5])
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens), 'ts', tostring(s[2]))
  redis.call('PEXPIRE', KEYS[i], math.ceil(s[4] / s[3] * 1000) + 60000)
end
return {1, tostring(wait)}
"""


class RedisRateLimiter:
    """Requests and tokens per minute for ``name`` (e.g. ``"openai:gpt-4o"``), shared through Redis.

    ``clock`` is where this process sleeps and reads its deadlines; the buckets themselves run on
    the Redis server's clock.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, name: str,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 prefix: str = "aixpy:ratelimit:", clock: Clock = SYSTEM_CLOCK, strict: bool = False,
                 socket_timeout: float = 2.0) -> None:
        for label, value in (("requests_per_minute", requests_per_minute), ("tokens_per_minute", tokens_per_minute)):
            if value is not None and value <= 0:
                raise InvalidInputError(f"{label} must be positive")
        self.name = name
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.prefix = prefix
        self.clock = clock
        self._redis = RedisClients(url, what="redis rate limiter", logger=logger, strict=strict,
                                   socket_timeout=socket_timeout)
        self._keys: list[str] = []
        self._limits: list[float] = []
        for kind, per_minute in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            if per_minute is not None:
                self._keys.append(f"{prefix}{{{name}}}:{kind}")
                self._limits.append(per_minute)
        self._script: Any = None
        self._ascript: Any = None
        self.waited = 0.0

    @property
    def counts_tokens(self) -> bool:
        return self.tokens_per_minute is not None

    # ------------------------------------------------------------------ no I/O

    def _args(self, mode: str, max_wait: float | None, requests: int, tokens: int) -> list[Any]:
        amounts = ([requests] if self.requests_per_minute is not None else []) + \
                  ([tokens] if self.tokens_per_minute is not None else [])
        args: list[Any] = [mode, -1 if max_wait is None else max(0.0, max_wait)]
        for per_minute, amount in zip(self._limits, amounts, strict=True):
            args += [per_minute / 60.0, per_minute, amount]
        return args

    def _reserve_args(self, tokens: int, deadline: Deadline, requests: int) -> list[Any]:
        left = deadline.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceededError("rate limit: the call's deadline passed before the request could be sent")
        return self._args("reserve", left, requests, tokens)

    def _granted(self, reply: Any, deadline: Deadline) -> float:
        granted, wait = int(reply[0]), float(reply[1])
        if not granted:
            late = too_late(wait, deadline)
            raise late or DeadlineExceededError(f"rate limit: the request would wait {wait:.3f} s, past the deadline")
        wait = max(0.0, wait)
        self.waited += wait
        return wait

    # ------------------------------------------------------------------ sync

    def _run(self, args: list[Any]) -> Any:
        if self._script is None:
            self._script = self._redis.sync().register_script(_SCRIPT)
        return self._script(keys=self._keys, args=args)

    def reserve(self, tokens: int, deadline: Deadline, *, requests: int = 1) -> float:
        """Take ``requests`` and ``tokens``; the seconds to sleep before sending (see the module docstring)."""
        if not self._keys:
            return 0.0
        args = self._reserve_args(tokens, deadline, requests)
        try:
            reply = self._run(args)
        except self._redis.caught as e:
            self._redis.failed("reserve", e, "sending unlimited")
            return 0.0
        return self._granted(reply, deadline)

    def _apply(self, requests: int, tokens: int) -> None:
        if not self._keys:
            return
        try:
            self._run(self._args("adjust", None, requests, tokens))
        except self._redis.caught as e:
            self._redis.failed("adjust", e, "count dropped")

    def refund(self, tokens: int, *, requests: int = 1) -> None:
        """Give back a reservation whose request was never sent."""
        self._apply(-requests, -tokens)

    def adjust(self, tokens: int) -> None:
        """Take ``tokens`` more (or give back when negative) once the real count is known."""
        self._apply(0, tokens)

    # ------------------------------------------------------------------ async

    async def _arun(self, args: list[Any]) -> Any:
        client = self._redis.async_()
        if self._ascript is None or self._ascript.registered_client is not client:
            self._ascript = client.register_script(_SCRIPT)
        return await self._ascript(keys=self._keys, args=args)

    async def areserve(self, tokens: int, deadline: Deadline, *, requests: int = 1) -> float:
        if not self._keys:
            return 0.0
        args = self._reserve_args(tokens, deadline, requests)
        try:
            reply = await self._arun(args)
        except self._redis.caught as e:
            self._redis.failed("reserve", e, "sending unlimited")
            return 0.0
        return self._granted(reply, deadline)

    async def _aapply(self, requests: int, tokens: int) -> None:
        if not self._keys:
            return
        try:
            await self._arun(self._args("adjust", None, requests, tokens))
        except self._redis.caught as e:
            self._redis.failed("adjust", e, "count dropped")

    async def arefund(self, tokens: int, *, requests: int = 1) -> None:
        await self._aapply(-requests, -tokens)

    async def aadjust(self, tokens: int) -> None:
        await self._aapply(0, tokens)

    # ------------------------------------------------------------------ lifecycle

    def stats(self) -> dict[str, Any]:
        return {"backend": "redis", "waited": self.waited, "errors": self._redis.errors}

    def close(self) -> None:
        self._redis.close()

    async def aclose(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        return (f"RedisRateLimiter({safe_url(self._redis.url)!r}, name={self.name!r}, "
                f"requests_per_minute={self.requests_per_minute}, tokens_per_minute={self.tokens_per_minute})")
