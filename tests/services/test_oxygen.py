"""Oxygen requests without Telegram: who is told, the first acknowledgement wins, the
cadre sees each change, urgent requests escalate once, and bad input changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import select

from models import (
    AuditEntry,
    OutboxMessage,
    OxygenEvent,
    OxygenRequest,
    OxygenStatus,
    Priority,
    Role,
)
from services import oxygen, roster
from services.care.rules import CareError
from services.oxygen import OxygenConfig
from tests.support import factories

ZONE = ZoneInfo("Asia/Shanghai")
CFG = OxygenConfig(zone=ZONE, escalation=timedelta(minutes=15))
START = datetime(2026, 3, 10, 22, 0, tzinfo=ZONE)
NO_SCHEDULE = {"assignment_start": None}


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def team(db):
    """A cadre in Ganzi, two Ganzi duty officers, one in Aba, and the admin."""
    admin = factories.admin(db)
    cadre = factories.person(db, 1001)
    duty = factories.person(db, 2001, role=Role.DUTY_OFFICER, real_name="Zhou Duty", **NO_SCHEDULE)
    duty2 = factories.person(db, 2002, role=Role.DUTY_OFFICER, real_name="Qian Duty", **NO_SCHEDULE)
    aba = factories.person(
        db,
        2003,
        role=Role.DUTY_OFFICER,
        prefecture="aba",
        county="aba.barkam",
        **NO_SCHEDULE,
    )
    return {"admin": admin, "cadre": cadre, "duty": duty, "duty2": duty2, "aba": aba}


def messages(db, chat_id: int | None = None) -> list[OutboxMessage]:
    with db.session() as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if chat_id is not None:
            query = query.where(OutboxMessage.chat_id == chat_id)
        return list(s.exec(query))


def request(db, team, urgency="urgent", place="县委宿舍 3 号楼") -> OxygenRequest:
    return db.call(oxygen.create_request, team["cadre"].id, "cylinder", place, urgency, CFG)


def test_the_officer_on_duty_gets_the_request_and_it_escalates_once_when_unacknowledged(
    db, team, clock
):
    db.call(roster.go_on_duty, team["duty"], 8)
    created = request(db, team)
    first = messages(db, team["duty"].telegram_id)
    assert [m.priority for m in first] == [Priority.URGENT]
    assert "Li Wei" in first[0].payload["text"] and "县委宿舍" in first[0].payload["text"]
    buttons = [b["callback_data"] for b in first[0].payload["reply_markup"]["inline_keyboard"][0]]
    assert buttons == [f"ox:ack:{created.id}", f"ox:dlv:{created.id}"]
    assert messages(db, team["duty2"].telegram_id) == [] and messages(db, 9001) == []
    assert db.call(oxygen.pending_escalations, CFG) == [(created.id, clock_now() + CFG.escalation)]

    clock.move_to(START + timedelta(minutes=14))
    assert db.call(oxygen.escalate_due, clock_now(), CFG) == []
    clock.move_to(START + timedelta(minutes=15))
    assert db.call(oxygen.escalate_due, clock_now(), CFG) == [created.id]
    assert db.call(oxygen.escalate_due, clock_now(), CFG) == []  # once
    escalated = {m.chat_id for m in messages(db) if ":e:" in m.idempotency_key}
    assert escalated == {2001, 2002, 9001}  # the prefecture's officers and the admins
    told = messages(db, team["cadre"].telegram_id)
    assert len(told) == 1 and "120" in told[0].payload["text"]
    assert db.call(oxygen.pending_escalations, CFG) == []


def clock_now() -> datetime:
    from services import clock

    return clock.now()


def test_with_nobody_on_duty_everybody_is_told_at_once(db, team, clock):
    created = request(db, team)
    assert {m.chat_id for m in messages(db)} == {2001, 2002, 9001}
    assert created.escalated_at is not None  # already at the widest tier
    assert db.call(oxygen.pending_escalations, CFG) == []


def test_the_first_acknowledgement_wins_and_everybody_sees_it(db, team, clock):
    created = request(db, team, urgency="today")
    with db.session() as s:  # the notices went out (the delivery worker records this)
        for row in s.exec(select(OutboxMessage)):
            row.status, row.telegram_message_id = "sent", 500 + row.id
            s.add(row)
    won = db.call(oxygen.acknowledge, team["duty"], created.id, CFG)
    taken = db.call(oxygen.acknowledge, team["duty2"], created.id, CFG)
    assert won.outcome == "won" and taken.outcome == "taken" and taken.by.id == team["duty"].id
    edits = [m for m in messages(db) if m.kind == "edit"]
    assert {e.chat_id for e in edits} == {2001, 2002, 9001}
    assert all("Zhou Duty" in e.payload["text"] for e in edits)
    assert all(
        [b["callback_data"] for b in e.payload["reply_markup"]["inline_keyboard"][0]]
        == [f"ox:dlv:{created.id}"]
        for e in edits
    )
    told = messages(db, team["cadre"].telegram_id)
    assert "acknowledged" in told[-1].payload["text"]

    clock.move_to(START + timedelta(hours=2))
    delivered = db.call(oxygen.deliver, team["duty2"], created.id, CFG)
    assert delivered.outcome == "won"
    assert db.call(oxygen.deliver, team["duty"], created.id, CFG).outcome == "closed"
    assert "delivered" in messages(db, team["cadre"].telegram_id)[-1].payload["text"]
    events = [e.event for e in db.call(oxygen.timeline, created.id)]
    assert events == ["open", "acknowledged", "delivered"]


def test_an_officer_of_another_area_is_refused_and_audited(db, team, clock):
    created = request(db, team)
    refused = db.call(oxygen.acknowledge, team["aba"], created.id, CFG)
    assert refused.outcome == "refused"
    assert db.call(oxygen.deliver, team["cadre"], created.id, CFG).outcome == "refused"
    with db.session() as s:
        row = s.get(OxygenRequest, created.id)
        denials = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
    assert row.status == OxygenStatus.OPEN
    assert [d.detail["reason"] for d in denials] == ["area", "area"]


def test_only_the_requester_cancels_and_a_cancelled_request_is_closed(db, team, clock):
    created = request(db, team)
    assert db.call(oxygen.cancel, team["duty"].id, created.id, CFG).outcome == "refused"
    assert db.call(oxygen.cancel, team["cadre"].id, created.id, CFG).outcome == "won"
    assert db.call(oxygen.acknowledge, team["duty"], created.id, CFG).outcome == "closed"
    clock.move_to(START + timedelta(hours=1))
    assert db.call(oxygen.escalate_due, clock_now(), CFG) == []


@pytest.mark.parametrize(
    ("what", "place", "urgency", "key"),
    [
        ("cylinder", "   ", "urgent", "care.invalid.empty"),
        ("cylinder", "x" * 101, "urgent", "care.invalid.too_long"),
        ("balloon", "office", "urgent", "care.stale"),
        ("cylinder", "office", "whenever", "care.stale"),
    ],
)
def test_bad_input_changes_nothing(db, team, clock, what, place, urgency, key):
    with pytest.raises(CareError) as caught:
        db.call(oxygen.create_request, team["cadre"].id, what, place, urgency, CFG)
    assert caught.value.key == key
    with db.session() as s:
        assert s.exec(select(OxygenRequest)).all() == [] and s.exec(select(OxygenEvent)).all() == []
    assert messages(db) == []


def test_too_many_open_requests_are_refused(db, team, clock):
    for _ in range(oxygen.MAX_OPEN):
        request(db, team, urgency="days")
    with pytest.raises(CareError) as caught:
        request(db, team, urgency="days")
    assert caught.value.key == "care.ox.too_many"


def test_a_contact_or_suspended_person_cannot_request(db, team, clock):
    from models import Status
    from services import people

    db.call(people.set_status, team["admin"], team["cadre"].id, Status.SUSPENDED)
    with pytest.raises(CareError):
        request(db, team)


def test_the_requests_are_in_the_cadres_export_and_go_with_their_deletion(db, team, clock):
    from services import people
    from services.care import records

    created = request(db, team)
    exported = db.call(records.export_for_person, team["cadre"].id)
    assert [r["id"] for r in exported["oxygen_requests"]] == [created.id]
    assert [e["event"] for e in exported["oxygen_events"]] == ["open", "escalated"]
    db.call(people.delete_own_data, team["cadre"].telegram_id)
    with db.session() as s:
        assert s.exec(select(OxygenRequest)).all() == [] and s.exec(select(OxygenEvent)).all() == []
