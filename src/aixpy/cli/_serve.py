"""``aixpy serve``: the OpenAI-compatible gateway (:mod:`aixpy.serve`) on uvicorn."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from aixpy.cli._output import error_line, styled
from aixpy.errors import AixpyError, UserError

__all__ = ["serve"]


def serve(
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML config file (default: $AIXPY_CONFIG, "
                                               "then ./aixpy.yaml).", show_default=False)] = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: serve.host, "
                                             "127.0.0.1). A non-loopback address needs serve.api_keys.",
                                             show_default=False)] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: serve.port, 8000).", min=0, max=65535,
                                             show_default=False)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes (default: serve.workers, 1).",
                                                min=1, max=64, show_default=False)] = None,
    hash_key: Annotated[bool, typer.Option("--hash-key", help="Read a client key on stdin, print the sha256 to "
                                           "put in serve.api_keys, and exit.")] = False,
) -> None:
    """Serve the config's agents, models and embeddings over the OpenAI API (chat, embeddings, models)."""
    out, err = Console(), Console(stderr=True)
    try:
        from aixpy import serve as server

        if hash_key:
            key = sys.stdin.readline().strip()
            if not key:
                raise UserError("--hash-key reads the key from stdin: nothing was given")
            out.print(styled(server.hash_key(key)))
            return
        from aixpy.config import AixpyConfig, find_config, load_config

        found = find_config(config)
        cfg = load_config(found) if found is not None else AixpyConfig()
        server.run(cfg, config_path=str(found) if found is not None else None, host=host, port=port,
                   workers=workers)
    except AixpyError as e:
        err.print(error_line(e), soft_wrap=True)
        raise typer.Exit(2 if isinstance(e, UserError) else 1) from None
