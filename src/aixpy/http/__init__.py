"""The one HTTP layer of aixpy: SSRF-guarded, pooled, with deadlines, size caps and mapped errors.

Every provider (LLM or embeddings) talks HTTP through :class:`HttpClient`, built from an
:class:`HttpConfig` whose base URL comes from configuration and whose :class:`URLPolicy`
(:func:`public_policy` for cloud APIs, :func:`local_policy` for Ollama/TEI/vLLM/llama.cpp) says
where it may go. Connections are made by :class:`GuardedTransport` / :class:`AsyncGuardedTransport`,
which resolve each host once, validate every address and connect to the validated one (no DNS
rebinding window); cloud metadata addresses are refused under every policy. This layer never
retries: retries are a separate policy wrapped around it. :func:`endpoint_target`, :func:`server_url`
and :func:`resolve_key` turn a provider's configured endpoint and key into the base URL, policy and key.
"""

from __future__ import annotations

from httpx import Response

from aixpy.http._client import HttpClient
from aixpy.http._config import HttpConfig, RequestEvent, RequestHook
from aixpy.http._endpoints import (
    check_endpoint,
    endpoint_target,
    is_local_host,
    openai_base,
    request_headers,
    resolve_key,
    secret,
    server_url,
)
from aixpy.http._errors import error_for_status, map_exception, parse_retry_after
from aixpy.http._ssrf import (
    LOCAL_HOSTS,
    IPClass,
    ParsedTarget,
    URLPolicy,
    check_ip,
    check_url,
    classify_ip,
    local_policy,
    public_policy,
    safe_url,
)
from aixpy.http._streams import ServerSentEvent, aiter_ndjson, aiter_sse, iter_ndjson, iter_sse
from aixpy.http._transport import (
    AsyncGuardedBackend,
    AsyncGuardedTransport,
    GuardedBackend,
    GuardedTransport,
    Resolver,
    system_resolver,
)

__all__ = [
    "LOCAL_HOSTS",
    "AsyncGuardedBackend",
    "AsyncGuardedTransport",
    "GuardedBackend",
    "GuardedTransport",
    "HttpClient",
    "HttpConfig",
    "IPClass",
    "ParsedTarget",
    "RequestEvent",
    "RequestHook",
    "Resolver",
    "Response",
    "ServerSentEvent",
    "URLPolicy",
    "aiter_ndjson",
    "aiter_sse",
    "check_endpoint",
    "check_ip",
    "check_url",
    "classify_ip",
    "endpoint_target",
    "error_for_status",
    "is_local_host",
    "iter_ndjson",
    "iter_sse",
    "local_policy",
    "map_exception",
    "openai_base",
    "parse_retry_after",
    "public_policy",
    "request_headers",
    "resolve_key",
    "safe_url",
    "secret",
    "server_url",
    "system_resolver",
]
