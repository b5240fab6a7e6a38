"""What the ``llama_server`` fixture yields (a module of its own so tests can import the type)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LlamaServer:
    """A running ``llama-server``: where it listens and the key it wants."""

    base_url: str
    api_key: str
    model: str
    log_path: Path = field(repr=False)

    @property
    def openai_url(self) -> str:
        """The OpenAI-style base URL (``/chat/completions`` is appended to it)."""
        return f"{self.base_url}/v1"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
