"""Functions that config files of the agent tests name as tools (``tests.agents._tools:lookup``)."""

from __future__ import annotations

NOT_A_FUNCTION = 42


def lookup(city: str) -> str:
    """The weather of a city.

    Args:
        city: City name.
    """
    return f"sunny in {city}"


def broken(*, ok: bool) -> str:
    return "fine" if ok else "not fine"
