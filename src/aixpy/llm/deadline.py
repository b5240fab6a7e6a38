"""Re-export: clocks and per-call deadlines live in :mod:`aixpy.policy.deadline` (below ``llm``, shared
with embeddings); ``aixpy.llm.deadline.X`` keeps working."""

from __future__ import annotations

from aixpy.policy.deadline import (
    SYSTEM_CLOCK,
    Clock,
    Deadline,
    DeadlineExceededError,
    ManualClock,
    SystemClock,
)

__all__ = ["SYSTEM_CLOCK", "Clock", "Deadline", "DeadlineExceededError", "ManualClock", "SystemClock"]
