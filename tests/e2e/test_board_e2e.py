"""The board end to end: the real `cadre-bot run` process against the emulator, with its
board server on its own listener."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from tests.support import factories
from tests.support.sos_support import (
    ABA,
    CADRE,
    OFF_DUTY,
    ON_DUTY,
    BotProcess,
    process_env,
    staff,
    until,
)
from webapp import auth

pytestmark = pytest.mark.e2e

BOARD = "https://board.example.org/board/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_menu_button_opens_the_board_for_officers_and_admins_only(
    emulator, db, database_url, tmp_path
):
    staff(db)
    pending = factories.person(db, 3001, approve=False, real_name="New Comer")
    users = {
        telegram_id: emulator.user(telegram_id, "X", language_code="en")
        for telegram_id in (factories.ADMIN_ID, ON_DUTY, OFF_DUTY, ABA, CADRE, 3001)
    }
    port = free_port()
    env = process_env(
        emulator, database_url, CADRE_WEBAPP_URL=BOARD, CADRE_WEBAPP_LISTEN=f"127.0.0.1:{port}"
    )
    process = BotProcess(env, tmp_path)
    await process.start()
    try:
        officers_and_admin = (factories.ADMIN_ID, ON_DUTY, OFF_DUTY, ABA)
        await until(
            lambda: all(users[i].menu_button["type"] == "web_app" for i in officers_and_admin),
            within=30,
        )
        for telegram_id in officers_and_admin:
            button = users[telegram_id].menu_button
            assert button["web_app"] == {"url": BOARD} and button["text"] == "看板"
        for telegram_id in (CADRE, 3001):  # a cadre, a pending registrant: the usual menu
            assert users[telegram_id].menu_button == {"type": "commands"}
        base = f"http://127.0.0.1:{port}/board/api/"
        async with aiohttp.ClientSession() as http:

            async def post(path: str, **form: str) -> int:
                header = {"Authorization": "tma " + auth.sign(emulator.token, factories.ADMIN_ID)}
                async with http.post(base + path, data=form, headers=header) as response:
                    await response.text()
                    return response.status

            header = {"Authorization": "tma " + auth.sign(emulator.token, CADRE)}
            async with http.get(base + "alerts", headers=header) as response:
                assert response.status == 403  # the cadre: a pointer back to the chat
            # Approved and made a duty officer on the board: the button follows.
            assert await post(f"people/{pending.id}/approve") == 200
            assert await post(f"people/{pending.id}/role", role="duty_officer") == 200
            await until(lambda: users[3001].menu_button["type"] == "web_app", within=15)
            assert await post(f"people/{pending.id}/role", role="cadre") == 200
            await until(lambda: users[3001].menu_button == {"type": "commands"}, within=15)
    finally:
        code, log = await process.stop()
    assert code == 0, log
    assert "Traceback" not in log
