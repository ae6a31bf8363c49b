"""The 30-day chart attached to the duty officers' AMBER and RED health notices: queued in
the outbox with the notice, drawn by the delivery worker when it is sent, uploaded as a
photo right after the notice (a reply to it), through send failures and restarts."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime, timedelta

import time_machine
from PIL import Image
from sqlmodel import select

from emulator.faults import Fault
from emulator.media import tiny_png
from models import Alert, AuditEntry, OutboxMessage, OutboxStatus, OutcomeCode, Priority
from services import outbox, roster
from services.alerts import raising
from services.health import checkins, reminders
from services.health.assessment import Readings
from services.health.charts import PNG_SIGNATURE
from services.outbox.attachments import Attachment, register_renderer
from tests.support.botfixtures import ADMIN_ID
from tests.support.checkin_helpers import (
    CONFIG,
    POLICY,
    amber_tomorrow_at_0830,
    delivery_running,
    finish_vitals,
    make_person,
    officer,
    start_checkin,
    walk_to_vitals,
)

CAPTION_LIMIT = 1024  # Telegram's, enforced by the emulator too
PHOTO_LIMIT = 10 * 1024 * 1024


async def eventually(condition, seconds: float = 10.0) -> None:
    """Poll for a database condition (outcomes of bulk messages are written in batches)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def chart_rows(db) -> list[OutboxMessage]:
    with db.session() as s:
        query = select(OutboxMessage).where(OutboxMessage.kind == "photo")
        return list(s.exec(query.order_by(OutboxMessage.id)))


def assert_chart_follows(user, notice, photo, *, next_one: bool = True) -> bytes:
    """The photo comes right after the notice in the officer's chat (`next_one`), replies
    to it, and is a real PNG within Telegram's limits, uploaded with the message."""
    messages = user.bot_messages
    if next_one:
        assert messages.index(photo) == messages.index(notice) + 1
    else:
        assert messages.index(photo) > messages.index(notice)
    assert photo.reply_to_message_id == notice.message_id
    assert photo.photo is not None and photo.photo.data is not None
    png = photo.photo.data
    assert png.startswith(PNG_SIGNATURE) and len(png) < PHOTO_LIMIT
    width, height = Image.open(io.BytesIO(png)).size
    assert width >= 600 and height >= 600 and width + height <= 10000
    assert len(photo.caption) <= CAPTION_LIMIT
    return png


def next_escalation(db) -> datetime:
    with db.session() as s:
        (alert,) = s.exec(select(Alert)).all()
        assert alert.next_escalation_at is not None
        return alert.next_escalation_at


def upload_requests(bot) -> list:
    return [r for r in bot.emulator.requests if r.method == "sendPhoto" and r.files]


async def test_amber_persisting_24_hours_reaches_the_officer_with_the_chart(bot):
    async with amber_tomorrow_at_0830(bot) as (officer_user, traveller, start):
        assert chart_rows(bot.db) == []  # AMBER once: nobody is told, no chart
        traveller.move_to(start + timedelta(hours=24, minutes=1))
        await bot.db.run(reminders.run_pass, CONFIG)
        notice = await officer_user.wait_for("AMBER for 24 hours", timeout=10)
        photo = await officer_user.wait_for(lambda m: m.photo is not None, timeout=15)
        png = assert_chart_follows(officer_user, notice, photo)
        assert "Li Wei" in photo.caption and "30 days" in photo.caption
        assert "This is not a diagnosis" in photo.caption
        # The 📈 button still draws the current chart on demand.
        await officer_user.press("📈 30-day chart", message=notice)
        again = await officer_user.wait_for(lambda m: m.photo is not None)
        assert again.photo.data.startswith(PNG_SIGNATURE)
        # A second pass tells nobody twice, and sends no second chart.
        await bot.db.run(reminders.run_pass, CONFIG)
        await eventually(lambda: chart_rows(bot.db)[0].status == OutboxStatus.SENT)
    (row,) = chart_rows(bot.db)
    assert (row.status, row.priority) == (OutboxStatus.SENT, Priority.URGENT)  # as its notice
    assert "photo" not in row.payload and row.payload["render"] == "health.chart"
    assert len(str(row.payload)) < 1000  # a reference, not the picture
    (upload,) = upload_requests(bot)[:1]
    assert upload.content_type == "multipart/form-data" and upload.files["photo"].data == png
    with bot.db.session() as s:
        audited = s.exec(select(AuditEntry).where(AuditEntry.action == "checkin.chart_sent")).all()
    assert len(audited) == 1 and "spo2" not in str(audited[0].detail).lower()


async def test_a_red_check_in_alerts_the_on_duty_officer_then_sends_the_chart(bot):
    cadre = make_person(bot.db, 1005, "李伟", language="zh-Hans")
    duty = officer(bot.db, 5001, language="zh-Hans")
    bot.db.call(roster.go_on_duty, duty, 8)
    officer_user = bot.user(5001, "赵")
    user = bot.user(1005, "李")
    async with delivery_running(bot):
        await start_checkin(user)
        await walk_to_vitals(user, lls=(1, 0, 0, 0))
        await finish_vitals(user, spo2="70", hr="ci:hr:none", temp="ci:temp:none")
        await user.wait_for(lambda m: "120" in (m.text or ""), timeout=10)
        alert = await officer_user.wait_for(lambda m: "李伟" in m.content, timeout=10)
        photo = await officer_user.wait_for(lambda m: m.photo is not None, timeout=15)
        assert_chart_follows(officer_user, alert, photo)
        assert "李伟" in photo.caption and "这不是医学诊断" in photo.caption
        assert all(m.photo is None for m in user.bot_messages)  # the cadre has /trend
    rows = chart_rows(bot.db)
    with bot.db.session() as s:
        (raised,) = s.exec(select(Alert)).all()
    assert [r.idempotency_key for r in rows] == [f"alert:{raised.id}:chart:{duty.id}"]
    assert rows[0].priority == Priority.URGENT  # below the EMERGENCY alert
    assert raised.person_id == cadre.id


async def test_the_chart_follows_the_alert_to_each_tier_within_the_area_only(bot):
    make_person(bot.db, 1005, "Li Wei")
    duty = officer(bot.db, 5001, language="en")
    officer(bot.db, 5002, prefecture="aba", language="en", name="Officer Ma")
    bot.db.call(roster.go_on_duty, duty, 8)
    officer_user = bot.user(5001, "Zhao", language_code="en")
    outsider_user = bot.user(5002, "Ma", language_code="en")
    admin_user = bot.admin()
    user = bot.user(1005, "Li", language_code="en")
    with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
        async with delivery_running(bot):
            await start_checkin(user)
            await walk_to_vitals(user)
            await finish_vitals(user, spo2="70")
            await officer_user.wait_for(lambda m: m.photo is not None, timeout=15)
            traveller.move_to(next_escalation(bot.db) + timedelta(seconds=1))
            await bot.timers.sos.escalate()  # stage 2: the area's officers and the admins
            admin_alert = await admin_user.wait_for(lambda m: "Li Wei" in m.content, timeout=10)
            admin_photo = await admin_user.wait_for(lambda m: m.photo is not None, timeout=15)
            assert_chart_follows(admin_user, admin_alert, admin_photo)
            assert "这不是医学诊断" in admin_photo.caption  # in the admin's language
            traveller.move_to(next_escalation(bot.db) + timedelta(seconds=1))
            await bot.timers.sos.escalate()  # stage 3: every duty officer, any area
            await outsider_user.wait_for(lambda m: "Li Wei" in m.content, timeout=10)
    assert sorted(r.chat_id for r in chart_rows(bot.db)) == sorted([5001, ADMIN_ID])
    assert all(m.photo is None for m in outsider_user.bot_messages)
    assert len([m for m in officer_user.bot_messages if m.photo is not None]) == 1


async def test_a_red_flag_alone_has_nothing_to_draw_so_the_alert_goes_alone(bot):
    make_person(bot.db, 1005, "Li Wei")
    officer(bot.db, 5001, language="en")
    officer_user = bot.user(5001, "Zhao", language_code="en")
    user = bot.user(1005, "Li", language_code="en")
    async with delivery_running(bot):
        await start_checkin(user)
        await user.press("ci:feeling:unwell")
        await user.wait_for(lambda m: "ci:flags:none" in str(m.reply_markup))
        await user.press("Breathless even at rest")
        await officer_user.wait_for(lambda m: "Li Wei" in m.content, timeout=10)
    assert chart_rows(bot.db) == []
    assert all(m.photo is None for m in officer_user.bot_messages)


async def test_failed_uploads_and_a_restart_still_deliver_the_chart_once(bot):
    make_person(bot.db, 1005, "Li Wei")
    duty = officer(bot.db, 5001, language="en")
    bot.db.call(roster.go_on_duty, duty, 8)
    officer_user = bot.user(5001, "Zhao", language_code="en")
    user = bot.user(1005, "Li", language_code="en")
    failing = bot.emulator.faults.add(Fault.server_error(), methods="sendPhoto")
    async with delivery_running(bot):
        await start_checkin(user)
        await walk_to_vitals(user)
        await finish_vitals(user, spo2="70")
        alert = await officer_user.wait_for(lambda m: "Li Wei" in m.content, timeout=10)
        await eventually(lambda: failing.hits >= 2, seconds=15)  # retried, still failing
    await bot.restart()  # the chart is still waiting in the outbox
    bot.emulator.faults.clear()
    async with delivery_running(bot):
        photo = await officer_user.wait_for(lambda m: m.photo is not None, timeout=20)
        assert_chart_follows(officer_user, alert, photo, next_one=False)  # the details came
        await eventually(lambda: chart_rows(bot.db)[0].status == OutboxStatus.SENT)
    assert len([m for m in officer_user.bot_messages if m.photo is not None]) == 1
    (row,) = chart_rows(bot.db)
    assert row.status == OutboxStatus.SENT and row.attempts >= 2


# ------------------------------------------------------- the outbox's drawn files, generic


def _drawn(width: int = 800, height: int = 600):
    def loader(session, args):
        if args.get("gone"):
            return None
        if args.get("broken"):
            return Attachment("x.png", lambda: 1 / 0)  # a bug in the drawing
        return Attachment("test.png", lambda: tiny_png(width, height))

    return loader


async def wait_status(db, key: str, *statuses: OutboxStatus) -> OutboxMessage:
    await eventually(lambda: db.call(outbox.find, key).status in statuses)
    return db.call(outbox.find, key)


async def test_drawn_files_split_long_captions_and_end_cleanly_when_they_cannot_be_drawn(
    bot, emulator
):
    register_renderer("test.png", _drawn())
    user = emulator.user(3400, "U", language_code="en")
    gone_user = emulator.user(3401, "Gone")
    gone_user.block(notify=False)
    caption = "Chart " + "高原" * 700  # 1,406 characters: more than a caption may hold

    def queue(session):
        common = {"priority": Priority.URGENT, "kind": "photo"}  # the notices: EMERGENCY (0)
        draw = {"render": "test.png", "args": {}}
        outbox.enqueue(session, chat_id=user.id, text="notice", idempotency_key="t:n", priority=0)
        outbox.enqueue(
            session,
            chat_id=user.id,
            text=caption,
            idempotency_key="t:photo",
            payload={**draw, "after": "t:n"},
            **common,
        )
        outbox.enqueue(
            session,
            chat_id=user.id,
            idempotency_key="t:gone",
            payload={"render": "test.png", "args": {"gone": True}},
            **common,
        )
        outbox.enqueue(
            session,
            chat_id=user.id,
            idempotency_key="t:broken",
            payload={"render": "test.png", "args": {"broken": True}},
            **common,
        )
        outbox.enqueue(
            session,
            chat_id=user.id,
            idempotency_key="t:unknown",
            payload={"render": "no.such.renderer"},
            **common,
        )
        # The message it follows can never be sent (blocked): it is dropped, never sent.
        outbox.enqueue(session, chat_id=gone_user.id, text="x", idempotency_key="t:b", priority=0)
        outbox.enqueue(
            session,
            chat_id=gone_user.id,
            idempotency_key="t:b:photo",
            payload={**draw, "after": "t:b"},
            **common,
        )

    bot.db.call(queue)
    notice = await user.wait_for("notice", timeout=10)
    photo = await user.wait_for(lambda m: m.photo is not None, timeout=10)
    rest = await user.wait_for(lambda m: m.text is not None and "高原" in m.text, timeout=10)
    assert photo.reply_to_message_id == notice.message_id
    assert len(photo.caption) <= CAPTION_LIMIT
    assert (photo.caption + rest.text).replace(" ", "") == caption.replace(" ", "")  # all of it
    assert (photo.photo.width, photo.photo.height) == (800, 600)
    assert photo.photo.data.startswith(PNG_SIGNATURE)
    sent = await wait_status(bot.db, "t:photo", OutboxStatus.SENT)
    assert sent.parts_sent == 1
    gone = await wait_status(bot.db, "t:gone", OutboxStatus.CANCELLED)
    assert "nothing to draw" in gone.outcome
    for key in ("t:broken", "t:unknown"):  # retrying cannot help: failed once, for good
        failed = await wait_status(bot.db, key, OutboxStatus.FAILED)
        assert (failed.outcome_code, failed.attempts) == (OutcomeCode.BAD_REQUEST, 1)
    dropped = await wait_status(bot.db, "t:b:photo", OutboxStatus.CANCELLED)
    assert dropped.outcome_code == OutcomeCode.NO_TARGET
    assert [m for m in user.bot_messages if m.photo is not None] == [photo]
    assert gone_user.bot_messages == []


async def test_charts_being_drawn_never_hold_back_an_emergency_text(bot, emulator):
    """Drawing holds no send slot: with every slot's worth of charts stuck in drawing, an
    SOS to someone else still goes out."""
    release = threading.Event()

    def loader(session, args):
        return Attachment("slow.png", lambda: release.wait(30) and tiny_png(700, 700))

    register_renderer("test.slow", loader)
    officers = [emulator.user(3500 + n, f"O{n}") for n in range(12)]
    responder = emulator.user(3600, "R")
    async with delivery_running(bot) as worker:
        worker.concurrency = 1  # 1 + 8 reserved slots: fewer than the charts

        def queue(session):
            for user in officers:
                outbox.enqueue(
                    session,
                    chat_id=user.id,
                    priority=Priority.URGENT,
                    idempotency_key=f"t:slow:{user.id}",
                    kind="photo",
                    text="chart",
                    payload={"render": "test.slow", "args": {}},
                )

        bot.db.call(queue)
        await eventually(lambda: len(worker._tasks) >= len(officers))  # all being drawn
        bot.db.call(
            outbox.enqueue,
            chat_id=responder.id,
            text="SOS from Li Wei",
            priority=Priority.EMERGENCY,
            idempotency_key="t:sos",
        )
        await responder.wait_for("SOS from Li Wei", timeout=10)
        assert all(u.bot_messages == [] for u in officers)  # still drawing
        release.set()
        for user in officers:
            await user.wait_for(lambda m: m.photo is not None, timeout=20)


def test_without_the_emergency_path_the_chart_follows_the_direct_red_message(db, monkeypatch):
    def broken(session, **kw):
        raise RuntimeError("the emergency path is down")

    monkeypatch.setattr(raising, "raise_alert", broken)
    cadre = make_person(db, 1001)
    duty = officer(db, 5001, language="zh-Hans")
    low = Readings(headache=0, gi=0, fatigue=0, dizziness=0, spo2=70, heart_rate=80)
    outcome = db.call(checkins.submit, cadre.id, low, config=CONFIG, policy=POLICY)
    assert outcome.alert_id is None and outcome.officers_told == 1
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.chat_id == duty.telegram_id))
        notice, chart = rows.all()
    assert notice.priority == Priority.EMERGENCY and "🔴" in notice.payload["text"]
    assert (chart.kind, chart.priority) == ("photo", Priority.URGENT)
    assert chart.payload["after"] == notice.idempotency_key
    assert "这不是医学诊断" in chart.payload["text"]
