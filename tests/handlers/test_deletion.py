"""/deleteme reaches every copy (issue 13): after a cadre checked in, raised an SOS with a
description, asked a question and officers were alerted (on Telegram, WeCom and by SMS,
some messages sent and some not), nothing in any table says who they were, what they
measured or what they wrote. Alerts stay as "a deleted person" with their times; ids are
never reused; sent messages' texts are cleared by the retention pass; a backup made
afterwards holds nothing of them; migration 0011 keeps the data it rebuilds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import Engine, text
from sqlmodel import SQLModel, select

from models import Alert, AlertStatus, DutyGroup, KbQuestion, OutboxMessage, OutboxStatus, Person
from models.db import make_engine, schema_revision, upgrade
from services import backup, clock, erasure, outbox, people, roster
from services.alerts import policy, raising
from services.health import reminders
from services.health.config import HealthConfig
from services.people import Draft
from tests.support import factories
from tests.support.botfixtures import ADMIN_ID
from tests.support.checkin_helpers import finish_vitals, start_checkin, walk_to_vitals
from tests.support.sos_support import emergency_running, officer, until

CADRE = 1301
NAME = "Zhuoma Lhamo"
PHONE = "+8613712345678"
CONTACT_NAME = "Gesang Dawa"
CONTACT_PHONE = "+8613698765432"
DESCRIPTION = "frostbite near the Yajiang pass"
QUESTION = "Is yak butter tea allowed during oxygen therapy leave?"
NOTE = "knees hurt after climbing"


def needles() -> dict[str, re.Pattern[str]]:
    """What must not survive: name, phones (with or without +86), readings, words."""
    words = ["Zhuoma", "Lhamo", "Gesang", "Dawa", "frostbite", "Yajiang", "yak butter", "knees"]
    found = {w: re.compile(re.escape(w), re.IGNORECASE) for w in words}
    for phone in (PHONE, CONTACT_PHONE):
        digits = phone.removeprefix("+86")
        found[digits] = re.compile(re.escape(digits))
    found["SpO2 83%"] = re.compile(r"(?<![\w.:])83\s?%")
    found["HR 131"] = re.compile(r"(?<![\w.:])131(?!\w)")
    found["38.6 °C"] = re.compile(r"(?<![\w.:])38\.6(?!\d)")
    return found


def dump(engine: Engine) -> list[tuple[str, str, str]]:
    """(table, column, text) of every text or JSON value in every table."""
    found = []
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(table.select()).mappings():
                for column, value in row.items():
                    if isinstance(value, str):
                        found.append((table.name, column, value))
                    elif isinstance(value, dict | list):
                        found.append((table.name, column, json.dumps(value, ensure_ascii=False)))
    return found


def leaks(engine: Engine) -> list[str]:
    return [
        f"{what} in {table}.{column}: {value[:160]!r}"
        for table, column, value in dump(engine)
        for what, pattern in needles().items()
        if pattern.search(value)
    ]


def questions_of(session: Any, person_id: int) -> list[str]:
    return list(session.exec(select(KbQuestion.text).where(KbQuestion.person_id == person_id)))


def register(db: Any) -> Person:
    """A cadre in Litang (Ganzi), with a phone and an emergency contact of their own."""
    db.call(people.ensure_admins, [ADMIN_ID], "zh-Hans")
    draft = Draft(
        language="en",
        consent_version=people.CONSENT_VERSION,
        real_name=NAME,
        phone=PHONE,
        home_unit="Jiaxing Water Bureau",
        prefecture="ganzi",
        county="ganzi.litang",
        posting_altitude_m=4014,
        altitude_source="county",
        assignment_start="2026-03-01",
        contact_name=CONTACT_NAME,
        contact_phone=CONTACT_PHONE,
    )
    person = db.call(people.submit_registration, CADRE, "Zhuoma", draft)
    db.call(people.decide, db.call(people.find, ADMIN_ID), person.id, True)
    return db.call(people.get, person.id)


@pytest.fixture
def settings(settings):
    # SMS configured (its gateway unreachable: those messages stay unsent, retried)
    return settings.model_copy(update={"sms_url": "http://127.0.0.1:9/sms"})


async def test_deleteme_leaves_nothing_of_the_person_in_any_table(bot):
    cadre_row = register(bot.db)
    duty = officer(bot.db, 2301, name="Zhang On", language="en")
    with bot.db.session() as s:  # a WeCom duty group whose robot cannot be reached
        s.add(
            DutyGroup(
                prefecture="ganzi",
                channel="wecom",
                name="Ganzi duty",
                webhook_url="http://127.0.0.1:9/cgi-bin/webhook/send?key=693a0000",
            )
        )
        s.commit()
    cadre = bot.user(CADRE, "Zhuoma", language_code="en")
    on_duty = bot.user(2301, "Zhang", language_code="en")
    bot.db.call(roster.go_on_duty, duty, None)
    async with emergency_running(bot):
        await on_duty.send("/sms 13800138001")
        await on_duty.wait_for("+8613800138001")

        await start_checkin(cadre)
        await walk_to_vitals(cadre, lls=(1, 0, 0, 0))
        await finish_vitals(cadre, spo2="83", hr="131", temp="38.6", note=NOTE)
        await cadre.wait_for("not a diagnosis")

        await cadre.send("/sos")
        alert_message = await on_duty.wait_for("SOS", timeout=10)
        assert NAME in alert_message.text
        # the last check-in is one tap away, under «ℹ️ Details» (the card is one screen)
        await on_duty.press(f"sos:info:{alert_message.text.split('#')[1].split()[0]}")
        await on_duty.callback_answer()
        details = await on_duty.wait_for("83%", timeout=10)
        assert NAME in details.text
        await cadre.wait_for("What is wrong?")
        await cadre.press("🏔 Altitude sickness")
        await cadre.wait_for("describe it in a few words")
        await cadre.send(DESCRIPTION)
        await cadre.wait_for("Passed on")
        await on_duty.wait_for("Yajiang")

        await cadre.send("/help")  # done describing: what follows is not for the alert
        await cadre.wait_for("/checkin")
        await cadre.send(QUESTION)
        await until(lambda: bot.db.call(questions_of, cadre_row.id) == [QUESTION])

        def states() -> set[str]:
            with bot.db.session() as s:
                return {r.status for r in s.exec(select(OutboxMessage))}

        await until(lambda: OutboxStatus.SENT in states() and OutboxStatus.PENDING in states())
        before = leaks(bot.db.engine)
        for expected in ("Zhuoma", "13712345678", "SpO2 83%", "HR 131", "Yajiang", "yak butter"):
            assert any(line.startswith(expected) for line in before), expected
        with bot.db.session() as s:
            channel_rows = s.exec(select(OutboxMessage).where(OutboxMessage.channel != "telegram"))
            assert {r.channel for r in channel_rows} == {"wecom", "sms"}

        await cadre.send("/deleteme")
        await cadre.wait_for("Delete all your data?")
        await cadre.press("del:yes")
        await cadre.wait_for("has been deleted")
        # the alert in the officer's chat is edited to a line without the person
        edited = await on_duty.wait_edit(alert_message, "deleted their personal data")
        assert NAME not in edited.text and "83" not in edited.text
        edited = await on_duty.wait_edit(details, "deleted their personal data")  # the same
        assert NAME not in edited.text and "83" not in edited.text

    assert leaks(bot.db.engine) == []
    with bot.db.session() as s:
        (kept,) = s.exec(select(Alert)).all()
        assert s.get(Person, cadre_row.id) is None
    assert kept.person_id is None and kept.status == AlertStatus.CANCELLED
    assert kept.created_at and kept.cancelled_at  # the record keeps its times
    await on_duty.send(f"/alert {kept.id}")
    shown = await on_duty.wait_for("a deleted person")
    assert NAME not in shown.text
    assert duty.id != cadre_row.id


def test_ids_are_not_reused_after_a_deletion(db):
    first = factories.person(db, 1401, real_name="First Cadre")
    first_alert = db.call(
        raising.raise_alert, person_id=first.id, cause="sos", policy=policy.Policy()
    )
    with db.session() as s:
        first_message = s.exec(select(OutboxMessage.id)).all()
    assert db.call(people.delete_own_data, 1401)
    second = factories.person(db, 1402, real_name="Second Cadre")
    second_alert = db.call(
        raising.raise_alert, person_id=second.id, cause="sos", policy=policy.Policy()
    )
    assert second.id > first.id and second_alert > first_alert
    with db.session() as s:
        assert s.get(Alert, first_alert).person_id is None  # kept as "a deleted person"
        assert s.get(Alert, second_alert).person_id == second.id
        new_ids = s.exec(select(OutboxMessage.id).where(OutboxMessage.person_id == second.id))
        assert min(new_ids, default=max(first_message, default=0) + 1) > max(
            first_message, default=0
        )
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as connection:
            tables = connection.execute(
                text(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'"
                )
            ).scalars()
            assert {"person", "alert", "alert_event", "outbox", "health_checkin"} <= set(tables)


def test_the_retention_pass_clears_the_text_of_messages_sent_long_enough_ago(db):
    person = factories.person(db, 1501, real_name="Sent Person")
    config = HealthConfig(outbox_sent_days=30)
    start = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        with db.session() as s:
            for key in ("sent", "failed", "waiting"):
                outbox.enqueue(
                    s,
                    chat_id=1501,
                    person_id=person.id,
                    text=f"SpO2 83% {key}",
                    idempotency_key=key,
                    source="test",
                )
            s.commit()
            for row in s.exec(select(OutboxMessage)):
                if row.idempotency_key == "sent":
                    row.status, row.sent_at = OutboxStatus.SENT, clock.now()
                elif row.idempotency_key == "failed":
                    row.status = OutboxStatus.FAILED
                s.add(row)
            s.commit()

    def payloads() -> dict[str, dict[str, Any]]:
        with db.session() as s:
            return {r.idempotency_key: r.payload for r in s.exec(select(OutboxMessage))}

    with time_machine.travel(start + timedelta(days=29), tick=False):
        db.call(reminders.retention_pass, config)
    assert all("83%" in str(p) for p in payloads().values())  # not yet
    with time_machine.travel(start + timedelta(days=31), tick=False):
        db.call(reminders.retention_pass, config)
        db.call(reminders.retention_pass, config)  # again: nothing more to clear
    kept = payloads()
    assert kept["sent"] == {"cleared": erasure.EXPIRED}
    assert kept["failed"] == {"cleared": erasure.EXPIRED}
    assert "83%" in kept["waiting"]["text"]  # still to be sent: untouched
    with db.session() as s:
        audits = people.audit_entries(s, reminders.RETENTION_AUDIT)
    assert [a.detail["messages_cleared"] for a in audits] == [0, 2, 0]
    assert all(a.detail["outbox_sent_days"] == 30 for a in audits)


def test_a_backup_made_after_a_deletion_holds_nothing_of_the_person(db, tmp_path):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL backups are pg_dump's (live rows only)")
    factories.person(db, 1601, real_name="Yangjin Backuptest")
    assert db.call(people.delete_own_data, 1601)
    copy = backup.backup_sqlite(db.engine, tmp_path / "after.db")
    assert b"Backuptest" not in copy.read_bytes()


def test_migration_0011_keeps_the_data_of_a_database_it_rebuilds(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0009")
    now = "2026-11-01 08:00:00.000000"
    with engine.begin() as c:
        for pid, tid, name in ((1, 111, "Kept Person"), (2, 222, "Gone Later"), (3, 333, "Top")):
            c.execute(
                text(
                    "INSERT INTO person (id, telegram_id, display_name, real_name, language, role,"
                    " status, created_at, updated_at) VALUES (:id, :tid, :n, :n, 'en', 'cadre',"
                    " 'active', :now, :now)"
                ),
                {"id": pid, "tid": tid, "n": name, "now": now},
            )
        for aid, pid in ((1, 1), (2, 2)):
            c.execute(
                text(
                    "INSERT INTO alert (id, person_id, cause, reasons, status, live_location,"
                    " stage, created_at) VALUES (:id, :pid, 'sos', '[]', 'resolved', 0, 1, :now)"
                ),
                {"id": aid, "pid": pid, "now": now},
            )
            c.execute(
                text(
                    "INSERT INTO alert_event (alert_id, at, kind, detail)"
                    " VALUES (:id, :now, 'raised', '{}')"
                ),
                {"id": aid, "now": now},
            )
        c.execute(text("DELETE FROM person WHERE id = 3"))  # its id must not come back
    upgrade(engine, "0011")
    assert schema_revision(engine) == "0011"
    with engine.begin() as c:
        assert c.execute(text("SELECT count(*) FROM alert_event")).scalar() == 2  # no cascade
        names = c.execute(text("SELECT real_name FROM person ORDER BY id")).scalars().all()
        assert names == ["Kept Person", "Gone Later"]
        c.execute(text("DELETE FROM person WHERE id = 2"))  # alerts outlive their person
        assert c.execute(text("SELECT person_id FROM alert WHERE id = 2")).scalar() is None
        c.execute(
            text(
                "INSERT INTO person (telegram_id, display_name, language, role, status,"
                " created_at, updated_at) VALUES (444, 'New', 'en', 'cadre', 'active', :now, :now)"
            ),
            {"now": now},
        )
        new_id = c.execute(text("SELECT id FROM person WHERE telegram_id = 444")).scalar()
        assert new_id == 3  # the highest id seen at the rebuild was 2 (3 was already gone)
        c.execute(text("DELETE FROM person WHERE id = 3"))
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO person (telegram_id, display_name, language, role, status,"
                " created_at, updated_at)"
                " VALUES (555, 'Newer', 'en', 'cadre', 'active', :now, :now)"
            ),
            {"now": now},
        )
        assert c.execute(text("SELECT id FROM person WHERE telegram_id = 555")).scalar() == 4

    from alembic import command

    from models.db import alembic_config

    command.downgrade(alembic_config(engine), "0009")
    with engine.connect() as c:
        assert c.execute(text("SELECT id FROM alert")).scalars().all() == [1]  # orphan gone
        assert c.execute(text("SELECT count(*) FROM alert_event")).scalar() == 1
        sql = c.execute(text("SELECT sql FROM sqlite_master WHERE name = 'person'")).scalar()
        assert "AUTOINCREMENT" not in sql
    upgrade(engine, "0011")
    assert schema_revision(engine) == "0011"
    with engine.connect() as c:
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM person")).scalar() == 2


def test_a_cleared_payload_keeps_what_an_edit_or_a_timeline_needs():
    cleared = erasure.cleared_payload({"text": "x", "edit_of": "k", "label": "群"}, "erased")
    assert cleared == {"edit_of": "k", "label": "群", "cleared": "erased"}
