"""SIGTERM (systemctl stop) during the start-up of a real `cadre-bot run`: during the
database migration, and while the Application's updater registers (or deletes) its
webhook, the last start-up step. The process stops with exit code 0, no traceback in its
log, and on PostgreSQL the leadership lock is given back. Each moment is held open by the
test (the migration lock held, the Bot API slow), so the signal lands inside it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from bot.leader import LOCK_KEY
from emulator.faults import Fault
from models.db import MIGRATION_LOCK_KEY, head_revision, make_engine
from tests.e2e.test_ha_e2e import eventually
from tests.e2e.test_webhook_e2e import webhook_process
from tests.support.sos_support import BotProcess, process_env, staff

pytestmark = pytest.mark.e2e


def lock_is_free(db) -> bool:
    with db.engine.connect() as connection:
        free = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
        if not free.scalar():
            return False
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
    return True


@pytest.mark.parametrize(
    ("mode", "step"), [("polling", "deleteWebhook"), ("webhook", "setWebhook")]
)
async def test_sigterm_while_the_updater_starts_exits_0_without_a_traceback(
    emulator, db, database_url, tmp_path, mode, step
):
    """PTB's own signal handler raised SystemExit in the middle of this step: exit code 0,
    but 'Task exception was never retrieved ... cannot reuse already awaited coroutine' in
    the log. Now the step finishes, the Application starts and stops at once."""
    staff(db)
    if mode == "webhook":
        process, _port, _url = webhook_process(
            emulator, database_url, tmp_path, CADRE_LOG_LEVEL="INFO"
        )
    else:
        process = BotProcess(process_env(emulator, database_url, CADRE_LOG_LEVEL="INFO"), tmp_path)
    emulator.faults.add(Fault.slow(2), methods=step, times=1)  # within the read timeout
    await process.start()
    await emulator.wait_for_request(step, finished=False, timeout=90)
    code, log = await process.stop()
    assert code == 0, log
    assert "Traceback" not in log and "never retrieved" not in log, log
    assert "Application.stop() complete" in log, log
    if database_url.startswith("postgresql"):
        assert lock_is_free(db)


async def test_sigterm_during_the_migration_lets_it_finish_then_exits_0(
    emulator, db, database_url, tmp_path
):
    """SIGTERM while `run` migrates the schema killed the process (-15): a migration cut
    off half-way (SQLite's schema changes are not transactional) is not safe. Now it
    finishes and the process exits 0. The test holds the migration lock, so the process is
    migrating (waiting its turn) when the signal comes; it migrates a fresh schema."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the migration lock, which holds the moment open, is PostgreSQL's")
    schema = "startup_stop"
    fresh = f"{database_url}?options=-csearch_path%3D{schema}"
    with db.engine.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
        connection.commit()
    holder = db.engine.connect()
    process = BotProcess(process_env(emulator, fresh, CADRE_LOG_LEVEL="INFO"), tmp_path)
    try:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        await process.start()
        assert process.process is not None
        await eventually(lambda: "migrating the schema" in process.log_path.read_text(), 90)
        process.process.terminate()
        await eventually(
            lambda: "stop during the database migration" in process.log_path.read_text()
        )
        assert process.process.returncode is None  # not killed: it waits to migrate
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        code = await asyncio.wait_for(process.process.wait(), 90)
        _, log = await process.stop()
        assert code == 0, log
        assert "Traceback" not in log, log
        assert "once the database migration had finished" in log, log
        engine = make_engine(fresh)
        try:
            with engine.connect() as connection:
                version = connection.execute(text("SELECT version_num FROM alembic_version"))
                assert version.scalar() == head_revision(engine)
        finally:
            engine.dispose()
    finally:
        if process.process is not None and process.process.returncode is None:
            await process.stop(9)
        holder.close()
        with db.engine.connect() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.commit()
