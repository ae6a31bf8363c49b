"""Fixtures shared by every layer: a migrated database (SQLite, or PostgreSQL when
CADRE_TEST_DATABASE_URL is set) emptied before each test, settings for the bot, and the
time of day every in-process test starts at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from config import Settings
from models.db import make_engine, upgrade
from services.db import Database

pytest_plugins = ["tests.support.emulator_plugin", "tests.support.botfixtures"]

TEST_DATABASE_URL = os.environ.get("CADRE_TEST_DATABASE_URL")

# Noon in Asia/Shanghai: away from the 09:00 reminders, the 18:00 cut-off, midnight and the
# 03:30 retention pass.
TEST_START = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def time_of_day(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every in-process test starts at TEST_START, and the clock ticks on from there: the
    suite does not depend on the time of day it runs at (a daily reminder firing mid-test,
    a day ending mid-test). Tests that need another moment travel there themselves; the
    end-to-end tests (marked e2e) run real processes, on real time."""
    if request.node.get_closest_marker("e2e"):
        yield
        return
    with time_machine.travel(TEST_START, tick=True):
        yield


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'cadre-test.db'}"


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """The schema is built once per run by the real migrations, from an empty database."""
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


def empty_tables(engine: Engine) -> None:
    tables = list(reversed(SQLModel.metadata.sorted_tables))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{table.name}"' for table in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(table.delete())
            # ids are never reused in production (AUTOINCREMENT); each test starts at 1
            connection.execute(text("DELETE FROM sqlite_sequence"))


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    empty_tables(migrated_engine)
    return migrated_engine


@pytest.fixture
def db(engine: Engine) -> Database:
    return Database(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        telegram_token="123456:TEST-token",
        database_url=database_url,
        admin_ids=[9001],
        timezone="Asia/Shanghai",
        default_language="zh-Hans",
        # Care reminders would otherwise reach the people of every test (factory cadres
        # are overdue); the care tests switch them on.
        care_jobs=False,
        # No health and metrics server unless a test asks for one (tests/bot/test_metrics.py).
        http_listen="",
    )


@pytest.fixture(autouse=True)
def hooks() -> None:
    """What the services call back (the outbox's outcome hooks and renderers...), registered
    as the composition root registers them: service tests that record a delivery outcome
    see an alert escalate, as `cadre-bot run` would. A test's bot registers them again with
    its own settings when it is built."""
    from bot.app import register_hooks

    register_hooks(Settings(_env_file=None))
