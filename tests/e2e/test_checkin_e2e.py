"""The check-in against the real `cadre-bot run` process (end-to-end layer): a kill -9 in
the middle of a check-in loses nothing, and a red flag reaches the duty officer."""

from __future__ import annotations

import signal

import pytest
from sqlmodel import select

from models import Alert, CheckIn
from models.health import Tier
from tests.e2e.test_cli import BotProcess, env_for
from tests.support.checkin_helpers import make_person, markup_has, officer

pytestmark = pytest.mark.e2e


@pytest.fixture
def bot_env(emulator, database_url, engine):
    return env_for(
        database_url,
        CADRE_TELEGRAM_TOKEN=emulator.token,
        CADRE_TELEGRAM_BASE_URL=emulator.base_url,
        CADRE_ADMIN_IDS="9001",
    )


async def test_the_real_process_survives_kill_9_mid_check_in_and_alerts_on_red(
    emulator, db, bot_env, tmp_path
):
    make_person(db, 1001, "Li Wei")
    officer(db, 5001, language="en")
    user = emulator.user(1001, "Li", language_code="en")
    duty = emulator.user(5001, "Zhao", language_code="en")
    await duty.send("/help")  # the officer has started the bot

    process = BotProcess(bot_env, tmp_path)
    await process.start()
    await duty.next_message(timeout=15)
    await user.send("/checkin")
    await user.wait_for(markup_has("ci:feeling:fine"), timeout=15)
    await user.press("ci:feeling:fine")
    await user.wait_for(markup_has("ci:flags:none"))
    await user.press("ci:flags:none")
    await user.wait_for(markup_has("ci:cough:no"))
    await process.stop(signal.SIGKILL)

    await user.press("ci:cough:no")  # answered while the bot is down
    restarted = BotProcess(bot_env, tmp_path)
    await restarted.start()
    try:
        await user.wait_for(markup_has("ci:headache:0"), timeout=15)
        for item, following in (
            ("headache", "gi"),
            ("gi", "fatigue"),
            ("fatigue", "dizziness"),
            ("dizziness", "spo2"),
        ):
            await user.press(f"ci:{item}:0")
            await user.wait_for(markup_has(f"ci:{following}:"))
        await user.send("91")
        await user.wait_for(markup_has("ci:hr:none"))
        await user.press("ci:hr:none")
        await user.wait_for(markup_has("ci:temp:none"))
        await user.press("ci:temp:none")
        await user.wait_for(markup_has("ci:bp:none"))
        await user.press("ci:bp:none")
        await user.wait_for(markup_has("ci:note:none"))
        await user.press("ci:note:none")
        await user.wait_for("Thank you")

        await user.send("/checkin")
        await user.wait_for(markup_has("ci:feeling:fine"))
        await user.press("ci:feeling:unwell")
        await user.wait_for(markup_has("ci:flags:none"))
        await user.press("ci:flags:confused")
        await user.wait_for("act now")
        alert = await duty.wait_for(lambda m: "Li Wei" in m.text, timeout=5)
        assert alert.text
    finally:
        code, err = await restarted.stop()
    assert code == 0, err
    assert "Traceback" not in err
    with db.session() as s:
        rows = s.exec(select(CheckIn).order_by(CheckIn.id)).all()
        alerts = s.exec(select(Alert)).all()
    assert [(r.tier, r.cough_or_breathless, r.spo2) for r in rows] == [
        (Tier.GREEN, False, 91),
        (Tier.RED, None, None),
    ]
    assert [a.cause for a in alerts] == ["checkin_red"]
