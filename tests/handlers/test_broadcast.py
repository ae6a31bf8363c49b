"""Admin broadcasts, as admins and recipients see them: /broadcast, bilingual notices,
audiences, confirmation tracking, scheduling, cancelling, /broadcasts, CSV, tags, and people
who block the bot. Time is moved with time-machine, never slept through."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import select

from models import AuditEntry, BroadcastStatus, OutboxMessage, OutboxStatus, Role
from services import broadcasts, people
from tests.support.botfixtures import ADMIN_ID
from tests.support.factories import person

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f6c2f80000000049454e44ae426082"
)


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"broadcast_progress_interval": 0.5})


def admin_in(bot, language: str = "en"):
    bot.db.call(people.set_language, ADMIN_ID, language)
    return bot.admin(language_code="en" if language == "en" else "zh-hans")


async def eventually(condition, seconds: float = 5.0) -> None:
    """For state the bot writes to its database (no chat message to wait for)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def has_button(data: str):
    return lambda m: data in str(m.reply_markup)


async def compose(admin, text: str, *, versions: str = "one", second: str | None = None):
    await admin.send("/broadcast")
    await admin.wait_for("New broadcast")
    await admin.send(text)
    await admin.wait_for("Which language")
    await admin.press(f"bw:l:{versions}")
    if second is not None:
        await admin.wait_for("version")
        await admin.send(second)
    await admin.wait_for("Who should receive it?")


async def test_a_bilingual_notice_reaches_each_recipient_in_their_language(bot):
    admin = admin_in(bot, "en")
    person(bot.db, 1001, language="zh-Hans", real_name="王伟")
    person(bot.db, 1002, language="en", real_name="Li Na")
    zh, en = bot.user(1001), bot.user(1002, language_code="en")

    await compose(
        admin,
        "明天上午九点体检，请空腹。",
        versions="zh",
        second="Medical check tomorrow at 9:00 <fasting> & on time",
    )
    await admin.press("bw:a:all")
    await admin.wait_for("Preview")
    summary = await admin.wait_for("Ready to send")
    assert "<b>3</b>" in summary.raw_text  # the admin is one of everyone
    assert "Chinese 1" in summary.text and "English 2" in summary.text
    assert "Versions: English, Chinese" in summary.text
    await admin.press("bw:go")
    queued = await admin.wait_for("on its way to 3 people")
    assert "Broadcast #1" in queued.text

    got_zh = await zh.wait_for("体检")
    assert got_zh.text.startswith("📢 通知") and "Medical" not in got_zh.text
    got_en = await en.wait_for("Medical check")
    assert got_en.text.startswith("📢 Notice") and "<fasting> & on time" in got_en.text
    assert "体检" not in got_en.text
    progress = await admin.wait_for("Broadcast #1")
    report = await admin.wait_for("Report on broadcast #1")
    assert "Delivered to 3 of 3 (100%)" in report.text
    await admin.wait_edit(progress, "is finished")
    assert has_button("bc:csv:1")(report)


async def test_confirmation_tracking_and_resending_to_those_who_have_not(bot):
    admin = admin_in(bot, "en")
    person(bot.db, 1001, language="en", real_name="Wang Wei")
    person(bot.db, 1002, language="en", real_name="Li Na")
    first, second = bot.user(1001, language_code="en"), bot.user(1002, language_code="en")

    await compose(admin, "Please read the new altitude rules.")
    await admin.press("bw:a:role")
    await admin.wait_for("Which role?")
    await admin.press("bw:r:cadre")
    summary = await admin.wait_for("Ready to send")
    assert "every cadre" in summary.text and "<b>2</b>" in summary.raw_text
    await admin.press("bw:c")
    await admin.wait_edit(summary, "recipients tap")
    await admin.press("bw:go")

    notice = await first.wait_for("altitude rules")
    assert "Received ✓" in [b["text"] for b in notice.buttons]
    await second.wait_for("altitude rules")
    await first.press("Received ✓", message=notice)
    thanks = await first.callback_answer()
    assert "confirmation is recorded" in thanks.text
    await first.wait_edit(notice, lambda m: "Confirmed" in str(m.reply_markup))
    await first.press("bc:done", message=notice)  # pressing again does no harm
    await first.callback_answer()

    await admin.wait_for("Report on broadcast #1")
    await admin.send("/broadcasts")
    listing = await admin.wait_for("Recent broadcasts")
    assert "delivered 2/2 (100%)" in listing.text and "confirmed 1 (50%)" in listing.text
    await admin.press("bc:v:1", message=listing)
    detail = await admin.wait_for("Broadcast #1")
    assert "Confirmed “Received”: 1 of 2 (50%)" in detail.text
    await admin.press("bc:who:1", message=detail)
    who = await admin.wait_for("Not yet")
    assert "Confirmed (1): Wang Wei" in who.text and "Not yet (1): Li Na" in who.text
    await admin.press("bc:rs:1", message=detail)
    answer = await admin.callback_answer()
    assert answer.show_alert and "Re-sent to 1" in answer.text

    again = await second.wait_for("altitude rules")
    assert again is not None and len([m for m in second.bot_messages if "altitude" in m.text]) == 2
    assert len([m for m in first.bot_messages if "altitude" in (m.text or "")]) == 1
    await second.press("Received ✓", message=again)
    await second.callback_answer()
    await admin.wait_for("Report on broadcast #1")  # the re-send's own report
    rows = bot.db.call(broadcasts.recipients, 1)
    assert all(r.confirmed_at is not None for r in rows if r.telegram_id in (1001, 1002))


async def test_a_scheduled_broadcast_survives_a_restart_and_goes_out_on_time(bot):
    admin = admin_in(bot, "en")
    person(bot.db, 1001, language="en")
    user = bot.user(1001, language_code="en")
    start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
    with time_machine.travel(start, tick=True) as traveller:
        await compose(admin, "Oxygen delivery on Friday.")
        await admin.press("bw:a:all")
        summary = await admin.wait_for("Ready to send")
        assert "as soon as you confirm" in summary.text
        await admin.press("bw:w", message=summary)
        await admin.wait_for("When should it go out?")
        await admin.send("2026-13-01 25:00")
        await admin.wait_for("like 2026-12-02 18:30")  # tomorrow
        await admin.send("2026-12-01 09:00")  # in the past
        await admin.wait_for("in the past")
        await admin.send("2026-12-01 11:30")
        summary = await admin.wait_for("Ready to send")
        assert "at 2026-12-01 11:30" in summary.text
        await admin.press("bw:go", message=summary)
        await admin.wait_for("scheduled for 2026-12-01 11:30")
        assert bot.db.call(broadcasts.get, 1).status == BroadcastStatus.SCHEDULED

        await bot.restart()  # the job is rebuilt from the database
        assert bot.app.job_queue.scheduler.get_job("broadcast:start:1") is not None
        traveller.shift(timedelta(minutes=95))
        bot.app.job_queue.scheduler.wakeup()
        notice = await user.wait_for("Oxygen delivery", timeout=10)
        assert notice.text.startswith("📢 Notice")
        await admin.wait_for("Report on broadcast #1")
    assert bot.db.call(broadcasts.get, 1).status == BroadcastStatus.DONE


async def test_cancelling_a_scheduled_broadcast(bot):
    admin = admin_in(bot, "en")
    for n in range(12):
        person(bot.db, 1001 + n, language="en")
    users = [bot.user(1001 + n, language_code="en") for n in range(12)]
    start = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=True) as traveller:
        await compose(admin, "Scheduled then cancelled.")
        await admin.press("bw:a:all")
        await admin.wait_for("Ready to send")
        await admin.press("bw:w")
        await admin.wait_for("When should it go out?")
        await admin.press("bw:at:1h")
        await admin.wait_for("Ready to send")
        await admin.press("bw:go")
        await admin.wait_for("Broadcast #1 is scheduled")
        await admin.send("/broadcasts")
        listing = await admin.wait_for("Recent broadcasts")
        assert "scheduled" in listing.text
        await admin.press("bc:v:1", message=listing)
        detail = await admin.wait_for("Broadcast #1")
        await admin.press("bc:x:1", message=detail)
        sure = await admin.wait_for("Cancel broadcast #1?")
        await admin.press("bc:xx:1", message=sure)
        await admin.wait_edit(sure, "is cancelled")
        traveller.shift(timedelta(hours=2))
        bot.app.job_queue.scheduler.wakeup()
        await asyncio.sleep(0.3)
        assert not [m for u in users for m in u.bot_messages if "cancelled" in m.text]
        assert bot.app.job_queue.scheduler.get_job("broadcast:start:1") is None

    # A running broadcast is cancelled the same way: tests/bot/test_delivery_engine.py.


async def test_a_photo_to_a_tagged_cohort_and_its_csv(bot):
    admin = admin_in(bot, "en")
    tagged = person(bot.db, 1001, language="en", real_name="Zhao Lei")
    person(bot.db, 1002, language="en")
    user, other = bot.user(1001, language_code="en"), bot.user(1002, language_code="en")

    await admin.send("/tag Spring-2026 1001 #9999 abc")
    added = await admin.wait_for("Tag")
    assert "given to Zhao Lei." in added.text and "Not found: #9999 abc" in added.text
    await admin.send("/tags")
    assert "spring-2026</code> — 1" in (await admin.wait_for("Tags")).raw_text

    await admin.send("/broadcast")
    await admin.wait_for("New broadcast")
    await admin.send_photo(PNG, caption="Rest rotation <starts> Monday & Tuesday")
    await admin.wait_for("Which language")
    await admin.press("bw:l:one")
    await admin.wait_for("Who should receive it?")
    await admin.press("bw:a:tag")
    await admin.wait_for("Which tag?")
    await admin.press("bw:t:spring-2026")
    preview = await admin.wait_for(lambda m: m.photo is not None)
    assert "Rest rotation" in preview.caption
    summary = await admin.wait_for("Ready to send")
    assert "tag “spring-2026”" in summary.text and "<b>1</b>" in summary.raw_text
    await admin.press("bw:go")

    photo = await user.wait_for(lambda m: m.photo is not None)
    assert photo.caption.startswith("📢 Notice")
    assert "Rest rotation <starts> Monday & Tuesday" in photo.caption
    report = await admin.wait_for("Report on broadcast #1")
    assert not other.bot_messages
    await admin.press("bc:csv:1", message=report)
    await admin.wait_for(lambda m: m.document is not None)
    (exported,) = [f for f in admin.files if f.filename.endswith(".csv")]
    rows = list(csv.DictReader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert [(r["telegram_id"], r["name"], r["status"]) for r in rows] == [
        (str(tagged.telegram_id), "Zhao Lei", "sent")
    ]
    with bot.db.session() as session:
        actions = set(session.exec(select(AuditEntry.action)))
    assert {"person.tag", "broadcasts.created", "broadcasts.csv"} <= actions


async def test_only_admins_may_broadcast_and_odd_buttons_are_answered(bot):
    person(bot.db, 1001, language="en", role=Role.DUTY_OFFICER)
    officer = bot.user(1001, language_code="en")
    await officer.send("/broadcast")
    assert "This is for administrators." in (await officer.next_message()).text
    await officer.send("/broadcasts")
    assert "This is for administrators." in (await officer.next_message()).text
    await officer.press_forged("bc:ok:77")  # not a recipient of anything
    assert "no longer active" in (await officer.callback_answer()).text
    await officer.press_forged("bc:v:1")
    answer = await officer.callback_answer()
    assert answer.show_alert and "This is for administrators." in answer.text
    with bot.db.session() as session:
        denied = session.exec(
            select(AuditEntry).where(AuditEntry.action == "denied.broadcast")
        ).all()
    assert len(denied) == 3

    admin = admin_in(bot, "en")
    await admin.send("/broadcasts")
    await admin.wait_for("No broadcasts yet")
    await admin.press_forged("bc:v:abc")
    assert "no longer active" in (await admin.callback_answer()).text
    await admin.press_forged("bw:go")  # no draft
    await admin.callback_answer()
    await admin.send("/broadcast")
    await admin.wait_for("New broadcast")
    await admin.send("/cancel")
    await admin.wait_for("Broadcast discarded")
    assert bot.db.call(broadcasts.recent) == []


async def test_someone_who_blocks_the_bot_is_marked_and_the_admins_told_once(bot):
    admin = admin_in(bot, "en")
    person(bot.db, 1001, language="en", real_name="Sun Li")
    user = bot.user(1001, language_code="en")
    user.block()
    notice = await admin.wait_for("can no longer be reached")
    assert "Sun Li (Telegram id 1001): blocked the bot" in notice.text
    assert bot.db.call(people.find, 1001).unreachable_reason == "blocked"

    # A broadcast then fails for them without a second notice.
    admin_person = bot.db.call(people.find, ADMIN_ID)
    draft = broadcasts.Draft(kind="text", texts={"en": "Hello all."})
    bot.db.call(broadcasts.create, admin_person, ADMIN_ID, draft)
    report = await admin.wait_for("Report on broadcast #1")
    assert "blocked the bot or unreachable: 1" in report.text
    assert sum("can no longer be reached" in m.text for m in admin.bot_messages) == 1
    rows = {r.telegram_id: r for r in bot.db.call(broadcasts.recipients, 1)}
    assert rows[1001].status == "blocked" and "blocked" in rows[1001].cause

    user.unblock()
    await eventually(lambda: bot.db.call(people.find, 1001).unreachable_since is None)


async def test_the_request_to_approve_goes_through_the_outbox_and_is_edited_when_decided(bot):
    admin = admin_in(bot, "en")
    created = person(bot.db, 1001, approve=False, language="en", real_name="Qian Yu")
    from services import approvals

    user = bot.user(1001, language_code="en")
    bot.db.call(approvals.queue_requests, created)  # what registering queues
    request = await admin.wait_for("New registration request")
    await admin.press("✅ Approve", message=request)
    await admin.wait_edit(request, "Approved by")
    assert not request.buttons
    await user.wait_for("has been approved")

    def outcomes():
        with bot.db.session() as session:
            sent = session.exec(
                select(OutboxMessage).where(OutboxMessage.source == f"approval:{created.id}")
            ).all()
        return sorted((m.kind, m.status) for m in sent)

    await eventually(lambda: all(status == OutboxStatus.SENT for _, status in outcomes()))
    assert outcomes() == [
        ("edit", OutboxStatus.SENT),
        ("text", OutboxStatus.SENT),
        ("text", OutboxStatus.SENT),
    ]
