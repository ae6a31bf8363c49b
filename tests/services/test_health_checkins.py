"""Check-in storage and what it causes, as services (no Telegram): RED through the
emergency path, AMBER told to the officer only when it persists or worsens, suspicious
identical readings, retention deletion, the one-liner for alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlmodel import select

from models import Alert, AuditEntry, CheckIn, MissedCheckin, OutboxMessage, Priority
from models.health import Tier
from services.alerts import cards, policy, raising
from services.health import checkins, reminders, summary
from services.health.assessment import Readings
from tests.support.checkin_helpers import CONFIG, POLICY, make_person, officer

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
GREEN = Readings(
    headache=0,
    gi=0,
    fatigue=0,
    dizziness=0,
    functional=0,
    spo2=86,
    heart_rate=76,
    temperature_c=36.5,
)
AMBER = Readings(
    headache=1,
    gi=1,
    fatigue=1,
    dizziness=0,
    functional=1,
    spo2=86,
    heart_rate=80,
    temperature_c=36.6,
)
WORSE = Readings(
    headache=2,
    gi=1,
    fatigue=1,
    dizziness=0,
    functional=1,
    spo2=85,
    heart_rate=82,
    temperature_c=36.6,
)
RED = Readings(red_flags=frozenset({"breathless_rest"}))


def submit(db, person, readings, **kw):
    return db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY, **kw)


def assert_chart_follows(notice: OutboxMessage, chart: OutboxMessage) -> None:
    """The 30-day chart is queued after an officer's notice, URGENT, as a reference drawn
    when sent (tests/handlers/test_checkin_chart.py sends it)."""
    assert (chart.kind, chart.chat_id) == ("photo", notice.chat_id)
    assert chart.payload["after"] == notice.idempotency_key
    assert chart.payload["render"] == summary.CHART_RENDERER
    assert chart.priority == Priority.URGENT
    assert "not a diagnosis" in chart.payload["text"]


def outbox_rows(db, prefix: str = "health:amber"):
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    return [r for r in rows if r.idempotency_key.startswith(prefix)]


@pytest.fixture
def travel():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_a_check_in_stores_every_reading(db, travel):
    person = make_person(db, 1001)
    readings = Readings(
        cough_or_breathless=False,
        headache=1,
        gi=0,
        fatigue=1,
        dizziness=0,
        functional=1,
        spo2=85,
        heart_rate=88,
        temperature_c=36.8,
        systolic=130,
        diastolic=85,
    )
    outcome = submit(db, person, readings, feeling="not_well", note="slept badly <b>")
    with db.session() as s:
        row = s.exec(select(CheckIn)).one()
    assert (row.lls_total, row.spo2, row.heart_rate, row.temperature_c) == (2, 85, 88, 36.8)
    assert (row.systolic, row.diastolic, row.feeling, row.note) == (
        130,
        85,
        "not_well",
        "slept badly <b>",
    )
    assert row.altitude_m == 4014 and row.local_date == date(2026, 11, 26)
    assert row.tier == Tier.GREEN == outcome.assessment.tier


def test_out_of_range_values_are_refused_even_past_the_form(db, travel):
    person = make_person(db, 1001)
    with pytest.raises(checkins.CheckinError):
        submit(db, person, Readings(spo2=101))
    with pytest.raises(checkins.CheckinError):
        submit(db, person, Readings(systolic=80, diastolic=90))
    with db.session() as s:
        assert s.exec(select(CheckIn)).all() == []


def test_red_raises_an_alert_in_the_same_transaction(db, travel):
    person = make_person(db, 1001)
    duty = officer(db)
    outcome = submit(db, person, RED, feeling="unwell", complete=False)
    assert outcome.assessment.tier == Tier.RED and outcome.alert_id
    with db.session() as s:
        alert = s.get(Alert, outcome.alert_id)
        assert alert.cause == "checkin_red"
        assert alert.reasons == ["health.reason.red_breathless_rest"]
        checkin = s.exec(select(CheckIn)).one()
        assert checkin.complete is False and checkin.red_flags == ["breathless_rest"]
    emergency = [r for r in outbox_rows(db, "") if r.chat_id == duty.telegram_id]
    assert any(r.priority == Priority.EMERGENCY for r in emergency)
    details = [r for r in emergency if r.idempotency_key.startswith("health:red:")]
    assert (
        details
        and details[0].payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        == f"ct:{person.id}"
    )


LOW_SPO2 = Readings(headache=1, gi=0, fatigue=1, dizziness=0, functional=1, spo2=70, heart_rate=110)


def test_the_officers_red_details_have_the_reasons_and_the_note_and_no_empty_line(db, travel):
    """Issue 16 point 8: the note the cadre wrote reaches the officer; a red-flag stop,
    which has no readings, leaves no lone "-" line."""
    person = make_person(db, 1001)
    duty = officer(db)
    submit(db, person, LOW_SPO2, note="dizzy since the pass <3")
    submit(db, person, RED, complete=False)
    texts = [
        r.payload["text"] for r in outbox_rows(db, "health:red:") if r.chat_id == duty.telegram_id
    ]
    assert len(texts) == 2
    readings, flag = texts
    assert "SpO2 70%" in readings and "more than 10 points below" in readings
    assert "Their note: «dizzy since the pass &lt;3»" in readings
    assert "Breathless at rest" in flag and "Their note" not in flag
    for text in texts:
        assert "-" not in [line.strip() for line in text.splitlines()]
        assert "\n\n\n" not in text
    card = db.call(summary.last_checkin_line, person.id, "en", zone=CONFIG.zone)
    assert "🔴 RED" in card


def test_history_gives_the_reason_of_an_amber_or_red_check_in(db, travel):
    person = make_person(db, 1001)
    submit(db, person, RED, complete=False)
    with db.session() as s:
        row = s.exec(select(CheckIn)).one()
    line = summary.history_line("en", row, CONFIG.zone)
    assert line.startswith("11-26 09:00 🔴 ") and "Breathless at rest" in line
    zh = summary.history_line("zh-Hans", row, CONFIG.zone)
    assert zh.startswith("11-26 09:00 🔴 ") and len(zh) > len("11-26 09:00 🔴 ")


def test_red_reaches_officers_directly_when_the_emergency_path_fails(db, travel, monkeypatch):
    def broken(session, **kwargs):
        raise RuntimeError("emergency path down")

    monkeypatch.setattr(raising, "raise_alert", broken)
    person = make_person(db, 1001)
    duty = officer(db)
    outcome = submit(db, person, RED)
    assert outcome.alert_id is None and outcome.officers_told == 1
    (row,) = outbox_rows(db, "health:red:")
    assert (row.chat_id, row.priority) == (duty.telegram_id, Priority.EMERGENCY)
    assert "RED" in row.payload["text"] and "Breathless at rest" in row.payload["text"]
    with db.session() as s:
        assert s.exec(select(CheckIn)).one().tier == Tier.RED  # the check-in is kept


def test_amber_alone_tells_nobody_but_schedules_a_recheck(db, travel):
    person = make_person(db, 1001)
    officer(db)
    outcome = submit(db, person, AMBER)
    assert outcome.assessment.tier == Tier.AMBER and outcome.officers_told == 0
    assert outcome.recheck_at == T0 + timedelta(hours=6)  # 15:00 local
    assert outbox_rows(db, "health:") == []
    travel.move_to(T0 + timedelta(hours=5, minutes=59))
    db.call(reminders.run_pass, CONFIG)
    assert outbox_rows(db, "health:recheck") == []
    travel.move_to(T0 + timedelta(hours=6))
    db.call(reminders.run_pass, CONFIG)
    db.call(reminders.run_pass, CONFIG)
    (recheck,) = outbox_rows(db, "health:recheck")
    assert recheck.chat_id == person.telegram_id and recheck.priority == Priority.REMINDER
    assert recheck.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ci:start"


def test_an_evening_amber_is_rechecked_in_the_morning_not_at_night(db):
    at = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 22:00 local
    assert checkins.recheck_at(at, CONFIG) == datetime(2026, 11, 26, 23, 0, tzinfo=UTC)  # 07:00
    small_hours = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)  # 02:00 local -> 08:00
    assert checkins.recheck_at(small_hours, CONFIG) == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    afternoon = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)  # 16:30: 07:00 is past the 12 h cap
    assert checkins.recheck_at(afternoon, CONFIG) == datetime(2026, 11, 26, 20, 30, tzinfo=UTC)


def test_amber_that_persists_24_hours_is_told_to_the_officer_once(db, travel):
    person = make_person(db, 1001)
    duty = officer(db)
    submit(db, person, AMBER)
    travel.move_to(T0 + timedelta(hours=12))
    submit(db, person, AMBER)  # the same, not worse
    assert [r for r in outbox_rows(db) if r.chat_id == duty.telegram_id] == []
    travel.move_to(T0 + timedelta(hours=23, minutes=59))
    db.call(reminders.run_pass, CONFIG)
    assert [r for r in outbox_rows(db) if r.chat_id == duty.telegram_id] == []
    travel.move_to(T0 + timedelta(hours=24))
    for _ in range(3):
        db.call(reminders.run_pass, CONFIG)
    told, chart = [r for r in outbox_rows(db) if r.chat_id == duty.telegram_id]
    assert told.priority == Priority.URGENT and "AMBER for 24 hours" in told.payload["text"]
    assert_chart_follows(told, chart)
    travel.move_to(T0 + timedelta(hours=25))
    submit(db, person, AMBER)  # still the same run: no second notice, no second chart
    assert len([r for r in outbox_rows(db) if r.chat_id == duty.telegram_id]) == 2


def test_a_green_check_in_ends_the_amber_run(db, travel):
    person = make_person(db, 1001)
    duty = officer(db)
    submit(db, person, AMBER)
    travel.move_to(T0 + timedelta(hours=10))
    submit(db, person, GREEN)
    travel.move_to(T0 + timedelta(hours=20))
    submit(db, person, AMBER)
    travel.move_to(T0 + timedelta(hours=30))
    db.call(reminders.run_pass, CONFIG)
    assert [r for r in outbox_rows(db) if r.chat_id == duty.telegram_id] == []


def test_amber_that_worsens_is_told_at_once(db, travel):
    person = make_person(db, 1001)
    duty = officer(db)
    submit(db, person, AMBER)
    travel.move_to(T0 + timedelta(hours=6))
    outcome = submit(db, person, WORSE)
    assert outcome.officers_told == 1
    row, chart = [r for r in outbox_rows(db) if r.chat_id == duty.telegram_id]
    assert row.priority == Priority.URGENT and "getting worse" in row.payload["text"]
    assert_chart_follows(row, chart)
    assert "SpO2 85%" in row.payload["text"]


def test_the_officer_of_another_prefecture_is_not_told(db, travel, monkeypatch):
    monkeypatch.setattr(
        raising, "raise_alert", lambda session, **kw: (_ for _ in ()).throw(RuntimeError())
    )
    person = make_person(db, 1001, prefecture="ganzi")
    aba = officer(db, 5002, prefecture="aba")
    ganzi = officer(db, 5001, prefecture="ganzi")
    submit(db, person, RED)
    chats = {r.chat_id for r in outbox_rows(db, "health:red:")}
    assert chats == {ganzi.telegram_id} and aba.telegram_id not in chats


def test_last_checkin_line_for_responders_and_for_contacts(db, travel):
    person = make_person(db, 1001)
    assert db.call(summary.last_checkin_line, person.id, "en", zone=CONFIG.zone) is None
    submit(db, person, AMBER)
    line = db.call(summary.last_checkin_line, person.id, "en", zone=CONFIG.zone)
    expected = "Last check-in: 11-26 09:00 · 🟠 AMBER · SpO2 86% · HR 80/min · 36.6 °C · LLS 3/12"
    assert line == expected
    zh = db.call(summary.last_checkin_line, person.id, "zh-Hans", zone=CONFIG.zone)
    assert "需关注" in zh and "血氧 86%" in zh and "\n" not in zh
    contact = db.call(summary.last_checkin_line, person.id, "en", vitals=False, zone=CONFIG.zone)
    assert contact == "Last check-in: 11-26 09:00"
    # The details under the responders' card (ℹ️) show that line once, with its label once.
    alert_id = db.call(raising.raise_alert, person_id=person.id, cause="sos", policy=POLICY)
    with db.session() as s:
        text = cards.details_text(s, db.call(policy.get, alert_id), "en", zone=CONFIG.zone)
    assert text.count("Last check-in:") == 1 and line in text


def test_identical_vitals_day_after_day_are_flagged(db, travel):
    honest = make_person(db, 1001, "Honest")
    gamer = make_person(db, 1002, "Gamer")
    for day in range(5):
        travel.move_to(T0 + timedelta(days=day))
        submit(db, gamer, Readings(spo2=95, heart_rate=70, temperature_c=36.5))
        submit(db, honest, Readings(spo2=90 + day % 2, heart_rate=70, temperature_c=36.5))
    today = date(2026, 11, 30)
    assert db.call(checkins.suspicious, [honest.id, gamer.id], today, CONFIG) == {gamer.id}
    # four days are not enough
    assert db.call(checkins.suspicious, [gamer.id], today - timedelta(days=1), CONFIG) == set()


def test_identical_readings_count_only_unbroken_days_ending_with_the_last_check_in(db, travel):
    """The run that flags a person: the last check-in of each of five days in a row, all
    with the same readings. A different later check-in, a day without any, or a check-in
    without readings breaks it; a run that ended yesterday still shows today."""
    same = Readings(spo2=95, heart_rate=70, temperature_c=36.5)
    other = Readings(spo2=94, heart_rate=70, temperature_c=36.5)
    redone = make_person(db, 1001, "Redone")  # day 3: same, then corrected an hour later
    gap = make_person(db, 1002, "Gap")  # no check-in on day 2
    empty = make_person(db, 1003, "Empty")  # red flags only: no readings, five days
    steady = make_person(db, 1004, "Steady")  # five same days, then a different one today
    for day in range(6):
        travel.move_to(T0 + timedelta(days=day))
        if day < 5:
            submit(db, redone, same)
            if day == 3:
                travel.move_to(T0 + timedelta(days=day, hours=1))
                submit(db, redone, other)
            if day != 2:
                submit(db, gap, same)
            submit(db, empty, Readings(), complete=False)
        submit(db, steady, same if day < 5 else other)
    ids = [redone.id, gap.id, empty.id, steady.id]
    day5 = date(2026, 12, 1)
    assert db.call(checkins.suspicious, ids, day5, CONFIG) == {steady.id}
    assert db.call(checkins.suspicious, ids, day5 + timedelta(days=1), CONFIG) == set()
    # everyone's, as /today asks before narrowing to the area
    everyone = checkins.suspicious_select(day5, CONFIG)
    assert db.call(lambda s: set(s.execute(everyone).scalars())) == {steady.id}


def test_the_upgrade_counts_the_repeats_of_check_ins_stored_before_it(tmp_path, travel):
    """Migration 0009 counts, for check-ins stored by earlier versions, what `submit` now
    counts when it stores one: the flags of /today and the exports are right at once."""
    from sqlalchemy import text

    from models.db import make_engine, upgrade
    from services.db import Database

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0008")
    fresh = make_engine(f"sqlite:///{tmp_path}/new.db")
    upgrade(fresh)
    db = Database(fresh)
    gamer, redone = make_person(db, 1001, "Gamer"), make_person(db, 1002, "Redone")
    same = Readings(spo2=95, heart_rate=70, temperature_c=36.5)
    for day in range(6):
        travel.move_to(T0 + timedelta(days=day))
        submit(db, gamer, same)
        submit(db, redone, same if day != 3 else Readings(spo2=96, heart_rate=70))
    columns = ("id", "person_id", "at", "local_date", "spo2", "heart_rate", "temperature_c")
    with fresh.connect() as source:
        people_rows = source.execute(text("SELECT * FROM person")).mappings().all()
        rows = source.execute(text(f"SELECT {', '.join(columns)} FROM health_checkin")).all()
        wanted = dict(
            source.execute(text("SELECT id, identical_days_before FROM health_checkin")).all()
        )
    with engine.begin() as target:
        person_columns = [c for c in people_rows[0] if c != "id"] + ["id"]
        target.execute(
            text(
                f"INSERT INTO person ({', '.join(person_columns)}) "
                f"VALUES ({', '.join(':' + c for c in person_columns)})"
            ),
            [dict(row) for row in people_rows],
        )
        target.execute(
            text(
                f"INSERT INTO health_checkin ({', '.join(columns)}, red_flags, reasons, tier, "
                "no_oximeter, ams, complete) "
                f"VALUES ({', '.join(':' + c for c in columns)}, '[]', '[]', 'green', 0, 0, 1)"
            ),
            [dict(zip(columns, row, strict=True)) for row in rows],
        )
    upgrade(engine)
    with engine.connect() as upgraded:
        counted = dict(
            upgraded.execute(text("SELECT id, identical_days_before FROM health_checkin")).all()
        )
    assert counted == wanted and max(wanted.values()) == 5
    assert Database(engine).call(
        checkins.suspicious, [gamer.id, redone.id], date(2026, 12, 1), CONFIG
    ) == {gamer.id}


def test_readings_are_deleted_after_the_retention_period_and_audited(db, travel):
    ended = make_person(db, 1001, end=date(2026, 8, 1))
    serving = make_person(db, 1002, end=date(2027, 8, 1))
    submit(db, ended, GREEN)
    submit(db, serving, GREEN)
    not_yet = db.call(checkins.delete_expired, date(2026, 10, 30), 90)  # 90 days not over
    assert (not_yet.people, not_yet.checkins) == (0, 0)
    expired = db.call(checkins.delete_expired, date(2026, 10, 31), 90)
    assert (expired.cutoff, expired.people, expired.checkins) == (date(2026, 8, 2), 1, 1)
    with db.session() as s:
        left = s.exec(select(CheckIn)).all()
        audit = s.exec(
            select(AuditEntry).where(AuditEntry.action == "checkin.readings_deleted")
        ).one()
    assert [c.person_id for c in left] == [serving.id]
    assert audit.target_person_id == ended.id and audit.detail["checkins"] == 1
    assert "spo2" not in str(audit.detail)


def test_a_late_check_in_after_the_cut_off_notice_is_told_to_the_officer(db, travel):
    person = make_person(db, 1001, start=date(2026, 11, 1))
    duty = officer(db)
    travel.move_to(datetime(2026, 11, 27, 10, 0, tzinfo=UTC))  # 18:00 local: the cut-off
    db.call(reminders.run_pass, CONFIG)
    with db.session() as s:
        missed = s.exec(select(MissedCheckin)).all()
    assert {m.person_id for m in missed} == {person.id, duty.id}  # officers are posted too
    travel.move_to(datetime(2026, 11, 27, 11, 0, tzinfo=UTC))
    submit(db, person, GREEN)
    late = [r for r in outbox_rows(db, "health:late:")]
    assert [r.chat_id for r in late] == [duty.telegram_id]
    assert "checked in after all" in late[0].payload["text"]
