"""One thin module per vendor: auth, base URL, URL policy and the wire API it speaks.

- ``openai`` — ``https://api.openai.com/v1``; ``OPENAI_API_KEY`` (bearer).
- ``xai`` — ``https://api.x.ai/v1``; ``XAI_API_KEY`` (bearer).
- ``anthropic`` — ``https://api.anthropic.com``; ``ANTHROPIC_API_KEY`` (``x-api-key``).
- ``gemini`` — ``https://generativelanguage.googleapis.com``; ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``
  (``x-goog-api-key`` header, never the URL).
- ``vertexai`` — ``https://{location}-aiplatform.googleapis.com``; OAuth token from google-auth ADC.
- ``huggingface`` — ``https://router.huggingface.co/v1``; ``HUGGINGFACE_API_KEY`` or ``HF_TOKEN`` (bearer).
- ``ollama`` — ``OLLAMA_HOST`` or ``http://localhost:11434``; no key.
- ``openai_compatible`` — the configured ``endpoint`` (required); optional ``api_key`` (bearer).

A configured ``endpoint`` replaces the default URL and becomes the only host allowed.

Every module has a model class and a ``create(settings)`` factory the registry calls. Modules are
imported only when their provider is used.
"""

from __future__ import annotations

__all__: list[str] = []
