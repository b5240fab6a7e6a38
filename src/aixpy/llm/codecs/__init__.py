"""Wire-format codecs: one module per API shape, pure, no I/O.

Each codec turns a :class:`aixpy.llm.types.ChatRequest` into a JSON body (``build_request``), a
response body into a :class:`~aixpy.llm.types.ChatResponse` (``parse_response``) and a streamed reply,
item by item, into :class:`~aixpy.llm.types.StreamEvent` s (its ``StreamParser``: every parser has the
shape of :class:`~aixpy.llm.codecs._common.StreamParser`). Each also has its small
:class:`~aixpy.llm.codecs._common.WireAPI` class: where a request goes and how its answer is read, the
pure half of :class:`~aixpy.llm._http.HttpChatModel`. A provider picks one and adds auth and a base URL;
one codec serves every vendor that speaks its format (xAI, the HuggingFace router, vLLM, TGI and
llama.cpp all use :class:`~aixpy.llm.codecs.openai_chat.OpenAIChatAPI`).

- :mod:`aixpy.llm.codecs.openai_chat` — ``POST /chat/completions`` (SSE)
- :mod:`aixpy.llm.codecs.anthropic_messages` — ``POST /v1/messages`` (SSE)
- :mod:`aixpy.llm.codecs.gemini` — ``generateContent`` for the Gemini API and Vertex AI (SSE)
- :mod:`aixpy.llm.codecs.ollama` — ``POST /api/chat`` (NDJSON)
- :mod:`aixpy.llm.codecs.hf_tgi` — TGI ``/generate`` and the serverless text-generation route (SSE)
"""

from __future__ import annotations

__all__: list[str] = []
