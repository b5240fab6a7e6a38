"""Iterate a streamed response as server-sent events (via ``httpx-sse``) or as NDJSON lines.

Use them on the response yielded by :meth:`HttpClient.stream` / :meth:`HttpClient.astream`, which
enforce the deadline and the size cap on every read. Malformed input raises
:class:`~aixpy.errors.ResponseFormatError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from aixpy.errors import ResponseFormatError

__all__ = ["ServerSentEvent", "aiter_ndjson", "aiter_sse", "iter_ndjson", "iter_sse", "iter_sse_data"]


def iter_sse(response: httpx.Response) -> Iterator[ServerSentEvent]:
    """Yield the server-sent events of a streamed ``text/event-stream`` response."""
    try:
        yield from EventSource(response).iter_sse()
    except SSEError as e:
        raise ResponseFormatError(f"not a server-sent event stream: {e}") from e


def iter_sse_data(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """:func:`iter_sse` as ``(event name, data)`` pairs (what the LLM stream readers look at)."""
    for sse in iter_sse(response):
        yield sse.event, sse.data


async def aiter_sse(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """Async twin of :func:`iter_sse`."""
    events = EventSource(response).aiter_sse()
    try:
        async for event in events:
            yield event
    except SSEError as e:
        raise ResponseFormatError(f"not a server-sent event stream: {e}") from e
    finally:
        await events.aclose()


def _decode(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as e:
        raise ResponseFormatError(f"invalid NDJSON line: {line[:200]!r}") from e


def iter_ndjson(response: httpx.Response) -> Iterator[Any]:
    """Yield one decoded JSON value per non-empty line (Ollama's streaming format)."""
    for line in response.iter_lines():
        if line.strip():
            yield _decode(line)


async def aiter_ndjson(response: httpx.Response) -> AsyncIterator[Any]:
    """Async twin of :func:`iter_ndjson`."""
    async for line in response.aiter_lines():
        if line.strip():
            yield _decode(line)
