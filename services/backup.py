"""Backups of the database while the bot runs (SQLite's online backup API).

PostgreSQL deployments use pg_dump instead (docs/deploy.md); this module refuses them
with that advice rather than producing something that is not a backup.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Engine


class BackupNotSupported(RuntimeError):
    pass


def backup_sqlite(engine: Engine, destination: Path, pages_per_step: int = 1024) -> Path:
    """Copy the live database to `destination`, a consistent snapshot even under writes.

    The copy proceeds in steps so that the bot's own writes are not blocked for long."""
    if engine.dialect.name != "sqlite":
        raise BackupNotSupported(
            "cadre-bot db backup copies SQLite databases; for PostgreSQL use pg_dump "
            "(see docs/deploy.md)"
        )
    destination = destination.expanduser().resolve()
    if destination.exists():
        raise FileExistsError(f"{destination} exists; choose a new file name")
    destination.parent.mkdir(parents=True, exist_ok=True)
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        target = sqlite3.connect(destination)
        try:
            source.backup(target, pages=pages_per_step)
            check = target.execute("PRAGMA integrity_check").fetchone()
            if not check or check[0] != "ok":
                raise RuntimeError(f"the backup failed its integrity check: {check}")
        finally:
            target.close()
    finally:
        raw.close()
    return destination
