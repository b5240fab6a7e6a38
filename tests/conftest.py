"""Fixtures for the real servers some tests need, started lazily (only when a test asks) once per session."""

from tests._services.firestore import *  # noqa: F403
from tests._services.postgres import *  # noqa: F403
from tests._services.redis import *  # noqa: F403
