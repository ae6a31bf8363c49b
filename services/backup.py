"""Backups of the database while the bot runs (SQLite's online backup API).

PostgreSQL deployments use pg_dump instead (docs/deploy.md); this module refuses them
with that advice rather than producing something that is not a backup.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

# Tables counted in the report of `cadre-bot db backup` (what an operator recognises).
COUNTED_TABLES = {"person": "people", "health_checkin": "check-ins", "alert": "alerts"}


class BackupNotSupported(RuntimeError):
    pass


@dataclass(frozen=True)
class BackupReport:
    """What a backup file holds, read back from the file itself."""

    path: Path
    size_bytes: int
    revision: str | None
    counts: dict[str, int]

    def describe(self) -> str:
        counts = ", ".join(f"{n:,} {label}" for label, n in self.counts.items())
        return (
            f"backup written to {self.path} ({_human_size(self.size_bytes)}, "
            f"schema revision {self.revision or 'none'}, integrity ok): {counts}"
        )


def backup_sqlite(engine: Engine, destination: Path, pages_per_step: int = -1) -> Path:
    """Copy the live database to `destination`, a consistent snapshot even under writes.

    The default copies every page in one step, inside one read transaction: in WAL mode
    (models.db sets it) a reader never blocks the bot's writers, and one step cannot be
    restarted by them (a multi-step copy starts over whenever another connection writes
    between steps, which under steady load may never end). The copy is left in rollback
    journal mode, so the backup is one self-contained file."""
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
            target.execute("PRAGMA journal_mode=DELETE")
            check = target.execute("PRAGMA integrity_check").fetchone()
            if not check or check[0] != "ok":
                raise RuntimeError(f"the backup failed its integrity check: {check}")
        finally:
            target.close()
    finally:
        raw.close()
    return destination


def sqlite_path(url: str | URL) -> Path:
    """The file of a SQLite URL; refuses other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupNotSupported(pg_dump_advice(parsed))
    if not parsed.database or parsed.database == ":memory:":
        raise BackupNotSupported("an in-memory SQLite database cannot be backed up")
    return Path(parsed.database).expanduser().resolve()


def pg_dump_advice(url: str | URL) -> str:
    """One line telling a PostgreSQL operator what to run instead. The password is left
    out: pg_dump reads it from ~/.pgpass or PGPASSWORD (docs/deploy.md)."""
    parsed = make_url(url)
    libpq = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    ).render_as_string(hide_password=False)
    return (
        "`db backup` copies SQLite databases only; for PostgreSQL run "
        f"`pg_dump --format=custom --file=BACKUP.dump '{libpq}'` (see docs/deploy.md)"
    )


def write_backup(engine: Engine, destination: Path, *, overwrite: bool = False) -> BackupReport:
    """Back up the live SQLite database of `engine` to `destination` atomically: the copy
    is made in a temporary file next to it, checked, flushed to disk, then renamed, so
    `destination` is either the previous file or a complete backup, never half of one."""
    source = sqlite_path(engine.url)
    if not source.exists():
        raise FileNotFoundError(f"there is no database at {source}")
    destination = destination.expanduser().resolve()
    if destination == source:
        raise FileExistsError(f"{destination} is the live database; choose another file")
    if destination.is_dir():
        raise IsADirectoryError(f"{destination} is a directory; give the backup file's name")
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination} exists; choose a new file name or pass --force")
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent
    )
    os.close(handle)
    temporary = Path(temporary_name)
    temporary.unlink()  # backup_sqlite creates the file itself and refuses an existing one
    try:
        backup_sqlite(engine, temporary)
        report = describe_backup(temporary)
        temporary.chmod(0o600)  # it holds health data: readable by its owner only
        _fsync(temporary)
        os.replace(temporary, destination)
        _fsync(destination.parent)
    finally:
        for leftover in (temporary, *_sidecars(temporary)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return BackupReport(destination, report.size_bytes, report.revision, report.counts)


def describe_backup(path: Path) -> BackupReport:
    """Size, schema revision and row counts of a backup file (opened read-only)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        revision = None
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        counts = {
            label: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table, label in COUNTED_TABLES.items()
            if table in tables
        }
    finally:
        connection.close()
    return BackupReport(path, path.stat().st_size, revision, counts)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
