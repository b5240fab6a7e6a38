"""LLM layer: provider-neutral types (:mod:`aixpy.llm.types`), wire-format codecs
(:mod:`aixpy.llm.codecs`) and the providers built on them.

Nothing is imported here so that ``import aixpy`` and ``import aixpy.llm`` stay fast; import the
submodules you need.
"""

from __future__ import annotations

__all__: list[str] = []
