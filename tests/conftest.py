"""Fixtures for the real servers some tests need, started lazily (only when a test asks) once per session."""

from tests._services.firestore import *  # noqa: F403
from tests._services.postgres import *  # noqa: F403
from tests._services.redis import *  # noqa: F403


def pytest_configure(config: object) -> None:
    """tiktoken reads an empty cache unless a test gives it one, so token counts never depend on what
    this machine happens to hold in tiktoken's default cache directory."""
    import os
    import tempfile

    os.environ["TIKTOKEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="aixpy-no-tiktoken-")
