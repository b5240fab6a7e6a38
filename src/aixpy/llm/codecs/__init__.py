"""Wire-format codecs: one module per API shape, pure functions, no I/O.

Each codec turns a :class:`aixpy.llm.types.ChatRequest` into a JSON body (``build_request``), a
response body into a :class:`~aixpy.llm.types.ChatResponse` (``parse_response``) and stream data
into :class:`~aixpy.llm.types.StreamEvent` s. Providers (auth, URLs, HTTP) live elsewhere and
reuse a codec for every vendor that speaks its format (e.g. ``openai_chat`` for OpenAI, xAI, the
HuggingFace router, vLLM, TGI and llama.cpp).

- :mod:`aixpy.llm.codecs.openai_chat` — POST /chat/completions
- :mod:`aixpy.llm.codecs.anthropic_messages` — POST /v1/messages
"""

from __future__ import annotations

__all__: list[str] = []
