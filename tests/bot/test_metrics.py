"""/metrics and /healthz as an operator's Prometheus and load balancer see them, with the
real Application running against the emulator (conversation layer)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import time_machine
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from emulator.faults import Fault
from models import OutboxMessage, OutboxStatus, Priority
from services import outbox
from tests.support.sos_support import CADRE, ON_DUTY, emergency_running, staff, until

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings(settings):
    """The conftest's settings, with the health and metrics server on a free port."""
    return settings.model_copy(update={"http_listen": "127.0.0.1:0"})


def url(bot, path: str) -> str:
    server = bot.app.bot_data["http"]
    return f"http://{server.host}:{server.port}{path}"


async def scrape(bot) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, parsed the way Prometheus parses it."""
    async with aiohttp.ClientSession() as http, http.get(url(bot, "/metrics")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def healthz(bot) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(url(bot, "/healthz")) as response:
        return response.status, await response.json()


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_an_sos_raises_the_open_alerts_and_the_unacknowledged_time_grows(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        before = await scrape(bot)
        assert value(before, "cadre_database_up") == 1
        assert value(before, "cadre_alerts_open", cause="sos") == 0
        assert value(before, "cadre_alert_oldest_unacknowledged_seconds") == 0
        with time_machine.travel(datetime.now(UTC), tick=True) as clock:
            await cadre.send("/sos")
            await officer.wait_for("紧急求助")
            await cadre.wait_for("What is wrong")  # the handler has finished
            raised = await scrape(bot)
            assert value(raised, "cadre_alerts_open", cause="sos") == 1
            assert value(raised, "cadre_alerts_acknowledged", cause="sos") == 0
            assert value(raised, "cadre_alert_oldest_unacknowledged_seconds") < 60
            clock.shift(600)  # ten minutes nobody took it
            later = await scrape(bot)
            assert 600 <= value(later, "cadre_alert_oldest_unacknowledged_seconds") < 700
    assert value(later, "cadre_alerts_open", cause="sos") == 1
    assert value(later, "cadre_sends_total", outcome="sent", cause="sent") >= 2
    assert value(later, "cadre_updates_total", handler="sos.on_sos", outcome="ok") == 1
    assert value(later, "cadre_update_handler_seconds_count", handler="sos.on_sos") == 1
    for priority in ("emergency", "urgent", "reminder", "broadcast"):
        assert ("cadre_outbox_depth", frozenset({("priority", priority)})) in later


async def test_a_failed_send_is_counted_by_outcome_and_cause(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    cadre.block(notify=False)
    bot.emulator.faults.add(Fault.server_error(), methods="sendMessage", times=1)
    async with emergency_running(bot):
        bot.db.call(
            outbox.enqueue,
            chat_id=CADRE,
            text="Reminder",
            priority=Priority.REMINDER,
            idempotency_key="test:blocked",
        )

        def failed() -> bool:
            with bot.db.session() as s:
                key = OutboxMessage.idempotency_key == "test:blocked"
                return s.exec(select(OutboxMessage).where(key)).one().status == OutboxStatus.FAILED

        await until(failed, within=20)
        samples = await scrape(bot)
    # first a 502 (retried), then Telegram says the cadre blocked the bot (given up)
    assert value(samples, "cadre_sends_total", outcome="retry", cause="retry") == 1
    assert value(samples, "cadre_sends_total", outcome="failed", cause="blocked") == 1


async def test_each_update_is_counted_and_timed_by_the_handler_that_answered_it(bot):
    user = bot.user(4242, "Guest", language_code="en")
    await user.send("/help")
    await user.wait_for("/start")
    await user.send("/help")
    await user.wait_for(lambda m: m.text.count("/start") and len(user.messages) >= 2)
    samples = await scrape(bot)
    assert value(samples, "cadre_updates_total", handler="account.help_command", outcome="ok") == 2
    count = value(samples, "cadre_update_handler_seconds_count", handler="account.help_command")
    assert count == 2
    # Every update also went through the persistence flush, timed under its own name.
    assert (
        value(samples, "cadre_updates_total", handler="app.flush_after_update", outcome="ok") >= 2
    )


async def test_healthz_reports_every_check_and_is_cheap_to_ask_again(bot):
    status, body = await healthz(bot)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "bot_api", "scheduler", "outbox"}
    assert all(check["ok"] is True for check in body["checks"].values())
    assert body["checks"]["outbox"]["stuck"] == []
    calls = len([r for r in bot.emulator.requests if r.method == "getMe"])
    status, _ = await healthz(bot)
    assert status == 200
    # the Bot API check reuses a recent getMe rather than asking Telegram every time
    assert len([r for r in bot.emulator.requests if r.method == "getMe"]) == calls


async def test_healthz_says_the_outbox_is_stuck_when_an_emergency_waits_too_long(bot):
    staff(bot.db)
    # The worker runs (it puts back what it had claimed when it starts); then a message
    # due an hour ago is found still being sent, as if the worker had hung on it.
    await asyncio.wait_for(bot.app.bot_data["deps"].delivery.started.wait(), 10)

    def hung_emergency(session) -> None:
        message = outbox.enqueue(
            session,
            chat_id=ON_DUTY,
            text="SOS",
            priority=Priority.EMERGENCY,
            idempotency_key="test:stuck",
        )
        message.status = OutboxStatus.SENDING
        session.add(message)

    with time_machine.travel(datetime.now(UTC) - timedelta(hours=1), tick=False):
        bot.db.call(hung_emergency)
    status, body = await healthz(bot)
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["outbox"]["ok"] is False
    assert body["checks"]["outbox"]["stuck"] == ["emergency"]
    assert body["checks"]["database"]["ok"] is True
