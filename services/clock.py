"""The one source of 'now', so that tests can control time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Current time, timezone-aware UTC. Tests move it with time-machine."""
    return datetime.now(UTC)
