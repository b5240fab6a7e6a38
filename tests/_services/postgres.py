"""Session fixture for a real postgres server (started on a free loopback port, stopped after)."""

from __future__ import annotations
