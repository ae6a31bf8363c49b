"""The database layer: connection settings, aware timestamps, migrations on an empty database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from models import Person
from models.db import head_revision, make_engine, schema_revision, upgrade


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_migrations_build_the_schema_from_nothing(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/empty.db")
    upgrade(engine)
    assert schema_revision(engine) == head_revision(engine)
    upgrade(engine)  # running it again changes nothing
    assert schema_revision(engine) == head_revision(engine)


def test_timestamps_come_back_timezone_aware(db):
    shanghai = timezone(timedelta(hours=8))
    created = datetime(2026, 3, 1, 9, 0, tzinfo=shanghai)
    with db.session() as session:
        session.add(Person(telegram_id=5, created_at=created, updated_at=created))
    with db.session() as session:
        person = session.get(Person, 1) or session.query(Person).one()
    assert person.created_at == created
    assert person.created_at.tzinfo is not None and person.created_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(db):
    with pytest.raises(Exception, match="naive"):
        with db.session() as session:
            session.add(
                Person(telegram_id=6, created_at=datetime(2026, 3, 1), updated_at=datetime.now(UTC))
            )


def test_postgresql_plans_each_statement_for_its_values(engine):
    """A generic plan for a prepared statement doubled an admin's /today at 100,000 people
    (docs/benchmarks.md): every connection asks for plans made for the values."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with engine.connect() as connection:
        assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        connection.rollback()
    with engine.connect() as connection:  # still there after a rolled back transaction
        assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
