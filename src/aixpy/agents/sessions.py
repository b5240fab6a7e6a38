"""Sessions: a conversation's history kept across runs, by id.

::

    agent = Agent("helper", "Be brief.", model)                       # default store: ./.aixpy/sessions/
    agent.run("My name is Ada.", session="ada")
    agent.run("What is my name?", session="ada")                      # sees the first exchange

Stores:

* :class:`FileSessionStore` (the default): one JSON file per session under ``./.aixpy/sessions/`` (the
  project's state directory, where the CLI keeps its index), rewritten atomically under an exclusive
  file lock, so two processes appending to one session both keep their messages;
* :class:`RedisSessionStore` (the ``redis`` extra): one key per session, appended in a WATCH/MULTI
  transaction;
* :class:`MemorySessionStore`: in this process only, for tests.

:func:`default_store` builds the store a config's ``sessions:`` block describes
(:class:`~aixpy.config.SessionsConfig`: ``backend: file|redis``, ``path``, ``url``, ``ttl``,
``max_tokens``); without that block, Redis at ``$AIXPY_SESSIONS_REDIS_URL`` when it is set, else files.

History is trimmed to a token budget (``max_tokens``, estimated at 4 characters a token unless you give
a ``count``): whole turns are dropped from the oldest, a turn being a user message and everything up to
the next one, so an assistant's tool calls always keep their results and a tool result never loses its
call. System messages are always kept (agents add their instructions to each request; they are not
stored). The latest turn is kept even when it alone is over the budget.

Session ids are 1-128 characters of letters, digits, ``.``, ``_`` and ``-`` (the file name is the id).
Session I/O is synchronous (a small file, or one Redis round trip); the ``a``-methods run it in a
worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import TypeAdapter

from aixpy.errors import InvalidInputError, MissingDependencyError, StoreError
from aixpy.llm.types import AssistantMessage, Message, SystemMessage, TextPart, ToolMessage, UserMessage

if TYPE_CHECKING:
    from aixpy.config.sessions import SessionsConfig

__all__ = [
    "DEFAULT_DIR",
    "DEFAULT_MAX_TOKENS",
    "FileSessionStore",
    "MemorySessionStore",
    "RedisSessionStore",
    "SessionStore",
    "approx_tokens",
    "check_session_id",
    "default_store",
    "trim",
]

DEFAULT_DIR = Path(".aixpy") / "sessions"
DEFAULT_MAX_TOKENS = 8000
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])

TokenCount = Callable[[Message], int]


def approx_tokens(m: Message) -> int:
    """An estimate of a message's tokens: 4 characters a token, plus 4 for the message itself."""
    chars = 0
    if isinstance(m, UserMessage):
        chars = sum(len(p.text) if isinstance(p, TextPart) else 1000 for p in m.parts())
    elif isinstance(m, AssistantMessage):
        chars = len(m.content or "") + sum(len(c.name) + len(c.arguments_json) for c in m.tool_calls)
    else:
        chars = len(m.content)
    return 4 + (chars + 3) // 4


def _turns(messages: Sequence[Message]) -> list[list[Message]]:
    """Non-system messages split into turns: each starts at a user message (the first may not)."""
    turns: list[list[Message]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            continue
        if isinstance(m, UserMessage) or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def _drop_orphans(messages: list[Message]) -> list[Message]:
    """Without tool results whose call is not in an earlier assistant message."""
    called: set[str] = set()
    out: list[Message] = []
    for m in messages:
        if isinstance(m, AssistantMessage):
            called.update(c.id for c in m.tool_calls)
        elif isinstance(m, ToolMessage) and m.tool_call_id not in called:
            continue
        out.append(m)
    return out


def trim(messages: Sequence[Message], max_tokens: int | None, *, count: TokenCount = approx_tokens) -> list[Message]:
    """``messages`` within ``max_tokens``: the system messages, then the most recent whole turns that fit
    (at least the last one). A history that starts inside a turn loses that partial turn first."""
    system = [m for m in messages if isinstance(m, SystemMessage)]
    turns = _turns(messages)
    if turns and not isinstance(turns[0][0], UserMessage) and len(turns) > 1:
        turns = turns[1:]  # a partial turn (e.g. cut by an older trim of another budget)
    budget = None if max_tokens is None else max_tokens - sum(count(m) for m in system)
    kept: list[list[Message]] = []
    used = 0
    for t in reversed(turns):
        size = sum(count(m) for m in t)
        if kept and budget is not None and used + size > budget:
            break
        kept.append(t)
        used += size
    return [*system, *_drop_orphans([m for t in reversed(kept) for m in t])]


def check_session_id(session: str, name: str = "session id") -> str:
    """``session`` when it is a valid session id (``name`` says what it is in the error)."""
    if not isinstance(session, str) or not _ID.fullmatch(session) or session in (".", ".."):
        raise InvalidInputError(f"{name} {session!r} must be 1-128 letters, digits, '.', '_' or '-'")
    return session


def dumps(messages: Sequence[Message]) -> bytes:
    return _MESSAGES.dump_json(list(messages))


def loads(data: bytes | str) -> list[Message]:
    return _MESSAGES.validate_json(data)


class SessionStore(ABC):
    """Where conversations are kept. ``max_tokens`` is the history budget (``None``: keep everything)."""

    def __init__(self, *, max_tokens: int | None = DEFAULT_MAX_TOKENS, count: TokenCount = approx_tokens) -> None:
        self.max_tokens = max_tokens
        self.count = count

    def load(self, session: str) -> list[Message]:
        """The session's history (empty for a new session), trimmed to the budget."""
        return trim(self._read(check_session_id(session)), self.max_tokens, count=self.count)

    def append(self, session: str, messages: Sequence[Message]) -> None:
        """Add ``messages`` to the session, atomically; the stored history is trimmed to the budget."""
        new = [m for m in messages if not isinstance(m, SystemMessage)]
        if new:
            self._update(check_session_id(session), lambda old: trim([*old, *new], self.max_tokens, count=self.count))

    def clear(self, session: str) -> None:
        """Forget the session."""
        self._delete(check_session_id(session))

    async def aload(self, session: str) -> list[Message]:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(self.load, session)

    async def aappend(self, session: str, messages: Sequence[Message]) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.append, session, messages)

    async def aclear(self, session: str) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(self.clear, session)

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract: most stores hold nothing
        """Release the store's connections (a Redis client); nothing to do for files and memory."""

    @abstractmethod
    def _read(self, session: str) -> list[Message]: ...

    @abstractmethod
    def _update(self, session: str, change: Callable[[list[Message]], list[Message]]) -> None:
        """Replace the history with ``change(history)``, atomically against other writers."""

    @abstractmethod
    def _delete(self, session: str) -> None: ...


class MemorySessionStore(SessionStore):
    """Sessions in this process's memory (tests, notebooks)."""

    def __init__(self, *, max_tokens: int | None = DEFAULT_MAX_TOKENS, count: TokenCount = approx_tokens) -> None:
        super().__init__(max_tokens=max_tokens, count=count)
        self._lock = threading.Lock()
        self._data: dict[str, list[Message]] = {}

    def __repr__(self) -> str:
        return f"MemorySessionStore({len(self._data)} sessions)"

    def _read(self, session: str) -> list[Message]:
        with self._lock:
            return list(self._data.get(session, []))

    def _update(self, session: str, change: Callable[[list[Message]], list[Message]]) -> None:
        with self._lock:
            self._data[session] = change(list(self._data.get(session, [])))

    def _delete(self, session: str) -> None:
        with self._lock:
            self._data.pop(session, None)


class FileSessionStore(SessionStore):
    """One ``<id>.json`` file per session under ``directory`` (default ``./.aixpy/sessions``), written
    atomically under an exclusive lock on ``<id>.lock``."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_DIR, *,
                 max_tokens: int | None = DEFAULT_MAX_TOKENS, count: TokenCount = approx_tokens) -> None:
        super().__init__(max_tokens=max_tokens, count=count)
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileSessionStore({str(self.directory)!r})"

    def path(self, session: str) -> Path:
        return self.directory / f"{check_session_id(session)}.json"

    @contextlib.contextmanager
    def _locked(self, session: str) -> Iterator[Path]:
        from aixpy.vectorstores._memory_snapshot import snapshot_lock

        path = self.path(session)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the session directory {self.directory}: {e}") from e
        with snapshot_lock(path):
            yield path

    def _read_file(self, path: Path) -> list[Message]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"cannot read session file {path}: {e}") from e
        try:
            return loads(data)
        except ValueError as e:
            raise StoreError(f"session file {path} is not a saved conversation: {e}") from e

    def _read(self, session: str) -> list[Message]:
        return self._read_file(self.path(session))

    def _update(self, session: str, change: Callable[[list[Message]], list[Message]]) -> None:
        from aixpy.vectorstores._memory_snapshot import atomic_write

        with self._locked(session) as path:
            data = dumps(change(self._read_file(path)))

            def write(f: IO[bytes]) -> None:
                f.write(data)

            atomic_write(path, write)

    def _delete(self, session: str) -> None:
        with self._locked(session) as path, contextlib.suppress(FileNotFoundError):
            path.unlink()


class RedisSessionStore(SessionStore):
    """Sessions in Redis (the ``redis`` extra): key ``<prefix><id>`` holds the history as JSON; ``ttl``
    (seconds) expires idle sessions."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "aixpy:session:",
                 ttl: float | None = None, max_tokens: int | None = DEFAULT_MAX_TOKENS,
                 count: TokenCount = approx_tokens, client: Any = None) -> None:
        super().__init__(max_tokens=max_tokens, count=count)
        if client is None:
            try:
                import redis
            except ImportError as e:
                raise MissingDependencyError("redis (for RedisSessionStore)", "pip install 'aixpy[redis]'") from e
            client = redis.Redis.from_url(url)
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"RedisSessionStore(prefix={self.prefix!r})"

    def _key(self, session: str) -> str:
        return self.prefix + session

    @contextlib.contextmanager
    def _errors(self) -> Generator[None, None, None]:
        try:
            yield
        except (StoreError, ValueError):
            raise
        except Exception as e:  # redis.RedisError and connection errors
            raise StoreError(f"redis session store: {type(e).__name__}: {e}") from e

    def _read(self, session: str) -> list[Message]:
        with self._errors():
            raw = self.client.get(self._key(session))
        return [] if raw is None else loads(raw)

    def _update(self, session: str, change: Callable[[list[Message]], list[Message]]) -> None:
        key = self._key(session)

        def tx(pipe: Any) -> None:
            raw = pipe.get(key)
            data = dumps(change([] if raw is None else loads(raw)))
            pipe.multi()
            if self.ttl is None:
                pipe.set(key, data)
            else:
                pipe.set(key, data, px=int(self.ttl * 1000))

        with self._errors():
            self.client.transaction(tx, key)

    def _delete(self, session: str) -> None:
        with self._errors():
            self.client.delete(self._key(session))

    def close(self) -> None:
        self.client.close()


def default_store(config: SessionsConfig | None = None, *, environ: Mapping[str, str] | None = None) -> SessionStore:
    """The store a config's ``sessions:`` block describes (:class:`~aixpy.config.SessionsConfig`).

    Without one (``None``): Redis at ``$AIXPY_SESSIONS_REDIS_URL`` (read from ``environ``, default
    ``os.environ``) if set, else files under ``./.aixpy/sessions``.
    """
    if config is None:
        url = (os.environ if environ is None else environ).get("AIXPY_SESSIONS_REDIS_URL", "").strip()
        return RedisSessionStore(url) if url else FileSessionStore()
    if config.backend == "redis":
        assert config.url is not None  # SessionsConfig requires it
        return RedisSessionStore(config.url, prefix=config.prefix, max_tokens=config.max_tokens,
                                 ttl=config.ttl.total_seconds() if config.ttl is not None else None)
    return FileSessionStore(config.path or DEFAULT_DIR, max_tokens=config.max_tokens)


def session_plan(inner: Generator[Any, Any, Any], store: SessionStore, session: str,
                 skip: int) -> Generator[Any, Any, Any]:
    """An agent plan that, when the run ends well, appends its new messages (after the first ``skip``,
    the history it started from) to the session."""
    result = yield from inner
    store.append(session, result.messages[skip:])
    return result


def messages_json(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages as JSON-ready dicts (``--json`` output)."""
    out: list[dict[str, Any]] = json.loads(dumps(messages))
    return out
