"""A duty officer's ✋ in the middle of a broadcast, with the real `cadre-bot run` process and
the emulator enforcing Telegram's limits: the press is answered within 2 s, even when
Telegram answers its first callback answer with a 429, and nothing is logged as an error."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from emulator.faults import Fault
from models import Alert, AlertStatus
from tests.bot.test_delivery_engine import add_people, start_broadcast
from tests.support import factories
from tests.support.sos_support import CADRE, ON_DUTY, BotProcess, process_env, staff, until

pytestmark = pytest.mark.e2e
RATE = 30  # Telegram's overall limit, in the emulator and the bot
COUNT = 1000
MARKER = "Road closure"


def delivered(emulator) -> int:
    return sum(
        1
        for r in emulator.calls("sendMessage")
        if r.performed and MARKER in str(r.params.get("text"))
    )


async def test_an_officer_pressing_ack_during_a_broadcast_is_answered_within_2_seconds(
    emulator, db, database_url, tmp_path
):
    staff(db)
    ids = add_people(db, COUNT)
    for i in ids:
        emulator.user(i, f"U{i}", language_code="en" if i % 3 == 0 else "zh-hans")
    emulator.rate_limits.enable(global_per_second=RATE)
    env = process_env(emulator, database_url, CADRE_DELIVERY_RATE=str(RATE))
    process = BotProcess(env, tmp_path)
    await process.start()
    try:
        cadre = emulator.user(CADRE, "Li", language_code="en")
        officer = emulator.user(ON_DUTY, "Zhang")
        emulator.user(factories.ADMIN_ID, "Admin")
        await cadre.send("/help")
        await cadre.wait_for("/help", timeout=30)
        start_broadcast(db, f"{MARKER} 道路封闭", f"{MARKER} on the G318 tonight.")
        await emulator.requests_signal.wait_for(lambda: delivered(emulator) >= 60, 30)

        await cadre.send("/sos")
        card = await officer.wait_for("紧急求助", timeout=5)
        with db.session() as session:
            alert_id = session.exec(select(Alert)).one().id
        # Telegram refuses the first answer to the press: flood control, retry after 1 s.
        emulator.faults.add(Fault.retry_after(1), methods="answerCallbackQuery", times=1)
        pressed = time.monotonic()
        await officer.press(f"sos:ack:{alert_id}", message=card)
        answer = await officer.callback_answer(timeout=5)
        answered = time.monotonic() - pressed
        await officer.wait_edit(card, "Zhang On", timeout=5)
        confirmed = time.monotonic() - pressed
        during = delivered(emulator)
        await cadre.wait_for("is handling your call for help", timeout=10)
        await until(
            lambda: db.call(lambda s: s.get(Alert, alert_id).status) == AlertStatus.ACKNOWLEDGED
        )
    finally:
        code, log = await process.stop()
    assert f"#{alert_id}" in answer.text
    assert answered < 2.0, f"the press was answered after {answered:.2f} s"
    assert confirmed < 2.0, f"the card was updated after {confirmed:.2f} s"
    assert emulator.faults.count("retry_after", "answerCallbackQuery") == 1
    assert during < COUNT + 5, "the broadcast was still running"
    assert code == 0, log
    assert " ERROR " not in log and "Traceback" not in log, log
