"""Session fixture for a real firestore server (started on a free loopback port, stopped after)."""

from __future__ import annotations
