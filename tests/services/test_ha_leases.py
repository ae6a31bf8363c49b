"""Leases on outbox rows being sent (issue 15, Deliver 4): a second process starting, or a
worker's periodic recovery, takes back only rows whose lease expired; a worker writes an
outcome only for a row it still holds; a new leader takes back the rows of the one it
replaced. Migration 0016 (leases, the leader's row, the update inbox). On a real, migrated
database (SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel, select

from models import OutboxMessage, OutboxStatus, OutcomeCode, Priority
from models.db import alembic_config, schema_revision, upgrade
from services import clock, outbox
from services.duty_channels import worker as channels
from services.outbox.claim import claim_due
from services.outbox.leases import (
    new_owner,
    process_node,
    reclaim,
    reclaim_all,
    recover_interrupted,
    renew_leases,
)
from services.outbox.outcomes import Outcome, record_outcomes


def _queue(db, count: int, prefix: str = "m") -> None:
    for n in range(count):
        db.call(
            outbox.enqueue,
            chat_id=100 + n,
            text=f"SOS {n}",
            priority=Priority.EMERGENCY,
            idempotency_key=f"{prefix}:{n}",
        )


def _queue_wecom(db, key: str) -> None:
    db.call(
        outbox.enqueue,
        chat_id=0,
        text="SOS",
        priority=Priority.EMERGENCY,
        idempotency_key=key,
        channel="wecom",
        target="duty_group:1",
    )


def _rows(db) -> list[OutboxMessage]:
    with db.session() as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_second_worker_starting_leaves_the_live_workers_rows_alone(db):
    """The bug measured in the issue: 40 of 40 claimed rows were re-claimed by a second
    process at its start. Now none are while the first worker's lease lives, and all are
    once it expired (that worker died)."""
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False) as traveller:
        _queue(db, 40)
        first = new_owner("telegram")
        second = new_owner("telegram")
        claimed = db.call(claim_due, 100, owner=first, lease=30)
        assert len(claimed) == 40
        assert {r.lease_owner for r in _rows(db)} == {first}
        assert db.call(recover_interrupted, second) == 0  # the second one's start
        assert db.call(claim_due, 100, owner=second, lease=30) == []
        traveller.shift(29)
        assert db.call(recover_interrupted, second) == 0
        traveller.shift(2)  # the first worker died: nobody renewed its leases
        assert db.call(recover_interrupted, second) == 40
        rows = _rows(db)
        assert {r.status for r in rows} == {OutboxStatus.PENDING}
        assert {r.outcome_code for r in rows} == {OutcomeCode.RESTART}
        assert {r.lease_owner for r in rows} == {None}
        assert len(db.call(claim_due, 100, owner=second, lease=30)) == 40


def test_renewing_keeps_the_lease_and_recovery_never_takes_the_callers_own_rows(db):
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False) as traveller:
        _queue(db, 3)
        owner, other = new_owner("telegram"), new_owner("telegram")
        ids = [c.id for c in db.call(claim_due, 10, owner=owner, lease=30)]
        for _ in range(5):
            traveller.shift(20)
            assert db.call(renew_leases, owner, ids, 30) == 3
            assert db.call(recover_interrupted, other) == 0
        assert db.call(renew_leases, other, ids, 30) == 0  # not its rows
        traveller.shift(60)  # expired, but the owner itself knows what it holds
        assert db.call(recover_interrupted, owner) == 0
        assert db.call(recover_interrupted, other) == 3


def test_an_outcome_is_written_only_by_the_owner_still_holding_the_row(db):
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False) as traveller:
        _queue(db, 2)
        old, new = new_owner("telegram"), new_owner("telegram")
        first, second = db.call(claim_due, 10, owner=old, lease=30)
        # The first is sent and recorded in time; the second's lease expires meanwhile and
        # another worker takes it back and claims it.
        sent = Outcome(first.id, first.chat_id, OutboxStatus.SENT, OutcomeCode.SENT)
        db.call(record_outcomes, [sent], owner=old)
        traveller.shift(31)
        assert db.call(recover_interrupted, new) == 1
        (again,) = db.call(claim_due, 10, owner=new, lease=30)
        assert again.id == second.id
        late = Outcome(second.id, second.chat_id, OutboxStatus.FAILED, OutcomeCode.BLOCKED)
        db.call(record_outcomes, [late], owner=old)  # dropped: not its row any more
        by_id = {r.id: r for r in _rows(db)}
        assert by_id[first.id].status == OutboxStatus.SENT
        assert by_id[first.id].lease_owner is None
        assert by_id[second.id].status == OutboxStatus.SENDING
        assert by_id[second.id].lease_owner == new
        mine = Outcome(second.id, second.chat_id, OutboxStatus.SENT, OutcomeCode.SENT)
        db.call(record_outcomes, [mine], owner=new)
        assert {r.status for r in _rows(db)} == {OutboxStatus.SENT}


def test_a_part_sent_keeps_the_lease_and_a_retry_gives_it_up(db):
    _queue(db, 2)
    owner = new_owner("telegram")
    first, second = db.call(claim_due, 10, owner=owner, lease=30)
    part = Outcome(first.id, first.chat_id, OutboxStatus.SENDING, None, parts_sent=1)
    retry = Outcome(
        second.id,
        second.chat_id,
        OutboxStatus.PENDING,
        OutcomeCode.RETRY,
        retry_at=clock.now() + timedelta(seconds=1),
    )
    db.call(record_outcomes, [part, retry], owner=owner)
    by_id = {r.id: r for r in _rows(db)}
    assert by_id[first.id].lease_owner == owner and by_id[first.id].parts_sent == 1
    assert by_id[second.id].lease_owner is None
    assert by_id[second.id].lease_expires_at is None


def test_a_new_leader_takes_back_the_rows_of_the_process_it_replaced(db):
    """Live leases or not: the process that lost the leadership can no longer send."""
    _queue(db, 3)
    _queue_wecom(db, "wecom:1")
    node = process_node()
    assert len(db.call(claim_due, 10, owner=new_owner("telegram"), lease=30)) == 3
    assert len(db.call(channels.claim_due, 10, owner=new_owner("channels"), lease=30)) == 1
    assert db.call(reclaim, "telegram", node="another-host:1:abc") == 0
    assert db.call(reclaim, "telegram", node=node) == 3
    assert db.call(reclaim, "other", node=node, attempt=False) == 1
    assert {r.status for r in _rows(db)} == {OutboxStatus.PENDING}


def test_channel_rows_are_leased_too(db):
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False) as traveller:
        _queue_wecom(db, "wecom:2")
        owner, other = new_owner("channels"), new_owner("channels")
        assert len(db.call(channels.claim_due, 10, owner=owner, lease=30)) == 1
        assert db.call(channels.recover_interrupted, other) == 0
        traveller.shift(31)
        assert db.call(channels.recover_interrupted, other) == 1


def test_the_only_process_that_may_send_takes_back_everything_at_its_start(db):
    """`cadre-bot run` holding the SQLite file's lock, or a new PostgreSQL leader: rows
    left sending by anyone are sent again at once, live leases or not."""
    _queue(db, 2)
    _queue_wecom(db, "wecom:3")
    db.call(claim_due, 10, owner="dead-host:1:abc/telegram1", lease=30)
    db.call(channels.claim_due, 10, owner="dead-host:1:abc/channels2", lease=30)
    assert db.call(recover_interrupted, new_owner("telegram")) == 0
    assert db.call(reclaim_all) == 3
    assert {r.status for r in _rows(db)} == {OutboxStatus.PENDING}


def test_migration_0016_matches_the_tables_and_goes_down_and_up_again(engine):
    """The tables as the models say; down to 0015 (outbox ids stay AUTOINCREMENT on
    SQLite: the table is rebuilt) and up again."""
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    mine = ("'ha_leader'", "'update_inbox'", "lease_owner", "lease_expires_at")
    assert [d for d in diff if any(name in repr(d) for name in mine)] == []
    try:
        command.downgrade(alembic_config(engine), "0015")
        assert schema_revision(engine) == "0015"
        tables = inspect(engine).get_table_names()
        assert "ha_leader" not in tables and "update_inbox" not in tables
        columns = {c["name"] for c in inspect(engine).get_columns("outbox")}
        assert "lease_owner" not in columns
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                sql = connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'outbox'"
                ).scalar()
            assert "AUTOINCREMENT" in sql
    finally:
        upgrade(engine)
    assert {"ha_leader", "update_inbox"} <= set(inspect(engine).get_table_names())
