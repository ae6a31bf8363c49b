"""The delivery engine against the Bot API emulator: the real Application (worker included),
with the emulator enforcing Telegram's limits and injecting faults.

Rates are raised in both the emulator and the bot (as with paid broadcasts) so that a
1,000-recipient broadcast takes seconds while every message still goes through the
limiter: the emulator answers 429 to anything beyond its limits."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert
from sqlmodel import select

from bot import delivery as delivery_module
from emulator.faults import Fault, FaultKind
from models import (
    OutboxMessage,
    OutboxStatus,
    OutcomeCode,
    Person,
    Priority,
    Role,
    Status,
)
from services import broadcasts, clock, outbox, people
from services.broadcasts import Draft
from services.outbox.outcomes import record_outcomes
from tests.support.botfixtures import ADMIN_ID

RATE = 400  # messages/s in the emulator and the bot for the 1,000-recipient tests
FIRST_ID = 200_000


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "delivery_rate": RATE,
            "delivery_send_timeout": 2.0,  # a loaded test machine may take a second
            "delivery_concurrency": 96,  # timed-out sends hold a slot for a second
            "broadcast_progress_interval": 0.5,
        }
    )


def add_people(
    db, count: int, *, first: int = FIRST_ID, english_every: int = 3, prefecture: str = "ganzi"
) -> list[int]:
    """`count` active cadres in one statement (registration is tested elsewhere)."""
    now = clock.now()
    ids = list(range(first, first + count))
    rows = [
        {
            "telegram_id": i,
            "display_name": f"U{i}",
            "real_name": f"Cadre {i}",
            "language": "en" if i % english_every == 0 else "zh-Hans",
            "role": Role.CADRE.value,
            "status": Status.ACTIVE.value,
            "prefecture": prefecture,
            "created_at": now,
            "updated_at": now,
        }
        for i in ids
    ]
    with db.engine.begin() as connection:
        connection.execute(insert(Person.__table__), rows)
    return ids


def notices(emulator, chat_id: int, marker: str) -> list:
    chat = emulator.world.chats.get(chat_id)
    if chat is None:
        return []
    return [m for m in chat.messages.values() if m.from_bot and marker in (m.content or "")]


def start_broadcast(db, text_zh: str, text_en: str, **options) -> int:
    admin = db.call(people.find, ADMIN_ID)
    draft = Draft(kind="text", texts={"zh-Hans": text_zh, "en": text_en}, **options)
    return db.call(broadcasts.create, admin, ADMIN_ID, draft).id


def outcome_counts(db, broadcast_id: int) -> Counter:
    with db.session() as session:
        rows = session.exec(
            select(OutboxMessage.status, OutboxMessage.outcome_code).where(
                OutboxMessage.source == broadcasts.source_of(broadcast_id)
            )
        ).all()
    return Counter((str(s), c) for s, c in rows)


async def test_a_broadcast_to_1000_within_telegrams_limits(bot, emulator):
    emulator.rate_limits.enable(global_per_second=RATE)
    ids = add_people(bot.db, 1000)
    for i in ids:
        emulator.user(i, f"U{i}", language_code="en" if i % 3 == 0 else "zh-hans")
    blocked = ids[10:30]
    for i in blocked:
        emulator.block(i, notify=False)
    never_started = ids[40:45]
    for i in never_started:
        emulator.world.chats[i].started = False
    emulator.faults.add(Fault.retry_after(1), methods="sendMessage", times=1)  # one 429
    admin = bot.admin()

    broadcast_id = start_broadcast(bot.db, "明天九点开会。", "Meeting at nine tomorrow.")
    report = await admin.wait_for(f"群发 #{broadcast_id} 发送报告", timeout=40)

    unreachable = set(blocked) | set(never_started)
    for i in ids:
        got = notices(emulator, i, "Meeting at nine" if i % 3 == 0 else "明天九点开会")
        assert len(got) == (0 if i in unreachable else 1), i
    # The one injected 429 was honoured; the limiter never provoked another.
    assert emulator.rate_limits.count == 0
    assert emulator.count("sendMessage", status=429) == 1
    rows = {r.telegram_id: r for r in bot.db.call(broadcasts.recipients, broadcast_id)}
    assert len(rows) == 1001  # the admin is one of "everyone"
    assert {i for i, r in rows.items() if r.status == "blocked"} == unreachable
    assert all(rows[i].status == "sent" for i in ids if i not in unreachable)
    assert "976/1001" in report.text and "屏蔽机器人或无法联系：25" in report.text
    # The unreachable are marked, and the admin is told about each of them exactly once.
    marked = [bot.db.call(people.find, i) for i in unreachable]
    assert all(p.unreachable_since is not None for p in marked)
    assert {p.unreachable_reason for p in marked} == {"blocked", "not_started"}
    told = [m.text for m in admin.bot_messages if "无法通过 Telegram 联系到" in m.text]
    for i in unreachable:
        assert sum(f"Telegram ID {i}）" in text for text in told) == 1


async def test_twenty_percent_failures_everyone_gets_it_duplicates_only_after_lost_replies(
    bot, emulator, monkeypatch
):
    monkeypatch.setattr(delivery_module, "BACKOFF_BASE", 0.1)  # retries sooner, same shape
    ids = add_people(bot.db, 1000, english_every=1)
    for i in ids:
        emulator.user(i, f"U{i}", language_code="en")
    emulator.rate_limits.enable(global_per_second=RATE)
    sends = ["sendMessage"]
    emulator.faults.add(Fault.server_error(), methods=sends, probability=0.05)
    emulator.faults.add(Fault.drop(), methods=sends, probability=0.05)
    emulator.faults.add(Fault.lost_reply(), methods=sends, probability=0.05)
    emulator.faults.add(Fault.slow(3.0), methods=sends, probability=0.05)  # > send timeout
    admin = bot.admin()

    broadcast_id = start_broadcast(bot.db, "请注意防寒。", "Keep warm, please.")
    await admin.wait_for(f"群发 #{broadcast_id} 发送报告", timeout=50)

    failed = emulator.faults.count()
    assert 0.15 * 1000 <= failed <= 0.3 * 1300, failed
    # A send whose reply never came back (lost, or too late: the bot timed out) may have
    # been delivered: only there is a duplicate accepted.
    unknown = Counter(
        int(r.params["chat_id"])
        for r in emulator.calls("sendMessage")
        if r.performed and (r.fault in (FaultKind.LOST_REPLY, FaultKind.SLOW) or r.abandoned)
    )
    assert unknown, "the faults should have lost some replies"
    for i in ids:
        got = len(notices(emulator, i, "Keep warm"))
        assert 1 <= got <= 1 + unknown[i], (i, got, unknown[i])
        if unknown[i] == 0:
            assert got == 1, i
    counts = outcome_counts(bot.db, broadcast_id)
    assert counts == Counter({("sent", "sent"): 1001})  # the admin is one of "everyone"
    assert emulator.rate_limits.count == 0
    # Every failure is on record with its cause before the message got through.
    with bot.db.session() as session:
        retried = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.source == broadcasts.source_of(broadcast_id),
                OutboxMessage.attempts > 1,
            )
        ).all()
    assert len(retried) >= 100
    assert all(r.outcome for r in retried)


async def test_an_emergency_during_a_1000_recipient_broadcast_goes_out_ahead_of_it(bot, emulator):
    """Each emergency takes the next free slot: only the broadcast messages already in
    flight or sent while it was claimed (a fraction of a second at the test's 100/s) go out
    before it, never the hundreds still queued. Counted in messages, not seconds, so that a
    loaded machine does not fail it; the latency is benchmarks/delivery_bench.py's figure."""
    rate = 100  # slower, so that the broadcast is still running when the emergencies come
    emulator.rate_limits.enable(global_per_second=rate)
    bot.settings = bot.settings.model_copy(update={"delivery_rate": rate})
    await bot.restart()
    delivery = bot.app.bot_data["deps"].delivery
    ids = add_people(bot.db, 1000)
    for i in ids:
        emulator.user(i, f"U{i}")
    officers = [emulator.user(7000 + n, f"Officer {n}") for n in range(5)]
    bot.db.call(people.set_language, ADMIN_ID, "en")
    admin = bot.admin(language_code="en")
    broadcast_id = start_broadcast(bot.db, "例行通知。", "Routine notice.")

    def sent_so_far() -> int:
        return emulator.count("sendMessage", status=200)

    await emulator.requests_signal.wait_for(lambda: sent_so_far() >= 200, 20)
    overtaken_by = []  # broadcast messages sent between an emergency's queueing and its send
    for n, officer in enumerate(officers):
        since = len(emulator.requests)
        await bot.db.run(
            outbox.enqueue,
            chat_id=officer.id,
            text=f"🆘 SOS {n}",
            priority=Priority.EMERGENCY,
            idempotency_key=f"test:sos:{n}",
        )
        record = await emulator.wait_for_request(
            "sendMessage", lambda r, n=n: f"SOS {n}" in str(r.params.get("text")), timeout=5
        )
        overtaken_by.append(
            sum(
                1
                for r in emulator.requests[since:]
                if r.seq < record.seq and r.method == "sendMessage" and "SOS" not in str(r.params)
            )
        )
        await asyncio.sleep(0.2)  # the broadcast goes on between the emergencies
    assert max(overtaken_by) <= 100, overtaken_by
    assert sent_so_far() < 1000, "the broadcast should still have been running"
    assert emulator.rate_limits.count == 0

    # The admin cancels the rest from /broadcasts while it runs.
    progress = await admin.wait_for(f"Broadcast #{broadcast_id}")
    await admin.send("/broadcasts")
    listing = await admin.wait_for("Recent broadcasts")
    assert "sending" in listing.text
    await admin.press(f"bc:v:{broadcast_id}", message=listing)
    detail = await admin.wait_for("Delivery rate")
    await admin.press(f"bc:x:{broadcast_id}", message=detail)
    sure = await admin.wait_for("Cancel broadcast")
    await admin.press(f"bc:xx:{broadcast_id}", message=sure)
    await admin.wait_edit(sure, "is cancelled")
    await admin.wait_edit(progress, "was cancelled")
    in_flight_at_cancel = sent_so_far()
    await asyncio.sleep(0.5)  # let the sends already in flight finish
    settled = sent_so_far()
    assert settled - in_flight_at_cancel <= delivery.concurrency + 8
    await asyncio.sleep(0.5)
    assert sent_so_far() == settled  # nothing more of it goes out
    broadcast = bot.db.call(broadcasts.get, broadcast_id)
    stats = bot.db.call(broadcasts.stats, broadcast)
    delivered = sum(
        len(notices(emulator, i, "Routine notice" if i % 3 == 0 else "例行通知")) for i in ids
    )
    delivered += len(notices(emulator, ADMIN_ID, "Routine notice"))
    assert stats.sent == delivered and stats.pending == 0
    assert stats.sent + stats.cancelled == 1001 and stats.cancelled > 300


async def test_messages_left_sending_by_a_crash_are_sent_after_a_restart(bot, emulator):
    users = [emulator.user(3000 + n, f"U{n}") for n in range(3)]
    await bot.stop()
    with bot.db.session() as session:
        for n, user in enumerate(users):
            message = outbox.enqueue(
                session,
                chat_id=user.id,
                text=f"reminder {n}",
                priority=Priority.REMINDER,
                idempotency_key=f"test:crash:{n}",
            )
            message.status = OutboxStatus.SENDING  # taken by a worker that was then killed
            session.add(message)
    await bot.start()
    for n, user in enumerate(users):
        await user.wait_for(f"reminder {n}")
    await asyncio.sleep(0.2)  # outcomes are written in batches
    row = bot.db.call(outbox.find, "test:crash:0")
    assert row.status == OutboxStatus.SENT and row.attempts == 2  # the lost one + this one


async def test_a_retry_due_while_its_outcome_is_being_written_is_still_sent(
    bot, emulator, monkeypatch
):
    """The outcome of a failed send is committed in a worker thread; until the writer
    resumes, the row is pending in the table while the worker still remembers it. A claim
    in that gap must not take the row and then drop it (it would stay "sending" for good:
    seen as one broadcast message never delivered under load)."""
    monkeypatch.setattr(delivery_module, "BACKOFF_BASE", 0.01)  # the retry is due at once
    user = emulator.user(3100, "U")
    emulator.faults.add(Fault.server_error(), methods="sendMessage", times=1)
    delivery = bot.app.bot_data["deps"].delivery
    db = delivery.db
    original = db.run

    async def slow_to_resume(fn, *args, **kwargs):
        result = await original(fn, *args, **kwargs)
        if fn is record_outcomes:
            delivery._claim_event.set()  # e.g. another message queued meanwhile
            await asyncio.sleep(0.3)  # a busy loop: the claimer runs before the writer
        return result

    monkeypatch.setattr(db, "run", slow_to_resume)
    bot.db.call(outbox.enqueue, chat_id=user.id, text="Keep warm", idempotency_key="test:gap")
    got = await user.wait_for("Keep warm", timeout=10)
    assert got.text == "Keep warm"
    assert emulator.faults.count() == 1


async def test_long_texts_are_split_and_edits_follow_the_message(bot, emulator):
    user = emulator.user(3100, "U")
    long_text = "\n".join(f"第 {n} 行：" + "高原反应" * 40 for n in range(60))
    assert len(long_text) > 4096 * 2
    keyboard = outbox.inline_keyboard([[("OK", "x:ok")]])
    bot.db.call(
        outbox.enqueue,
        chat_id=user.id,
        text=long_text,
        reply_markup=keyboard,
        priority=Priority.URGENT,
        idempotency_key="test:long",
    )
    bot.db.call(outbox.enqueue_edit, edit_of="test:long", text="<b>edited</b>")
    last = await user.wait_for(lambda m: bool(m.buttons), timeout=10)
    parts = user.bot_messages
    assert len(parts) == 3 and parts[-1] is last
    await user.wait_edit(last, "edited")
    texts = [m.text for m in parts[:-1]] + [last.history[0].text]
    assert all(len(text) <= 4096 for text in texts)
    assert "".join(texts).replace("\n", "") == long_text.replace("\n", "")
    row = bot.db.call(outbox.find, "test:long")
    assert row.telegram_message_id == last.message_id and row.parts_sent == len(parts) - 1


async def test_bad_html_still_arrives_as_plain_text(bot, emulator):
    user = emulator.user(3200, "U")
    bot.db.call(
        outbox.enqueue,
        chat_id=user.id,
        text="Oxygen <b>low & unclosed",
        priority=Priority.EMERGENCY,
        idempotency_key="test:badhtml",
    )
    got = await user.wait_for("Oxygen")
    assert got.text == "Oxygen low & unclosed"
    await asyncio.sleep(0.2)
    row = bot.db.call(outbox.find, "test:badhtml")
    assert row.status == OutboxStatus.SENT and row.outcome_code == OutcomeCode.SENT_PLAIN


async def test_permanent_failures_stop_and_transient_ones_give_up_after_the_limit(bot, emulator):
    gone = emulator.user(3300, "Gone")
    gone.block(notify=False)
    emulator.faults.add(Fault.server_error(), methods="sendMessage", times=None)
    bot.db.call(
        outbox.enqueue,
        chat_id=424242,  # nobody: chat not found
        text="hello",
        idempotency_key="test:nochat",
    )
    bot.db.call(outbox.enqueue, chat_id=gone.id, text="hello", idempotency_key="test:gone")
    # While Telegram answers 502, the message is retried, never given up.
    start = asyncio.get_running_loop().time()
    while bot.db.call(outbox.find, "test:gone").outcome_code != OutcomeCode.RETRY:
        assert asyncio.get_running_loop().time() - start < 5, "no attempt was recorded"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert bot.db.call(outbox.find, "test:gone").status in (
        OutboxStatus.PENDING,
        OutboxStatus.SENDING,
    )
    emulator.faults.clear()
    start = asyncio.get_running_loop().time()
    while asyncio.get_running_loop().time() - start < 5:
        rows = [bot.db.call(outbox.find, k) for k in ("test:nochat", "test:gone")]
        if all(r.status == OutboxStatus.FAILED for r in rows):
            break
        await asyncio.sleep(0.1)
    nochat, blocked = rows
    assert (nochat.status, nochat.outcome_code) == (OutboxStatus.FAILED, OutcomeCode.CHAT_NOT_FOUND)
    assert (blocked.status, blocked.outcome_code) == (OutboxStatus.FAILED, OutcomeCode.BLOCKED)
    assert "blocked" in blocked.outcome and blocked.attempts >= 2


async def test_delivery_settings_are_validated():
    from pydantic import ValidationError

    from config import Settings

    with pytest.raises(ValidationError):
        Settings(_env_file=None, delivery_rate=0)
    assert Settings(_env_file=None).delivery_rate == 30
    assert timedelta(seconds=Settings(_env_file=None).broadcast_progress_interval).seconds == 3
