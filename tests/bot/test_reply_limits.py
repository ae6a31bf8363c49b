"""Replies survive Telegram's limits: a handler's own reply, edit or callback answer that
meets a 429, a 502/503/504 or a dropped connection is sent again (bot.delivery's
ReplyAccounting, the Application's rate limiter), and what Telegram still refuses is handed
to the outbox instead of being lost or turning into "something went wrong".

The limiter's waits are recorded, not slept through (`waits`)."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import select

from bot.reply_limits import REPLY_WAIT_LIMIT, ReplyAccounting
from emulator.driver import FakeUser
from emulator.faults import Fault
from models import Alert, AlertStatus, OutboxMessage, OutboxStatus, Priority
from tests.support import factories
from tests.support.sos_support import CADRE, ON_DUTY, emergency_running, staff, until

pytestmark = pytest.mark.asyncio

# A command answered with one message, whoever sends it: the reply these tests watch.
COMMAND, ANSWER = "/language", "choose a language"


@pytest.fixture
def waits(bot) -> list[float]:
    """Every wait of the rate limiter, recorded instead of slept."""
    limiter = bot.app.bot.rate_limiter
    assert isinstance(limiter, ReplyAccounting)
    recorded: list[float] = []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    limiter.sleep = sleep
    return recorded


def cadre_meeting(bot, emulator, fault: Fault, times: int) -> FakeUser:
    """A registered cadre whose next `times` replies meet `fault`."""
    factories.person(bot.db, CADRE, language="en")
    emulator.faults.add(fault, methods="sendMessage", chats=CADRE, times=times)
    return bot.user(CADRE, "Li", language_code="en")


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def statuses(emulator, method: str, chat_id: int) -> list[int | None]:
    return [
        r.status
        for r in emulator.calls(method)
        if str(r.params.get("chat_id")) == str(chat_id) or chat_id == 0
    ]


def replies_in_outbox(bot, chat_id: int) -> list[OutboxMessage]:
    with bot.db.session() as session:
        return list(
            session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.source == "reply", OutboxMessage.chat_id == chat_id
                )
            )
        )


async def test_a_reply_meeting_a_429_waits_the_retry_after_then_is_sent(
    bot, emulator, waits, caplog
):
    cadre = cadre_meeting(bot, emulator, Fault.retry_after(3), 1)
    await cadre.send(COMMAND)
    await cadre.wait_for(ANSWER)
    assert waits == [3]
    assert statuses(emulator, "sendMessage", CADRE) == [429, 200]
    # the delivery worker holds its own messages to that chat for as long
    lane = bot.app.bot_data["deps"].delivery.scheduler._lanes[CADRE]
    assert lane.paused_until > 0
    assert "went wrong" not in " ".join(m.text or "" for m in cadre.messages)
    assert errors(caplog) == []


@pytest.mark.parametrize(
    "fault",
    [Fault.server_error(502), Fault.server_error(503), Fault.server_error(504), Fault.drop()],
    ids=["502", "503", "504", "connection-dropped"],
)
async def test_502_503_504_and_connection_errors_are_retried_twice_with_backoff(
    bot, emulator, waits, caplog, fault
):
    cadre = cadre_meeting(bot, emulator, fault, 2)
    await cadre.send(COMMAND)
    answer = await cadre.wait_for(ANSWER)
    assert len(waits) == 2
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0  # backoff, jittered
    assert statuses(emulator, "sendMessage", CADRE)[-1] == 200
    assert len(statuses(emulator, "sendMessage", CADRE)) == 3
    assert [m for m in cadre.bot_messages if m.text == answer.text] == [answer]
    assert replies_in_outbox(bot, CADRE) == []
    assert errors(caplog) == []


async def test_a_reply_still_refused_after_two_retries_is_sent_through_the_outbox(
    bot, emulator, waits, caplog
):
    cadre = cadre_meeting(bot, emulator, Fault.server_error(503), 3)
    await cadre.send(COMMAND)
    await cadre.wait_for(ANSWER)  # sent by the delivery worker once Telegram takes it
    assert len(waits) == 2
    await until(lambda: replies_in_outbox(bot, CADRE)[0].status == OutboxStatus.SENT)
    (queued,) = replies_in_outbox(bot, CADRE)
    assert queued.priority == Priority.URGENT
    assert "went wrong" not in " ".join(m.text or "" for m in cadre.messages)
    assert errors(caplog) == []


@pytest.mark.parametrize(
    "retry_afters",
    [[30], [6, 6]],
    ids=["one-429-of-30s", "two-429s-of-6s"],
)
async def test_flood_waits_over_10_seconds_do_not_hang_the_chat(
    bot, emulator, waits, caplog, retry_afters
):
    factories.person(bot.db, CADRE, language="en")
    cadre = bot.user(CADRE, "Li", language_code="en")
    for seconds in retry_afters:
        emulator.faults.add(Fault.retry_after(seconds), methods="sendMessage", chats=CADRE, times=1)
    await cadre.send(COMMAND)
    await until(lambda: len(replies_in_outbox(bot, CADRE)) == 1, within=5)
    assert sum(waits) <= REPLY_WAIT_LIMIT
    assert waits == retry_afters[:-1]  # waited what fits in 10 s, not the rest
    (queued,) = replies_in_outbox(bot, CADRE)
    # queued (or taken by the worker), held until Telegram's pause for that chat is over
    assert queued.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)
    assert ANSWER in (queued.payload or {}).get("text", "")
    # the chat goes on: the next message is answered at once
    assert cadre.bot_messages == []
    await cadre.send("/me")
    await cadre.wait_until(lambda: cadre.bot_messages, timeout=3)
    assert errors(caplog) == []


@pytest.fixture
async def sos_card(bot):
    """A cadre's SOS on the on-duty officer's phone: (cadre, officer, card, alert id), with
    the delivery worker and the emergency jobs running."""
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        card = await officer.wait_for("紧急求助", timeout=5)
        with bot.db.session() as session:
            alert_id = session.exec(select(Alert)).one().id
        yield cadre, officer, card, alert_id


async def test_a_button_answer_meeting_a_429_and_a_503_is_given_and_the_card_edited(
    bot, emulator, waits, caplog, sos_card
):
    _, officer, card, alert_id = sos_card
    emulator.faults.add(Fault.retry_after(2), methods="answerCallbackQuery", times=1)
    emulator.faults.add(Fault.server_error(503), methods="editMessageText", chats=ON_DUTY, times=1)
    await officer.press(f"sos:ack:{alert_id}", message=card)
    answer = await officer.callback_answer()
    assert f"#{alert_id}" in answer.text
    await officer.wait_edit(card, "Zhang On")
    assert waits[0] == 2 and len(waits) == 2
    with bot.db.session() as session:
        assert session.exec(select(Alert)).one().status == AlertStatus.ACKNOWLEDGED
    assert "出了点问题" not in " ".join(m.text or "" for m in officer.messages)
    assert errors(caplog) == []


async def test_a_button_answer_refused_for_long_still_edits_the_card(
    bot, emulator, waits, caplog, sos_card
):
    cadre, officer, card, alert_id = sos_card
    emulator.faults.add(Fault.retry_after(30), methods="answerCallbackQuery", times=1)
    await officer.press(f"sos:ack:{alert_id}", message=card)
    await officer.wait_edit(card, "Zhang On")  # the card says who handles it
    await cadre.wait_for("is handling your call for help")
    assert waits == []
    assert errors(caplog) == []
