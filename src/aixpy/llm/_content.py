"""Content parts of a user message (text and images); re-exported by :mod:`aixpy.llm.types`."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal, TypeAlias

from aixpy.errors import InvalidInputError

__all__ = ["ContentPart", "ImagePart", "TextPart"]


@dataclass(slots=True)
class TextPart:
    """A piece of text inside a multi-part user message."""

    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image, given either by ``url`` (``https:`` or ``data:``) or by raw ``data`` + ``media_type``.

    Build with :meth:`from_url` or :meth:`from_bytes`. ``detail`` is OpenAI's resolution hint;
    other providers ignore it.
    """

    url: str | None = None
    data: bytes | None = None
    media_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None
    type: Literal["image"] = "image"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise InvalidInputError("ImagePart needs exactly one of url or data")
        if self.data is not None and not self.media_type:
            raise InvalidInputError("ImagePart with data needs a media_type such as 'image/png'")

    @classmethod
    def from_url(cls, url: str, *, detail: Literal["auto", "low", "high"] | None = None) -> ImagePart:
        return cls(url=url, detail=detail)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str, *,
                   detail: Literal["auto", "low", "high"] | None = None) -> ImagePart:
        return cls(data=data, media_type=media_type, detail=detail)

    def inline(self) -> tuple[str, str] | None:
        """``(media_type, base64 text)`` for bytes or a ``data:`` URL; ``None`` for a remote URL."""
        if self.data is not None:
            return self.media_type or "application/octet-stream", base64.b64encode(self.data).decode("ascii")
        url = self.url or ""
        if url.startswith("data:") and ";base64," in url:
            head, _, b64 = url.partition(",")
            return head[5:].split(";", 1)[0] or "application/octet-stream", b64
        return None

    def as_url(self) -> str:
        """The image as a URL: the URL itself, or a ``data:`` URL built from the bytes."""
        if self.url is not None:
            return self.url
        media_type, b64 = self.inline() or ("", "")
        return f"data:{media_type};base64,{b64}"


ContentPart: TypeAlias = TextPart | ImagePart
"""A part of a user message, discriminated by ``type``."""
