"""Sessions for the services, and a way to run them off the event loop."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Engine, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

P = ParamSpec("P")
T = TypeVar("T")


LOCK_RETRIES = 5


def _sqlite_snapshot_conflict(exc: OperationalError) -> bool:
    """SQLite refuses at once, without waiting, a transaction that read and then wants to
    write when another connection committed in between (SQLITE_BUSY_SNAPSHOT, or
    SQLITE_BUSY while holding a read lock). With the delivery worker writing a few times a
    second this happens; the cure is to roll back and run the whole transaction again."""
    return getattr(exc.orig, "sqlite_errorcode", None) in (5, 517)  # BUSY, BUSY_SNAPSHOT


class Database:
    """Owns the engine. Services are plain synchronous functions taking a Session first;
    async callers use `run`, which executes them in a worker thread so that blocking
    database work never runs on the event loop. `call` runs one transaction, again if
    SQLite refused it for a concurrent commit (see `_sqlite_snapshot_conflict`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def call(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        attempt = 0
        while True:
            try:
                with self.session() as session:
                    return fn(session, *args, **kwargs)
            except OperationalError as exc:
                attempt += 1
                if attempt > LOCK_RETRIES or not _sqlite_snapshot_conflict(exc):
                    raise
                time.sleep(random.uniform(0, 0.005 * attempt))

    async def run(
        self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return await asyncio.to_thread(functools.partial(self.call, fn, *args, **kwargs))


def insert_ignoring_existing(
    session: Session, table: Table, rows: list[dict[str, object]], unique: list[str]
) -> None:
    """Insert rows, skipping those whose `unique` columns match a row already there, even
    one that a concurrent transaction commits meanwhile (INSERT ... ON CONFLICT DO
    NOTHING): two requests seeding the same rows at once both succeed."""
    dialect = session.get_bind().dialect.name
    for start in range(0, len(rows), 1000):
        batch = rows[start : start + 1000]
        statement: Any
        if dialect == "postgresql":
            statement = pg_insert(table).on_conflict_do_nothing(index_elements=unique)
        elif dialect == "sqlite":
            statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=unique)
        else:
            statement = sa_insert(table)
        session.execute(statement, batch)


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) means the database could not be reached or the
    connection broke: an operational error of the driver (connection refused, server shut
    down, SQLite busy), an invalidated connection, or no connection free in the pool."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
            return True
        if _driver_operational(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _driver_operational(error: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
