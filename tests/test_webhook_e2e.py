"""Webhook mode end to end: the real `cadre-bot run --webhook` process, with the emulator
posting every update to it as Telegram does; requests without the secret are refused."""

from __future__ import annotations

import socket
import time

import aiohttp
import pytest
from sqlmodel import select

from models import Alert, AlertStatus
from tests.sos_support import CADRE, ON_DUTY, BotProcess, process_env, staff, until
from tests.test_cli import run_cli

pytestmark = pytest.mark.e2e

SECRET = "s3cret-Token_for-the-webhook"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def forged_update(update_id: int, user_id: int, text: str) -> dict:
    person = {"id": user_id, "is_bot": False, "first_name": "Mallory"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
            "from": person,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
        },
    }


async def test_updates_arrive_by_webhook_and_requests_without_the_secret_are_refused(
    emulator, db, database_url, tmp_path
):
    staff(db)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook/cadre"
    env = process_env(
        emulator,
        database_url,
        CADRE_WEBHOOK_URL=url,
        CADRE_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        CADRE_WEBHOOK_SECRET=SECRET,
    )
    process = BotProcess(env, tmp_path, "--webhook")
    await process.start()
    try:
        # The bot registers its webhook with the secret, then listens (Telegram retries).
        await until(lambda: emulator.world.webhook is not None, within=30)
        assert emulator.world.webhook.url == url
        assert emulator.world.webhook.secret_token == SECRET
        cadre = emulator.user(CADRE, "Li", language_code="en")
        officer = emulator.user(ON_DUTY, "Zhang")
        await cadre.send("/help")
        await cadre.wait_for("/help", timeout=30)

        mallory = emulator.user(4242, "Mallory", language_code="en")
        async with aiohttp.ClientSession() as session:
            statuses = []
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret"}):
                async with session.post(
                    url, json=forged_update(900_001, mallory.id, "/help"), headers=headers
                ) as response:
                    statuses.append(response.status)
        assert statuses == [403, 403]

        await cadre.send("/sos")
        alert_message = await officer.wait_for("紧急求助", timeout=10)
        await cadre.wait_for("Help has been called")
        with db.session() as s:
            alert = s.exec(select(Alert)).one()
        await officer.press(f"sos:ack:{alert.id}", message=alert_message)
        await officer.callback_answer()
        await cadre.wait_for("Zhang On (duty officer) is handling your call for help")
    finally:
        code, log = await process.stop()
    assert code == 0, log
    assert "Traceback" not in log
    # Nothing came of the refused requests; every real update went by webhook, with the secret.
    assert mallory.bot_messages == []
    attempts = emulator.webhook.attempts  # those before the server listened were refused
    assert sum(a.status == 200 for a in attempts) >= 3
    assert all(a.status in (200, None) for a in attempts)
    assert all(a.headers["X-Telegram-Bot-Api-Secret-Token"] == SECRET for a in attempts)
    with db.session() as s:
        assert s.exec(select(Alert)).one().status == AlertStatus.ACKNOWLEDGED


async def test_without_a_url_path_the_path_is_derived_and_hard_to_guess(
    emulator, db, database_url, tmp_path
):
    port = free_port()
    env = process_env(
        emulator,
        database_url,
        CADRE_WEBHOOK_URL=f"http://127.0.0.1:{port}",
        CADRE_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        CADRE_WEBHOOK_SECRET=SECRET,
    )
    process = BotProcess(env, tmp_path, "--webhook")
    await process.start()
    try:
        await until(lambda: emulator.world.webhook is not None, within=30)
        registered = emulator.world.webhook.url
        user = emulator.user(CADRE, "Li", language_code="en")
        await user.send("/help")
        await user.wait_for("/help", timeout=30)
        async with aiohttp.ClientSession() as session:
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            root = f"http://127.0.0.1:{port}/"
            async with session.post(root, json={"update_id": 1}, headers=headers) as response:
                assert response.status == 404
    finally:
        code, log = await process.stop()
    assert code == 0, log
    path = registered.removeprefix(f"http://127.0.0.1:{port}")
    assert path.startswith("/telegram-") and len(path) == len("/telegram-") + 32
    assert emulator.token.split(":")[1] not in path


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"CADRE_WEBHOOK_SECRET": SECRET}, "CADRE_WEBHOOK_URL is not set"),
        ({"CADRE_WEBHOOK_URL": "https://bot.example.org/tg"}, "CADRE_WEBHOOK_SECRET is not set"),
        (
            {"CADRE_WEBHOOK_URL": "https://bot.example.org/tg", "CADRE_WEBHOOK_SECRET": "a b!"},
            "CADRE_WEBHOOK_SECRET",
        ),
        (
            {"CADRE_WEBHOOK_URL": "bot.example.org/tg", "CADRE_WEBHOOK_SECRET": SECRET},
            "CADRE_WEBHOOK_URL",
        ),
        (
            {"CADRE_WEBHOOK_URL": "http://bot.example.org/tg", "CADRE_WEBHOOK_SECRET": SECRET},
            "https",
        ),
        (
            {
                "CADRE_WEBHOOK_URL": "https://bot.example.org/tg",
                "CADRE_WEBHOOK_SECRET": SECRET,
                "CADRE_WEBHOOK_LISTEN": "8443",
            },
            "CADRE_WEBHOOK_LISTEN",
        ),
    ],
)
async def test_webhook_settings_missing_or_malformed_are_one_line_and_exit_2(
    emulator, settings, named, tmp_path
):
    env = process_env(emulator, f"sqlite:///{tmp_path}/x.db", **settings)
    code, _out, err = await run_cli("run", "--webhook", env=env, cwd=tmp_path)
    assert code == 2, err
    assert err.strip().count("\n") == 0 and named in err and "Traceback" not in err
    assert SECRET not in err


async def test_run_help_mentions_webhook_mode(tmp_path):
    code, out, _ = await run_cli("run", "--help", env={}, cwd=tmp_path)
    assert code == 0 and "--webhook" in out and "CADRE_WEBHOOK_SECRET" in out


async def test_an_address_in_use_is_one_line_and_exit_2(emulator, database_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = process_env(
            emulator,
            database_url,
            CADRE_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            CADRE_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
            CADRE_WEBHOOK_SECRET=SECRET,
        )
        code, _out, err = await run_cli("run", "--webhook", env=env, cwd=tmp_path)
    assert code == 2, err
    assert "cannot listen on 127.0.0.1" in err and "Traceback" not in err
