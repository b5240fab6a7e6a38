"""The Starlette app: routes, body limit, auth, and the chat/embeddings handlers."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aixpy.config import AixpyConfig
from aixpy.llm.model import AsyncChatStream
from aixpy.llm.types import StreamEvent
from aixpy.serve import _openai_wire as wire
from aixpy.serve._gateway import Gateway, error_of

__all__ = ["app_from_env", "create_app"]

_JSON_HEADERS = {"cache-control": "no-store"}


def _error(e: BaseException) -> JSONResponse:
    err = error_of(e)
    return JSONResponse(wire.error_body(err.message, err.type, err.code, err.param), status_code=err.status,
                        headers=_JSON_HEADERS)


async def _read_json(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise wire.WireError(f"request body over {limit} bytes", status=413, code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise wire.WireError(f"request body over {limit} bytes", status=413, code="request_too_large")
    try:
        return json.loads(body)
    except ValueError:
        raise wire.WireError("the request body is not valid JSON") from None


def _gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def _chat(request: Request) -> Response:
    gw = _gateway(request)
    try:
        key = gw.authenticate(request.headers.get("authorization"))
        call = wire.parse_chat(await _read_json(request, gw.serve.max_body_bytes))
        gw.check_model(key, call.model)
        model = gw.chat_model(call.model)
        rid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        if not call.stream:
            resp = await model.achat(call.messages, **call.options)
            return JSONResponse(wire.completion_body(resp, id=rid, created=created, model=call.model),
                                headers=_JSON_HEADERS)
        stream = model.astream(call.messages, **call.options)
    except Exception as e:  # every failure becomes an OpenAI error response
        return _error(e)
    writer = wire.ChunkWriter(id=rid, created=created, model=call.model, include_usage=call.include_usage)
    return _SSEResponse(stream, writer)


class _SSEResponse(Response):
    """A chat stream as SSE, driven from :meth:`__call__` alone (one task, so the stream's context variables
    stay in the context they were set in). A failure before the first event is a plain HTTP error; after
    it, an SSE ``error`` event. A client that hangs up stops it: a watcher task waits for
    ``http.disconnect`` and cancels the streaming (which stays in this task), and the aixpy stream is closed,
    so the upstream connection is released instead of read to its end for nobody."""

    def __init__(self, stream: AsyncChatStream, writer: wire.ChunkWriter) -> None:
        self.status_code, self.background = 200, None
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                            (b"x-accel-buffering", b"no")]
        self.stream, self.writer = stream, writer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
                await self._send(scope, receive, send)
                tg.cancel_scope.cancel()  # done: stop the watcher
        finally:
            with anyio.CancelScope(shield=True):  # closing must happen even when the task is being cancelled
                await self.stream.aclose()

    async def _send(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            first: StreamEvent | None = await anext(self.stream, None)
        except Exception as e:
            await _error(e)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async with contextlib.aclosing(_chunks(self.stream, first, self.writer)) as chunks:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cancel_on_disconnect(receive: Any, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` when the client disconnects (the request body has been read: only that can come)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


async def _chunks(stream: AsyncChatStream, first: StreamEvent | None,
                  writer: wire.ChunkWriter) -> AsyncGenerator[bytes]:
    try:
        yield writer.start()
        if first is not None:
            if (out := writer.feed(first)) is not None:
                yield out
            async for event in stream:
                if (out := writer.feed(event)) is not None:
                    yield out
        yield writer.end()
    except Exception as e:  # after the 200 the error travels as an SSE event
        err = error_of(e)
        yield writer.error(err.message, err.type, err.code)


async def _embeddings(request: Request) -> Response:
    gw = _gateway(request)
    try:
        key = gw.authenticate(request.headers.get("authorization"))
        call = wire.parse_embeddings(await _read_json(request, gw.serve.max_body_bytes))
        gw.check_model(key, call.model, embedding=True)
        vectors, usage = await gw.embedder.aembed_with_usage(call.texts)
        body = wire.embeddings_body(vectors, model=call.model, tokens=usage.tokens, base64_floats=call.base64)
    except Exception as e:
        return _error(e)
    return JSONResponse(body, headers=_JSON_HEADERS)


async def _models(request: Request) -> Response:
    gw = _gateway(request)
    try:
        key = gw.authenticate(request.headers.get("authorization"))
    except Exception as e:
        return _error(e)
    return JSONResponse(wire.models_body(gw.model_ids(key)), headers=_JSON_HEADERS)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    gw = _gateway(request)
    try:
        with anyio.fail_after(gw.serve.ready_timeout):
            await anyio.to_thread.run_sync(gw.check_stores, abandon_on_cancel=True)
    except Exception as e:
        from aixpy.serve._gateway import log

        log.warning("readiness check failed: %s", type(e).__name__)
        return JSONResponse({"status": "unavailable", "reason": "vector store unreachable"}, status_code=503)
    return JSONResponse({"status": "ready"})


async def _metrics(request: Request) -> Response:
    gw = _gateway(request)
    try:
        gw.authenticate(request.headers.get("authorization"))
    except Exception as e:
        return _error(e)
    metrics = request.app.state.metrics
    if metrics is None:
        return _error(wire.WireError("metrics need the 'metrics' extra: pip install 'aixpy[metrics]'", status=404,
                                     type="not_found_error"))
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    return JSONResponse(wire.error_body(f"{request.method} {request.url.path}: not found" if status == 404
                                        else "method not allowed", kind), status_code=status)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(exc)


def _enable_metrics() -> tuple[Any, bool]:
    """The process's Prometheus metrics (subscribed), and whether this call turned them on."""
    try:
        from aixpy.telemetry.prometheus import enable_prometheus
    except ImportError:
        return None, False
    from aixpy.telemetry import subscribers

    before = subscribers()
    metrics = enable_prometheus()
    return metrics, metrics not in before


def create_app(config: AixpyConfig) -> Starlette:
    """The ASGI app serving ``config`` (no CORS middleware: browsers from other origins are not served)."""
    gateway = Gateway(config)
    metrics, turned_on = _enable_metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()
            if turned_on:  # leave the process as it was: metrics this app switched on go off with it
                metrics.unsubscribe()

    routes = [
        Route("/v1/chat/completions", _chat, methods=["POST"]),
        Route("/v1/embeddings", _embeddings, methods=["POST"]),
        Route("/v1/models", _models, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/readyz", _readyz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: _not_found, 405: _not_found, 500: _server_error})
    app.state.gateway = gateway
    app.state.metrics = metrics
    return app


def app_from_env() -> Starlette:
    """The app for ``$AIXPY_CONFIG`` (uvicorn's factory when ``--workers`` > 1: each worker builds its own)."""
    from aixpy.config import load_config

    path = os.environ.get("AIXPY_CONFIG")
    return create_app(load_config(path) if path else AixpyConfig())
