"""Engine creation, connection settings and schema migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys on every
    connection, PostgreSQL plans every statement for its values."""
    # A database error's text must not carry the statement's values (phone numbers, health
    # readings) into a log line.
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)  # a connection broken by a restart is replaced
    if parsed.get_backend_name() == "postgresql":
        # An unreachable server (not a refused connection) must fail in seconds, not after
        # the TCP timeout: the bot waits and retries (bot/outage.py).
        kwargs.setdefault("connect_args", {"connect_timeout": 10})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _postgresql_settings)
        return engine
    return create_engine(url, **kwargs)


def _postgresql_settings(dbapi_connection: Any, _record: Any) -> None:
    # psycopg prepares a statement run five times, and PostgreSQL then soon plans it once
    # for any values. The area reports' best plans depend on the day and the area asked
    # for: a generic plan doubled an admin's /today at 100,000 people (85 -> 160 ms,
    # docs/benchmarks.md). Planning them each time costs a fraction of a millisecond.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows are overwritten with zeros, not left in free pages: a backup made after
    # a /deleteme (it copies every page) holds nothing of the person (docs/privacy.md).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer cadre-bot than this one."""


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema_not_newer(engine: Engine) -> None:
    current = schema_revision(engine)
    if current is None:
        return
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    if not _known(scripts, current):
        raise SchemaTooNew(
            f"database is at revision {current}, which this version of cadre-bot does not know; "
            "upgrade cadre-bot before starting it"
        )


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:
        return False


MIGRATION_LOCK_KEY = 0x43414D47  # "CAMG": held by whoever migrates (PostgreSQL)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the schema to `revision`, refusing a database newer than the code.

    On PostgreSQL under an advisory lock: of several processes starting at once (two hosts,
    or `cadre-bot db upgrade` during a rolling upgrade), one migrates and the others wait
    for it, then find the schema up to date, instead of racing it."""
    if engine.dialect.name != "postgresql":
        check_schema_not_newer(engine)
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
        connection.commit()
        try:
            check_schema_not_newer(engine)
            command.upgrade(alembic_config(engine), revision)
        finally:
            connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
            connection.commit()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
