"""The outbox and broadcast services on a real, migrated database (no Telegram)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import time_machine
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel, select

from models import (
    Audience,
    BroadcastRecipient,
    OutboxMessage,
    OutboxStatus,
    OutcomeCode,
    PersonTag,
    Priority,
    Role,
)
from services import broadcasts, clock, outbox, own_data, people
from services.broadcasts import Draft
from services.outbox import NewMessage
from services.outbox.claim import claim_due, next_due_at
from services.outbox.leases import recover_interrupted
from services.outbox.outcomes import Outcome, record_outcomes
from services.outbox.wakeup import add_enqueue_listener, remove_enqueue_listener
from tests.support import factories

MINE = {"outbox", "broadcast", "broadcast_recipient", "person_tag"}


def test_the_migration_matches_the_tables(engine):
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    mine = [d for d in diff if any(f"'{name}'" in repr(d) for name in MINE)]
    mine += [d for d in diff if "unreachable" in repr(d)]
    assert mine == []


def test_an_idempotency_key_queues_once_and_a_commit_wakes_the_worker(db):
    woken: list[int] = []
    add_enqueue_listener(woken.append)
    try:
        first = db.call(
            outbox.enqueue,
            chat_id=1,
            text="hi",
            priority=Priority.URGENT,
            idempotency_key="k1",
        )
        again = db.call(outbox.enqueue, chat_id=1, text="other", idempotency_key="k1")
        added = db.call(
            outbox.enqueue_many,
            [NewMessage(chat_id=2, idempotency_key=f"m{i}") for i in range(3)]
            + [NewMessage(chat_id=2, idempotency_key="k1"), NewMessage(2, "m0")],
        )
    finally:
        remove_enqueue_listener(woken.append)
    assert first.id == again.id and again.payload["text"] == "hi"
    assert added == 3
    assert woken == [int(Priority.URGENT), int(Priority.REMINDER)]  # not for the duplicate

    def failing(session):
        outbox.enqueue(session, chat_id=1, text="x", idempotency_key="k2")
        raise RuntimeError("rolled back")

    add_enqueue_listener(woken.append)
    try:
        try:
            db.call(failing)
        except RuntimeError:
            pass
    finally:
        remove_enqueue_listener(woken.append)
    assert len(woken) == 2 and db.call(outbox.find, "k2") is None


def test_claims_go_by_priority_then_age_and_skip_what_is_not_due(db):
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False) as traveller:
        db.call(outbox.enqueue, chat_id=1, idempotency_key="b", priority=Priority.BROADCAST)
        traveller.shift(1)
        db.call(outbox.enqueue, chat_id=1, idempotency_key="r", priority=Priority.REMINDER)
        db.call(outbox.enqueue, chat_id=1, idempotency_key="e", priority=Priority.EMERGENCY)
        later = db.call(outbox.enqueue, chat_id=1, idempotency_key="later")
        db.call(_postpone, later.id, clock.now() + timedelta(minutes=5))
        claimed = db.call(claim_due, 10)
        assert [c.idempotency_key for c in claimed] == ["e", "r", "b"]
        assert db.call(claim_due, 10) == []  # taken: status sending
        assert db.call(next_due_at) == clock.now() + timedelta(minutes=5)
        assert db.call(recover_interrupted) == 3
        urgent_only = db.call(claim_due, 10, below_priority=int(Priority.REMINDER))
        assert [c.idempotency_key for c in urgent_only] == ["e"]


def _postpone(session, message_id, when):
    row = session.get(OutboxMessage, message_id)
    row.next_attempt_at = when
    session.add(row)


def test_outcomes_are_recorded_with_their_cause_and_unreachable_people_reported_once(db):
    admin = factories.admin(db)
    gone = factories.person(db, 1001, real_name="Zhou Min")
    for n in range(2):
        db.call(outbox.enqueue, chat_id=1001, person_id=gone.id, idempotency_key=f"g{n}")
    claimed = db.call(claim_due, 10)
    outcomes = [
        Outcome(
            id=c.id,
            chat_id=c.chat_id,
            status=OutboxStatus.FAILED,
            code=OutcomeCode.BLOCKED,
            detail="Forbidden: bot was blocked by the user",
            source=c.source,
        )
        for c in claimed
    ]
    newly = db.call(record_outcomes, outcomes[:1])
    assert newly == [gone.id]
    assert db.call(record_outcomes, outcomes[1:]) == []  # already known
    row = db.call(outbox.find, "g0")
    assert (row.status, row.outcome_code, row.attempts) == (OutboxStatus.FAILED, "blocked", 1)
    assert "blocked by the user" in row.outcome
    with db.session() as session:
        notices = session.exec(
            select(OutboxMessage).where(OutboxMessage.source == "delivery:unreachable")
        ).all()
    assert [n.chat_id for n in notices] == [admin.telegram_id]
    assert "Zhou Min" in notices[0].payload["text"]
    assert db.call(people.find, 1001).unreachable_reason == "blocked"

    db.call(outbox.enqueue, chat_id=1001, person_id=gone.id, idempotency_key="back")
    (back,) = [c for c in db.call(claim_due, 10) if c.idempotency_key == "back"]
    db.call(
        record_outcomes,
        [
            Outcome(
                id=back.id,
                chat_id=1001,
                status=OutboxStatus.SENT,
                code=OutcomeCode.SENT,
                telegram_message_id=77,
            )
        ],
    )
    assert db.call(people.find, 1001).unreachable_since is None
    assert db.call(outbox.find, "back").telegram_message_id == 77


def test_an_edit_waits_for_its_message_and_only_the_latest_text_counts(db):
    db.call(outbox.enqueue, chat_id=5, text="original", idempotency_key="orig")
    first = db.call(outbox.enqueue_edit, edit_of="orig", text="v1", source="s")
    second = db.call(outbox.enqueue_edit, edit_of="orig", text="v2", source="s")
    assert (
        first.id == second.id
        and db.call(outbox.find, second.idempotency_key).payload["text"] == "v2"
    )
    assert db.call(outbox.enqueue_edit, edit_of="nothing", text="x") is None
    claimed = db.call(claim_due, 10)
    assert [c.idempotency_key for c in claimed] == ["orig"]  # the edit waits for it
    db.call(
        record_outcomes,
        [
            Outcome(
                id=claimed[0].id,
                chat_id=5,
                status=OutboxStatus.SENT,
                code=OutcomeCode.SENT,
                telegram_message_id=42,
            )
        ],
    )
    with time_machine.travel(clock.now() + timedelta(seconds=2), tick=False):
        (edit,) = db.call(claim_due, 10)
    assert edit.payload["message_id"] == 42 and edit.target_kind == "text"


def test_audiences_exclude_contacts_and_inactive_people(db, monkeypatch):
    monkeypatch.setattr(broadcasts, "_overdue_sources", {})  # only this test's source
    admin = factories.admin(db)
    cadre = factories.person(db, 1001, prefecture="aba", county="aba.barkam")
    officer = factories.person(db, 1002, role=Role.DUTY_OFFICER)
    factories.person(db, 1003, approve=False)
    factories.person(db, 1004, role=Role.CONTACT)
    everyone = db.call(broadcasts.audience_people, Audience.ALL, None)
    assert {p.telegram_id for p in everyone} == {admin.telegram_id, 1001, 1002}
    aba = db.call(broadcasts.audience_people, Audience.PREFECTURE, "aba")
    assert [p.id for p in aba] == [cadre.id]
    officers = db.call(broadcasts.audience_people, Audience.ROLE, "duty_officer")
    assert [p.id for p in officers] == [officer.id]
    assert db.call(broadcasts.audience_people, Audience.OVERDUE, None) == []
    broadcasts.register_overdue_source("test", lambda session: [cadre.id, 999])
    overdue = db.call(broadcasts.audience_people, Audience.OVERDUE, None)
    assert [p.id for p in overdue] == [cadre.id]
    db.call(broadcasts.tag_people, admin, "spring", ["1001", f"#{officer.id}", "#424242"])
    tagged = db.call(broadcasts.audience_people, Audience.TAG, "spring")
    assert {p.id for p in tagged} == {cadre.id, officer.id}
    assert db.call(broadcasts.tags) == [("spring", 2)]
    db.call(broadcasts.untag_people, admin, "spring", ["1001"])
    assert db.call(broadcasts.tags) == [("spring", 1)]
    assert broadcasts.normalize_tag(" Spring-2026 ") == "spring-2026"
    assert broadcasts.normalize_tag("no spaces") is None


def test_a_broadcast_is_queued_once_and_its_counts_follow_the_outbox(db):
    admin = factories.admin(db)
    for n in range(3):
        factories.person(db, 1001 + n, language="en" if n else "zh-Hans")
    draft = Draft(kind="text", texts={"zh-Hans": "中文", "en": "English"}, confirm_required=True)
    broadcast = db.call(broadcasts.create, admin, admin.telegram_id, draft)
    assert db.call(broadcasts.start, broadcast.id) is None  # only once
    rows = db.call(broadcasts.recipients, broadcast.id)
    assert len(rows) == 4 and {r.status for r in rows} == {"pending"}
    with db.session() as session:
        texts = {
            m.chat_id: m.payload["text"]
            for m in session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.source == broadcasts.source_of(broadcast.id)
                )
            )
        }
    assert "中文" in texts[1001] and "English" in texts[1002]
    assert db.call(broadcasts.report_progress) == []
    claimed = {c.chat_id: c for c in db.call(claim_due, 20) if c.source}
    outcomes = [
        Outcome(
            id=claimed[chat].id,
            chat_id=chat,
            status=status,
            code=code,
            source=claimed[chat].source,
        )
        for chat, status, code in [
            (1001, OutboxStatus.SENT, OutcomeCode.SENT),
            (1002, OutboxStatus.SENT, OutcomeCode.SENT),
            (1003, OutboxStatus.FAILED, OutcomeCode.DEACTIVATED),
            (admin.telegram_id, OutboxStatus.FAILED, OutcomeCode.BAD_REQUEST),
        ]
    ]
    db.call(record_outcomes, outcomes)
    assert db.call(broadcasts.confirm, broadcast.id, 1001) == "ok"
    assert db.call(broadcasts.confirm, broadcast.id, 1001) == "already"
    assert db.call(broadcasts.confirm, broadcast.id, 5555) == "unknown"
    assert db.call(broadcasts.report_progress) == [broadcast.id]
    stats = db.call(broadcasts.stats, db.call(broadcasts.get, broadcast.id))
    assert (stats.sent, stats.blocked, stats.failed, stats.confirmed) == (2, 1, 1, 1)
    assert db.call(broadcasts.resend_unconfirmed, admin, broadcast.id) == 1  # 1002 only
    data = db.call(broadcasts.csv_export, admin, broadcast.id, admin_zone())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    status = {int(r["telegram_id"]): (r["status"], r["messages"]) for r in rows}
    assert status == {
        admin.telegram_id: ("failed", "1"),
        1001: ("sent", "1"),
        1002: ("pending", "2"),  # the re-send is waiting
        1003: ("blocked", "1"),
    }
    assert [r["confirmed_at"][:2] for r in rows if r["telegram_id"] == "1001"] == ["20"]


def admin_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def test_my_data_includes_broadcasts_and_deleting_a_person_deletes_their_messages(db):
    admin = factories.admin(db)
    person = factories.person(db, 1001)
    db.call(broadcasts.tag_people, admin, "cohort", ["1001"])
    draft = Draft(
        kind="text", texts={"en": "Hello"}, audience=Audience.TAG, audience_value="cohort"
    )
    broadcast = db.call(broadcasts.create, admin, admin.telegram_id, draft)
    exported = db.call(own_data.export, 1001)["broadcasts_and_messages"]
    assert exported["tags"] == ["cohort"]
    assert exported["broadcasts_received"] == [{"broadcast": broadcast.id, "confirmed_at": None}]
    assert [m["source"] for m in exported["messages"]] == [f"broadcast:{broadcast.id}"]
    assert "Hello" not in str(exported)
    db.call(people.delete_own_data, 1001)
    with db.session() as session:
        for table in (OutboxMessage, BroadcastRecipient, PersonTag):
            assert session.exec(select(table).where(table.person_id == person.id)).all() == []
