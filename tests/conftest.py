"""Fixtures shared by every layer: a migrated database (SQLite, or PostgreSQL when
CADRE_TEST_DATABASE_URL is set) emptied before each test, and settings for the bot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from config import Settings
from models.db import make_engine, upgrade
from services.db import Database

pytest_plugins = ["tests.emulator_plugin", "tests.botfixtures"]

TEST_DATABASE_URL = os.environ.get("CADRE_TEST_DATABASE_URL")


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
        # No health and metrics server unless a test asks for one (tests/test_metrics.py).
        http_listen="",
    )
