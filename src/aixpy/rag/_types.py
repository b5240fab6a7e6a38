"""Plain data passed between loaders, the chunker and the indexer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TEXT_FIELDS", "LoadOptions", "Loaded", "Loader", "Segment"]

DEFAULT_TEXT_FIELDS = ("title", "text", "content", "body", "description", "summary")


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of a document chunked on its own (a markdown section, a PDF page, a JSON record), with
    the metadata its chunks carry besides the file's."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Loaded:
    """What a loader returns: the document's segments and its file-level metadata."""

    segments: list[Segment]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """Loader settings. ``text_fields``: the JSON/JSONL fields indexed as text (the rest is metadata)."""

    text_fields: tuple[str, ...] = DEFAULT_TEXT_FIELDS


Loader = Callable[[bytes, Path, LoadOptions], Loaded]
"""``loader(data, path, options)``: pure; raises InvalidInputError (or MissingDependencyError) to skip a file."""
