"""Wire API adapters: the pure glue between one codec (:mod:`aixpy.llm.codecs`) and
:class:`~aixpy.llm._http.HttpChatModel`. A provider picks one adapter (xAI, the HuggingFace
router and vLLM all pick :class:`~aixpy.llm.apis.openai_chat.OpenAIChatAPI`) and adds auth and a base URL.

- :mod:`aixpy.llm.apis.openai_chat` — ``POST /chat/completions`` (SSE)
- :mod:`aixpy.llm.apis.anthropic_messages` — ``POST /v1/messages`` (SSE)
- :mod:`aixpy.llm.apis.gemini` — ``generateContent`` for the Gemini API and Vertex AI (SSE)
- :mod:`aixpy.llm.apis.ollama` — ``POST /api/chat`` (NDJSON)
- :mod:`aixpy.llm.apis.hf_tgi` — TGI ``/generate`` and the serverless text-generation route (SSE)
"""

from __future__ import annotations

from aixpy.llm.apis._base import HttpCall, StreamDecoder, WireAPI

__all__ = ["HttpCall", "StreamDecoder", "WireAPI"]
