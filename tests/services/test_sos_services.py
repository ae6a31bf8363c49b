"""The emergency channel's services on a real, migrated database, time controlled."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import select

from models import (
    Alert,
    AlertEvent,
    AlertStatus,
    AuditEntry,
    DirectoryEntry,
    DutyShift,
    OutboxMessage,
    OutboxStatus,
    OutcomeCode,
    Person,
    Priority,
    Role,
    Status,
)
from services import contact_links, directory, people, roster
from services.alerts import coverage, policy, raising, respond, timeline
from services.outbox.outcomes import Outcome, record_outcomes
from services.outbox.reachability import mark_unreachable
from tests.support import factories

ZONE = ZoneInfo("Asia/Shanghai")
POLICY = policy.Policy(ack_timeout=180, repeat_interval=300, zone=ZONE)
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai, a Tuesday


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def officer(db, telegram_id, prefecture="ganzi", county="ganzi.kangding", name="Officer"):
    return factories.person(
        db,
        telegram_id,
        role=Role.DUTY_OFFICER,
        prefecture=prefecture,
        county=county,
        real_name=name,
        language="zh-Hans",
    )


@pytest.fixture
def world(db, clock):
    """A cadre in Litang (Ganzi), two Ganzi officers (one on duty), an Aba officer, the admin."""
    cadre = factories.person(db, 1001, real_name="Li Wei")
    on_duty = officer(db, 2001, name="Zhang On")
    off_duty = officer(db, 2002, name="Wang Off")
    aba = officer(db, 2003, prefecture="aba", county="aba.barkam", name="Aba Officer")
    db.call(roster.go_on_duty, on_duty, None)
    admin = db.call(people.find, factories.ADMIN_ID)
    return {"cadre": cadre, "on": on_duty, "off": off_duty, "aba": aba, "admin": admin}


def messages(db, alert_id, kind="text"):
    with db.session() as s:
        rows = s.exec(
            select(OutboxMessage)
            .where(OutboxMessage.source == f"alert:{alert_id}", OutboxMessage.kind == kind)
            .order_by(OutboxMessage.id)
        )
        return list(rows)


def chats(rows):
    return sorted(r.chat_id for r in rows)


def deliver(db, alert_id):
    """What the delivery worker does: every message waiting is sent (ids 100, 101...)."""
    with db.session() as s:
        rows = s.exec(
            select(OutboxMessage).where(
                OutboxMessage.source == f"alert:{alert_id}",
                OutboxMessage.status == OutboxStatus.PENDING,
            )
        ).all()
        outcomes = [
            Outcome(
                id=r.id,
                chat_id=r.chat_id,
                status=OutboxStatus.SENT,
                code=OutcomeCode.SENT,
                telegram_message_id=100 + r.id,
                source=r.source,
            )
            for r in rows
        ]
    db.call(record_outcomes, outcomes)


def raise_sos(db, person, **kwargs):
    return db.call(raising.raise_alert, person_id=person.id, cause="sos", policy=POLICY, **kwargs)


# ---------------------------------------------------------------------------- raising


def test_the_sos_is_stored_and_queued_at_emergency_priority_for_the_officer_on_duty(db, world):
    alert_id = raise_sos(db, world["cadre"])
    sent = messages(db, alert_id)
    assert chats(sent) == [2001]
    message = sent[0]
    assert message.priority == Priority.EMERGENCY
    assert "紧急求助" in message.payload["text"] and "Li Wei" in message.payload["text"]
    assert "4014" in message.payload["text"]
    keyboard = message.payload["reply_markup"]["inline_keyboard"]
    buttons = [b["callback_data"] for row in keyboard for b in row]
    assert buttons == [
        f"sos:ack:{alert_id}",
        f"sos:res:{alert_id}",
        f"sos:info:{alert_id}",
        f"sos:tl:{alert_id}",
    ]
    alert = db.call(policy.get, alert_id)
    assert alert.status == AlertStatus.OPEN and alert.stage == 1
    assert alert.next_escalation_at == T0 + timedelta(seconds=180)
    assert alert.prefecture == "ganzi"


def test_nobody_on_duty_alerts_every_officer_of_the_prefecture_and_the_admins(db, world):
    db.call(roster.go_off_duty, world["on"])
    alert_id = raise_sos(db, world["cadre"])
    assert chats(messages(db, alert_id)) == [2001, 2002, factories.ADMIN_ID]
    alert = db.call(policy.get, alert_id)
    assert alert.stage == 2


def test_a_weekly_shift_puts_an_officer_on_duty_in_the_configured_time_zone(db, world, clock):
    db.call(roster.go_off_duty, world["on"])
    # Tuesday 08:00-20:00 Asia/Shanghai; T0 is 10:00 there (02:00 UTC).
    db.call(roster.add_shifts, world["admin"], world["off"].id, "ganzi", [1], "day")
    alert_id = raise_sos(db, world["cadre"])
    assert chats(messages(db, alert_id)) == [2002]


@pytest.mark.parametrize(
    ("local", "covered"),
    [
        ("2026-12-01 21:00", True),  # Tuesday night, in the 20:00-08:00 shift
        ("2026-12-02 07:59", True),  # Wednesday morning, still the Tuesday shift
        ("2026-12-02 08:00", False),
        ("2026-12-01 19:59", False),
    ],
)
def test_a_night_shift_runs_past_midnight(local, covered):
    shift = DutyShift(person_id=1, prefecture="ganzi", weekday=1, start_minute=1200, end_minute=480)
    moment = datetime.fromisoformat(local).replace(tzinfo=ZONE)
    assert roster.shift_covers(shift, moment) is covered


def test_onduty_for_some_hours_ends_by_itself(db, world, clock):
    db.call(roster.go_off_duty, world["on"])
    db.call(roster.go_on_duty, world["off"], 4)
    with db.session() as s:
        assert [p.id for p in roster.on_duty_now(s, "ganzi", T0, ZONE)] == [world["off"].id]
        later = T0 + timedelta(hours=4, seconds=1)
        assert roster.on_duty_now(s, "ganzi", later, ZONE) == []


def test_the_cadres_joined_contacts_are_told_and_the_cadre_is_never_alerted(db, world):
    invitation = db.call(contact_links.create_invitation, world["cadre"])
    contact = db.call(
        people.submit_registration,
        3001,
        "Mum",
        factories.draft(invitation=invitation.code, real_name="Wang Fang", language="zh-Hans"),
    )
    assert contact.role == Role.CONTACT and contact.status == Status.ACTIVE
    alert_id = raise_sos(db, world["cadre"])
    sent = messages(db, alert_id)
    assert chats(sent) == [2001, 3001]
    to_contact = next(m for m in sent if m.chat_id == 3001)
    assert "reply_markup" not in to_contact.payload  # a contact only gets told
    assert "Li Wei" in to_contact.payload["text"]
    assert db.call(timeline.alerted_counts, alert_id) == (1, 1)


def test_a_second_sos_while_one_is_open_reuses_it_and_tells_the_handlers(db, world, clock):
    first = raise_sos(db, world["cadre"])
    clock.shift(90)
    assert raise_sos(db, world["cadre"]) == first
    relayed = [m for m in messages(db, first) if ":u" in m.idempotency_key]
    assert chats(relayed) == [2001]
    assert "again" in relayed[0].payload["text"] or "再次" in relayed[0].payload["text"]


def test_the_same_update_handled_twice_raises_nothing_new(db, world, clock):
    """Updates are handled at least once (services/inbox.py): a new leader handles again
    the SOS update its predecessor was handling when it died. The alert stays the one it
    raised, the officers are not told "pressed SOS again"; another update is news."""
    first = raise_sos(db, world["cadre"], update_id=7001)
    clock.shift(90)
    assert raise_sos(db, world["cadre"], update_id=7001) == first
    assert [m for m in messages(db, first) if ":u" in m.idempotency_key] == []
    with db.session() as s:
        assert raising.raised_by(s, s.get(Alert, first), 7001)
        assert not raising.raised_by(s, s.get(Alert, first), 7002)
    assert raise_sos(db, world["cadre"], update_id=7002) == first  # pressed again: relayed
    assert len([m for m in messages(db, first) if ":u" in m.idempotency_key]) == 1
    assert raise_sos(db, world["cadre"], update_id=7002) == first  # and that one twice
    assert len([m for m in messages(db, first) if ":u" in m.idempotency_key]) == 1
    with db.session() as s:
        kinds = [e.kind for e in s.exec(select(AlertEvent).where(AlertEvent.alert_id == first))]
    assert kinds.count("raised") == 1 and kinds.count("raised_again") == 1


def test_a_red_checkin_uses_the_same_path_with_its_reasons(db, world):
    alert_id = db.call(
        raising.raise_alert,
        person_id=world["cadre"].id,
        cause="checkin_red",
        reasons=["sos.category.altitude"],
        policy=POLICY,
    )
    alert = db.call(policy.get, alert_id)
    assert alert.cause == "checkin_red" and alert.reasons == ["sos.category.altitude"]
    text = messages(db, alert_id)[0].payload["text"]
    assert "高原反应" in text  # the reason, in the officer's language
    again = db.call(
        raising.raise_alert,
        person_id=world["cadre"].id,
        cause="checkin_red",
        reasons=["sos.category.injury"],
        policy=POLICY,
    )
    assert again == alert_id
    assert db.call(policy.get, alert_id).reasons == [
        "sos.category.altitude",
        "sos.category.injury",
    ]


def test_unreachable_officers_are_listed_with_their_phones_for_a_call(db, world):
    outbox_person = world["off"]
    with db.session() as s:
        mark_unreachable(s, outbox_person.telegram_id, OutcomeCode.BLOCKED, notify=False)
    db.call(roster.go_off_duty, world["on"])
    alert_id = raise_sos(db, world["cadre"])
    text = next(m for m in messages(db, alert_id) if m.chat_id == 2001).payload["text"]
    assert "Wang Off" in text and "+8613800138000" in text
    assert "Telegram" in text


# ---------------------------------------------------------------------------- escalation


def test_no_acknowledgement_escalates_then_repeats_to_everyone_until_someone_takes_it(
    db, world, clock
):
    alert_id = raise_sos(db, world["cadre"])
    clock.shift(179)
    assert db.call(raising.escalate_due, POLICY) == []
    clock.shift(2)
    assert db.call(raising.escalate_due, POLICY) == [alert_id]
    round2 = [m for m in messages(db, alert_id) if ":n2:" in m.idempotency_key]
    assert chats(round2) == [2001, 2002, factories.ADMIN_ID]  # tier 1 again, and tier 2
    assert "⏫" in round2[0].payload["text"]
    clock.shift(181)
    assert db.call(raising.escalate_due, POLICY) == [alert_id]
    round3 = [m for m in messages(db, alert_id) if ":n3:" in m.idempotency_key]
    assert chats(round3) == [2001, 2002, 2003, factories.ADMIN_ID]  # every officer and admin
    clock.shift(200)
    assert db.call(raising.escalate_due, POLICY) == []  # repeats every 300 s from now on
    clock.shift(101)
    assert db.call(raising.escalate_due, POLICY) == [alert_id]
    assert db.call(policy.get, alert_id).stage == 4
    aba = db.call(people.find, 2003)
    assert (
        db.call(respond.acknowledge, alert_id=alert_id, actor=aba, policy=POLICY).outcome
        == respond.Ack.WON
    )
    clock.shift(3600)
    assert db.call(raising.escalate_due, POLICY) == []


def test_escalation_runs_once_however_many_checkers_run_it(db, world, clock):
    alert_id = raise_sos(db, world["cadre"])
    clock.shift(181)
    results = []

    def run():
        results.append(db.call(raising.escalate_due, POLICY))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=len) == [[], [], [], [alert_id]]


def test_when_every_message_of_a_round_fails_for_good_it_escalates_at_once(db, world, clock):
    alert_id = raise_sos(db, world["cadre"])
    row = messages(db, alert_id)[0]
    failed = Outcome(
        id=row.id,
        chat_id=row.chat_id,
        status=OutboxStatus.FAILED,
        code=OutcomeCode.BLOCKED,
        detail="Forbidden: bot was blocked by the user",
        person_id=row.person_id,
        source=row.source,
    )
    db.call(record_outcomes, [failed])
    assert db.call(policy.get, alert_id).next_escalation_at == T0
    assert db.call(raising.escalate_due, POLICY) == [alert_id]


# ---------------------------------------------------------------------------- acknowledge


def test_the_first_acknowledgement_wins_and_everyone_is_told(db, world, clock):
    db.call(roster.go_off_duty, world["on"])
    alert_id = raise_sos(db, world["cadre"])  # tier 2 at once: 2001, 2002, admin
    deliver(db, alert_id)
    clock.shift(30)
    won = db.call(respond.acknowledge, alert_id=alert_id, actor=world["off"], policy=POLICY)
    assert won.outcome == respond.Ack.WON
    lost = db.call(respond.acknowledge, alert_id=alert_id, actor=world["on"], policy=POLICY)
    assert lost.outcome == respond.Ack.TAKEN and lost.by.id == world["off"].id
    alert = db.call(policy.get, alert_id)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.next_escalation_at is None
    assert alert.acknowledged_at == T0 + timedelta(seconds=30)
    edits = messages(db, alert_id, kind="edit")
    assert chats(edits) == [2001, 2002, factories.ADMIN_ID]
    assert all("Wang Off" in e.payload["text"] for e in edits)
    told = [m for m in messages(db, alert_id) if ":cadre:" in m.idempotency_key]
    assert chats(told) == [1001]
    assert "Wang Off" in told[0].payload["text"] and "+8613800138000" in told[0].payload["text"]


@pytest.mark.parametrize("attempt", range(5))
def test_two_officers_pressing_at_the_same_moment_exactly_one_wins(db, world, attempt):
    db.call(roster.go_off_duty, world["on"])
    alert_id = raise_sos(db, world["cadre"])
    barrier = threading.Barrier(2)
    results = {}

    def press(who):
        barrier.wait()
        results[who.id] = db.call(
            respond.acknowledge, alert_id=alert_id, actor=who, policy=POLICY
        ).outcome

    threads = [threading.Thread(target=press, args=(p,)) for p in (world["on"], world["off"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [respond.Ack.TAKEN, respond.Ack.WON]
    with db.session() as s:
        events = s.exec(select(AuditEntry).where(AuditEntry.action == "alert.acknowledged"))
        assert len(list(events)) == 1


def test_nobody_handles_their_own_alert_and_strangers_to_the_area_are_refused(db, world):
    own = raise_sos(db, world["on"])  # the officer on duty needs help themself
    refused = db.call(respond.acknowledge, alert_id=own, actor=world["on"], policy=POLICY)
    assert refused.outcome == respond.Ack.REFUSED and refused.refusal == respond.Refusal.OWN
    alert_id = raise_sos(db, world["cadre"])
    outsider = db.call(respond.acknowledge, alert_id=alert_id, actor=world["aba"], policy=POLICY)
    assert outsider.refusal == respond.Refusal.AREA
    cadre2 = factories.person(db, 1002, real_name="Other Cadre")
    assert (
        db.call(
            respond.resolve, alert_id=alert_id, actor=cadre2, outcome="on_site", policy=POLICY
        ).refusal
        == respond.Refusal.ROLE
    )
    with db.session() as s:
        denied = list(s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")))
    reasons = sorted(e.detail["reason"] for e in denied)
    assert reasons == ["area", "own", "role"]


def test_once_escalated_to_everyone_an_officer_of_another_area_may_take_it(db, world, clock):
    alert_id = raise_sos(db, world["cadre"])
    for _ in range(2):
        clock.shift(181)
        db.call(raising.escalate_due, POLICY)
    taken = db.call(respond.acknowledge, alert_id=alert_id, actor=world["aba"], policy=POLICY)
    assert taken.outcome == respond.Ack.WON


# ---------------------------------------------------------------------------- resolve, cancel


def test_resolve_records_the_outcome_and_a_note(db, world, clock):
    alert_id = raise_sos(db, world["cadre"])
    assert (
        db.call(
            respond.resolve, alert_id=alert_id, actor=world["on"], outcome="bogus", policy=POLICY
        ).outcome
        == respond.Close.INVALID
    )
    clock.shift(600)
    done = db.call(
        respond.resolve, alert_id=alert_id, actor=world["on"], outcome="hospital", policy=POLICY
    )
    assert done.outcome == respond.Close.DONE
    again = db.call(
        respond.resolve, alert_id=alert_id, actor=world["admin"], outcome="on_site", policy=POLICY
    )
    assert again.outcome == respond.Close.CLOSED
    note = db.call(respond.add_note, alert_id=alert_id, actor=world["on"], note="  HAPE, by car ")
    assert note == raising.Change.DONE
    alert = db.call(policy.get, alert_id)
    assert (alert.status, alert.outcome, alert.resolution_note) == (
        AlertStatus.RESOLVED,
        "hospital",
        "HAPE, by car",
    )
    assert alert.acknowledged_by == world["on"].id  # resolving an open alert takes it too
    told = [m for m in messages(db, alert_id) if ":cadre:" in m.idempotency_key]
    assert any("hospital" in m.payload["text"] for m in told)


def test_the_cadre_cancels_a_false_alarm_and_everyone_alerted_is_told(db, world):
    db.call(roster.go_off_duty, world["on"])
    alert_id = raise_sos(db, world["cadre"])
    stranger = db.call(respond.cancel, alert_id=alert_id, actor=world["on"], policy=POLICY)
    assert stranger.outcome == respond.Close.REFUSED
    assert db.call(
        respond.cancel, alert_id=alert_id, actor=world["cadre"], policy=POLICY
    ).outcome == (respond.Close.DONE)
    notices = [m for m in messages(db, alert_id) if ":x:" in m.idempotency_key]
    assert chats(notices) == [2001, 2002, factories.ADMIN_ID]
    assert db.call(policy.get, alert_id).next_escalation_at is None
    # the original messages not sent yet are not sent any more
    originals = [m for m in messages(db, alert_id) if ":n2:" in m.idempotency_key]
    assert {m.status for m in originals} == {OutboxStatus.CANCELLED}


# ---------------------------------------------------------------------------- what the cadre adds


def test_location_category_and_details_reach_whoever_handles_it(db, world, clock):
    alert_id = raise_sos(db, world["cadre"])
    cadre_id = world["cadre"].id
    assert (
        db.call(
            raising.update_location,
            alert_id=alert_id,
            person_id=cadre_id,
            latitude=30.0,
            longitude=100.27,
            policy=POLICY,
        )
        == raising.Change.DONE
    )
    pins = messages(db, alert_id, kind="location")
    assert [(p.chat_id, p.payload["latitude"]) for p in pins] == [(2001, 30.0)]
    # a moving live location is relayed at most every two minutes
    clock.shift(30)
    db.call(
        raising.update_location,
        alert_id=alert_id,
        person_id=cadre_id,
        latitude=30.01,
        longitude=100.27,
        live=True,
        policy=POLICY,
    )
    assert len(messages(db, alert_id, kind="location")) == 1
    clock.shift(120)
    db.call(
        raising.update_location,
        alert_id=alert_id,
        person_id=cadre_id,
        latitude=30.02,
        longitude=100.27,
        live=True,
        policy=POLICY,
    )
    assert len(messages(db, alert_id, kind="location")) == 2
    assert db.call(policy.get, alert_id).latitude == 30.02
    db.call(respond.acknowledge, alert_id=alert_id, actor=world["on"], policy=POLICY)
    db.call(
        raising.set_category,
        alert_id=alert_id,
        person_id=cadre_id,
        category="injury",
        policy=POLICY,
    )
    db.call(
        raising.set_details,
        alert_id=alert_id,
        person_id=cadre_id,
        details="fell <b>&</b>",
        policy=POLICY,
    )
    relayed = [m for m in messages(db, alert_id) if ":u" in m.idempotency_key]
    assert "fell &lt;b&gt;&amp;&lt;/b&gt;" in relayed[-1].payload["text"]
    assert (
        db.call(
            raising.update_location,
            alert_id=alert_id,
            person_id=world["on"].id,
            latitude=1,
            longitude=1,
            policy=POLICY,
        )
        == raising.Change.NOT_FOUND
    )  # not their alert
    assert (
        db.call(
            raising.update_location,
            alert_id=alert_id,
            person_id=cadre_id,
            latitude=100,
            longitude=1,
            policy=POLICY,
        )
        == raising.Change.INVALID
    )


# ---------------------------------------------------------------------------- reading


def test_the_timeline_shows_events_and_deliveries_with_times_and_actors(db, world, clock):
    alert_id = raise_sos(db, world["cadre"])
    row = messages(db, alert_id)[0]
    clock.shift(2)
    db.call(
        record_outcomes,
        [
            Outcome(
                id=row.id,
                chat_id=row.chat_id,
                status=OutboxStatus.SENT,
                code=OutcomeCode.SENT,
                telegram_message_id=77,
                source=row.source,
            )
        ],
    )
    clock.shift(10)
    db.call(respond.acknowledge, alert_id=alert_id, actor=world["on"], policy=POLICY)
    with db.session() as s:
        alert = s.get(Alert, alert_id)
        lines = [item.text for item in timeline.timeline(s, alert, "en", ZONE)]
    assert lines[0].startswith("raised by Li Wei")
    assert "round 1: 1 person alerted" in lines
    assert "delivered to Zhang On" in lines
    assert "✋ taken by Zhang On" in lines
    text = db.call(timeline.timeline_text, alert_id, "en", ZONE)
    assert "10:00" in text and "10:00" in text.split("Timeline")[1]


def test_lists_and_exports_are_limited_to_the_viewers_area(db, world):
    ganzi = raise_sos(db, world["cadre"])
    aba_cadre = factories.person(db, 1003, prefecture="aba", county="aba.barkam", real_name="=cmd")
    aba = raise_sos(db, aba_cadre)
    with db.session() as s:
        seen = [a.id for a in timeline.visible_alerts(s, people.find(s, 2001))]
        assert seen == [ganzi]
        assert [a.id for a in timeline.visible_alerts(s, people.find(s, 2003))] == [aba]
        assert sorted(a.id for a in timeline.visible_alerts(s, world["admin"])) == [ganzi, aba]
    data = db.call(timeline.export_csv, world["admin"]).decode("utf-8-sig")
    header, *rows = data.strip().splitlines()
    assert header.startswith("id,cause,status")
    assert len(rows) == 2
    assert "'=cmd" in data  # a name that looks like a formula is defused


# ---------------------------------------------------------------------------- directory


def test_the_directory_ships_the_national_numbers_and_unconfirmed_hospitals(db):
    with db.session() as s:
        entries = directory.entries_for(s, "ganzi")
    assert [e.phone for e in entries[:4]] == ["120", "110", "119", "122"]
    hospital = entries[-1]
    assert hospital.prefecture == "ganzi" and hospital.phone is None
    text = db.call(directory.render_for, "ganzi", "en", ZONE)
    assert "Ganzi" not in text and "never confirmed" not in text  # no number: not shown
    assert "Aba" not in text
    assert "checked 2026-11-26: national number, free from any phone in mainland China" in text
    assert "by national number" not in text
    with pytest.raises(directory.DirectoryError):  # nothing to confirm without a number
        db.call(directory.confirm, factories.admin(db), hospital.id)


def test_an_admin_filling_a_hospital_number_confirms_it_with_name_and_date(db, clock):
    admin = factories.admin(db)
    with db.session() as s:
        hospital = directory.entries_of(s, "aba")[0]
    with pytest.raises(directory.DirectoryError):
        db.call(directory.update_field, admin, hospital.id, "phone", "call me")
    db.call(directory.update_field, admin, hospital.id, "phone", "0837-123 4567")
    changed = db.call(directory.get, hospital.id)
    assert changed.phone == "0837-123 4567"
    assert changed.confirmed_at == T0
    text = db.call(directory.render_for, "aba", "en", ZONE)
    assert "0837-123 4567" in text and "confirmed 2026-12-01" in text
    with db.session() as s:
        national = directory.entries_of(s, None)[0]
    with pytest.raises(directory.DirectoryError):
        db.call(directory.remove, admin, national.id)
    # the data file never overwrites an admin's edit
    assert db.call(directory.ensure_seeded) == 0
    assert db.call(directory.get, hospital.id).phone == "0837-123 4567"


def test_two_first_sos_seeding_the_directory_at_once_both_get_the_numbers(db) -> None:
    """The directory is seeded on first use. Two SOS arriving together both read "not
    seeded yet"; the second must not fail on the entries the first just added (it did:
    UNIQUE constraint failed, and that cadre got the error reply instead of the numbers)."""
    seen_empty = threading.Barrier(2, timeout=10)
    real_exec = directory.Session.exec
    errors: list[BaseException] = []

    def exec_then_wait(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = list(real_exec(self, statement, *args, **kwargs))
        if "directory_entry.key" in str(statement) and not result:
            seen_empty.wait()  # both transactions have seen an empty directory
        return result

    def first_sos() -> None:
        try:
            db.call(directory.render_for, "ganzi", "en", ZONE)
        except BaseException as error:
            errors.append(error)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(directory.Session, "exec", exec_then_wait)
        threads = [threading.Thread(target=first_sos) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    with db.session() as s:
        keys = [entry.key for entry in s.exec(select(DirectoryEntry))]
    assert len(keys) == len(set(keys)) == len(directory.seed_entries())


# ---------------------------------------------------------------------------- coverage


def test_admins_are_warned_once_per_gap_and_once_per_blocked_officer(db, world, clock):
    db.call(roster.go_off_duty, world["on"])
    assert db.call(coverage.coverage_warnings, POLICY) == 1  # Ganzi has a cadre, nobody on duty
    assert db.call(coverage.coverage_warnings, POLICY) == 0
    db.call(roster.go_on_duty, world["on"], None)
    assert db.call(coverage.coverage_warnings, POLICY) == 0
    db.call(roster.go_off_duty, world["on"])
    clock.shift(60)
    assert db.call(coverage.coverage_warnings, POLICY) == 1  # a new gap
    with db.session() as s:
        mark_unreachable(s, 2002, OutcomeCode.BLOCKED, notify=False)
    assert db.call(coverage.coverage_warnings, POLICY) == 1
    assert db.call(coverage.coverage_warnings, POLICY) == 0
    with db.session() as s:
        warnings = list(s.exec(select(OutboxMessage).where(OutboxMessage.source == "sos:coverage")))
    assert {w.chat_id for w in warnings} == {factories.ADMIN_ID}
    assert any("Wang Off" in w.payload["text"] for w in warnings)


# ---------------------------------------------------------------------------- contacts


def test_contact_links_are_one_use_revocable_and_for_one_cadre_only(db, world):
    invitation = db.call(contact_links.create_invitation, world["cadre"])
    assert invitation.role == Role.CONTACT and invitation.max_uses == 1
    db.call(people.submit_registration, 3001, "Mum", factories.draft(invitation=invitation.code))
    with db.session() as s:
        assert [p.telegram_id for p in contact_links.contacts_of(s, world["cadre"].id)] == [3001]
        contact = people.find(s, 3001)
        assert contact_links.cadres_of(s, contact) == [world["cadre"].id]
        assert people.invitation_problem(s, invitation.code) == "invite.used_up"
        link_id = contact_links.links_of(s, world["cadre"].id)[0].link.id
    other = factories.person(db, 1002)
    assert db.call(contact_links.revoke, other, link_id) is False
    assert db.call(contact_links.revoke, world["cadre"], link_id) is True
    with db.session() as s:
        assert contact_links.contacts_of(s, world["cadre"].id) == []


def test_a_person_deleting_their_data_leaves_only_a_deleted_person_and_times(db, world):
    alert_id = raise_sos(db, world["cadre"])
    db.call(
        raising.set_details,
        alert_id=alert_id,
        person_id=world["cadre"].id,
        details="ice",
        policy=POLICY,
    )
    db.call(respond.acknowledge, alert_id=alert_id, actor=world["on"], policy=POLICY)
    assert db.call(people.delete_own_data, world["on"].telegram_id)  # the officer leaves
    assert db.call(policy.get, alert_id).acknowledged_by is None
    assert db.call(people.delete_own_data, world["cadre"].telegram_id)
    kept = db.call(policy.get, alert_id)
    assert (kept.person_id, kept.details, kept.status) == (None, None, AlertStatus.CANCELLED)
    assert kept.created_at is not None and kept.cancelled_at is not None
    with db.session() as s:
        assert s.get(Person, world["cadre"].id) is None
        shown = timeline.timeline_text(s, alert_id, "en", ZONE)
    assert "a deleted person" in shown and "Li Wei" not in shown and "ice" not in shown
    assert "the person deleted their personal data" in shown


def test_every_dynamic_catalog_key_of_the_emergency_channel_exists():
    from handlers import roster as roster_handlers
    from services.i18n import LANGUAGES, catalog

    keys = [f"sos.tl.{kind}" for kind in policy.EVENT_KINDS]
    keys += [f"sos.category.{c}" for c in policy.CATEGORIES]
    keys += [f"sos.outcome.{o}" for o in policy.OUTCOMES]
    keys += [f"sos.cause.{c}" for c in policy.CAUSES]
    keys += [f"sos.status.{s}" for s in AlertStatus]
    keys += [f"sos.denied.{r}" for r in respond.Refusal] + ["sos.denied.not_own"]
    keys += [f"sos.block.{b}" for b in roster.SHIFT_BLOCKS]
    keys += [f"sos.day.{d}" for d in roster_handlers.WEEKDAYS]
    keys += [f"sos.dir.ask_{f}" for f in directory.EDITABLE]
    keys += [f"sos.cadre.{w}" for w in ("acknowledged", "resolved")]
    keys += [f"sos.contact.{w}" for w in ("acknowledged", "resolved")]
    for lang in LANGUAGES:
        assert [k for k in keys if k not in catalog(lang)] == []


@pytest.mark.parametrize("attempt", range(3))
def test_the_same_person_raising_twice_at_the_same_moment_makes_one_alert(db, world, attempt):
    barrier = threading.Barrier(2)
    ids = []

    def press(cause):
        barrier.wait()
        ids.append(
            db.call(raising.raise_alert, person_id=world["cadre"].id, cause=cause, policy=POLICY)
        )

    threads = [threading.Thread(target=press, args=(c,)) for c in ("sos", "checkin_red")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    with db.session() as s:
        assert len(s.exec(select(Alert)).all()) == 1
