"""A database outage while people use the bot (conversation layer, any database): the
statements fail as a stopped server makes them fail, /healthz turns unhealthy, nothing a
person sent is lost, and everything is answered, in order, once the database is back.

tests/e2e/test_outage_e2e.py does the same to the real process with a real PostgreSQL
cluster stopped and started with pg_ctlcluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.outage import OutageGuard
from handlers.common import plain_text
from models import Alert, AlertStatus
from services.i18n import t
from tests.support.sos_support import CADRE, ON_DUTY, emergency_running, staff, until

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"http_listen": "127.0.0.1:0"})


@contextlib.contextmanager
def database_down(engine) -> Iterator[None]:
    """Every statement fails like one sent to a stopped server."""

    def refuse(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


async def healthz(bot) -> tuple[int, dict]:
    server = bot.app.bot_data["http"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{server.host}:{server.port}/healthz") as response,
    ):
        return response.status, await response.json()


def alerts_of(bot) -> list[Alert]:
    with bot.db.session() as s:
        return list(s.exec(select(Alert)))


async def test_an_sos_sent_while_the_database_is_down_reaches_the_officer_when_it_is_back(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    guest = bot.user(4242, "Guest", language_code="en")
    guard: OutageGuard = bot.app.bot_data["outage"]
    async with emergency_running(bot):
        await cadre.send("/help")
        await cadre.wait_for("/checkin")
        with database_down(bot.db.engine):
            status, body = await healthz(bot)
            assert status == 503 and body["status"] == "unhealthy"
            assert body["checks"]["database"]["ok"] is False
            assert body["checks"]["scheduler"]["ok"] is True
            await cadre.send("/sos")
            # At once: the cadre knows the call is received and whom to phone meanwhile.
            await cadre.wait_for("Your call for help has been received, but the system is delayed")
            await cadre.send("/help")
            await guest.send("/help")
            await guest.wait_for(t("en", "outage.wait"))
            await until(lambda: guard.waiting >= 2)
            await guest.send("/help")  # the guest is told only once per outage
            await asyncio.sleep(0.3)
            assert [m.text for m in guest.messages].count(t("en", "outage.wait")) == 1
            assert not [m for m in officer.messages if "紧急求助" in (m.text or "")]
        # The database is back: without any restart, /healthz recovers and every update
        # is handled: the alert is stored and reaches the officer; the cadre's /help is
        # answered after the SOS (their order), the guest's two /help too.
        for _ in range(100):
            status, body = await healthz(bot)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        assert status == 200, body
        await officer.wait_for("紧急求助", timeout=15)
        await cadre.wait_for("Help has been called", timeout=15)
        await until(lambda: len([m for m in guest.messages if "/start" in (m.text or "")]) == 2)
        await until(lambda: len([m for m in cadre.messages if "/checkin" in (m.text or "")]) == 2)
    alert = alerts_of(bot)[0]
    assert alert.status == AlertStatus.OPEN and alert.cause == "sos"
    texts = [m.text or "" for m in cadre.messages]
    delayed = next(i for i, x in enumerate(texts) if "system is delayed" in x)
    helps = [i for i, x in enumerate(texts) if "/checkin" in x]
    assert len(helps) == 2 and helps[1] > delayed
    assert not [x for x in texts if "something went wrong" in x]
    assert guard.waiting == 0


async def test_an_acknowledgement_pressed_while_the_database_is_down_is_not_lost(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        alert_message = await officer.wait_for("紧急求助")
        await cadre.wait_for("What is wrong")
        alert_id = alerts_of(bot)[0].id
        with database_down(bot.db.engine):
            await officer.press(f"sos:ack:{alert_id}", message=alert_message)
            # The button stops spinning at once, saying the press is kept.
            answer = await officer.callback_answer()
            assert answer.text == plain_text(t("zh-Hans", "outage.wait"))
        # Back: the acknowledgement is recorded and the cadre learns who is coming.
        await cadre.wait_for("is handling your call for help", timeout=15)
    assert alerts_of(bot)[0].status == AlertStatus.ACKNOWLEDGED


async def test_a_broken_statement_while_the_database_answers_ends_in_the_usual_error(bot):
    """Not an outage (SELECT 1 works): after a few attempts the person gets the usual
    apology instead of waiting forever."""
    guest = bot.user(4242, "Guest", language_code="en")

    def broken(_conn, _cursor, statement: str, *_args: object) -> None:
        if statement.strip() != "SELECT 1":
            raise OperationalError(statement, {}, RuntimeError("no such column"))

    event.listen(bot.db.engine, "before_cursor_execute", broken)
    try:
        await guest.send("/help")
        await guest.wait_for(t("en", "error.generic"), timeout=15)
    finally:
        event.remove(bot.db.engine, "before_cursor_execute", broken)
    assert bot.app.bot_data["outage"].waiting == 0


async def test_a_one_off_job_that_met_the_outage_runs_again(bot, monkeypatch):
    """An escalation planned for a moment when the database is down is not lost."""
    from sqlalchemy import text

    from scheduler import jobs
    from services import clock

    monkeypatch.setattr(jobs, "DATABASE_RETRY_SECONDS", 0.05)
    attempts: list[str] = []
    done: list[str] = []

    async def escalate(_application) -> None:
        attempts.append("tried")
        await bot.db.run(lambda session: session.execute(text("SELECT 2")))
        done.append("escalated")

    with database_down(bot.db.engine):
        jobs.add_job(
            bot.app,
            "test:escalate",
            escalate,
            "date",
            run_date=clock.now(),
            misfire_grace_time=None,
            coalesce=True,
        )
        await until(lambda: len(attempts) >= 2)  # failed, and planned again
        assert done == []
    await until(lambda: done == ["escalated"])
    assert jobs.get_job(bot.app, "test:escalate") is None


async def test_a_check_in_answer_given_while_the_database_is_down_moves_the_form_on_after(bot):
    """The step that failed mid-way is applied when the database is back, not taken for a
    repeat of an update already applied (the form would be stuck without its question)."""
    from tests.support.checkin_helpers import make_person, start_checkin

    make_person(bot.db, 1001)
    user = bot.user(1001, "Li", language_code="en")
    await start_checkin(user)
    with database_down(bot.db.engine):
        await user.press("ci:feeling:fine")
        await until(lambda: bot.app.bot_data["outage"].waiting >= 1)
    flags = await user.wait_for(lambda m: "ci:flags:none" in str(m.reply_markup), timeout=15)
    assert "ci:flags:none" in str(flags.reply_markup)
