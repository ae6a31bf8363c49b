"""Webhook mode end to end: the real `cadre-bot run --webhook` process, with the emulator
posting every update to it as Telegram does; requests without the secret are refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from models import Alert, AlertStatus
from tests.e2e.test_cli import run_cli
from tests.support.sos_support import CADRE, ON_DUTY, BotProcess, process_env, staff, until

pytestmark = pytest.mark.e2e

SECRET = "s3cret-Token_for-the-webhook"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def webhook_process(
    emulator, database_url: str, tmp_path, **extra: str
) -> tuple[BotProcess, int, str]:
    """`cadre-bot run --webhook` on a free port, serving /hook/cadre with SECRET."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook/cadre"
    env = process_env(
        emulator,
        database_url,
        CADRE_WEBHOOK_URL=url,
        CADRE_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        CADRE_WEBHOOK_SECRET=SECRET,
        **extra,
    )
    return BotProcess(env, tmp_path, "--webhook"), port, url


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
    process, _port, url = webhook_process(emulator, database_url, tmp_path)
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


async def raw_post(
    port: int, path: str, headers: dict[str, str], body: Iterable[bytes] = ()
) -> tuple[int | None, int]:
    """POST by hand: the headers, then the body's pieces while no answer has come.
    Returns the status and the number of body bytes the server let in before answering.

    The server closes the connection instead of reading a body over the limit; while the
    client still writes, the close can arrive as a reset that overtakes the answer: then
    the status is None (the answer-before-the-body itself is checked without a body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent = 0

    async def send() -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            for piece in body:
                writer.write(piece)
                await writer.drain()
                sent += len(piece)

    sender = asyncio.create_task(send())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 15)
    except ConnectionError:  # reset, or the pipe broken while the sender wrote
        status_line = b""
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    return (int(status_line.split()[1]) if status_line else None), sent


def body_of(total: int, size: int = 64 * 1024) -> Iterable[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def resident_mb(process: BotProcess) -> float:
    """The bot process's resident memory (Linux)."""
    assert process.process is not None
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])
        / 1024
    )


def chunked(total: int, size: int = 64 * 1024) -> Iterable[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + block + b"\r\n"


async def test_oversized_bodies_and_wrong_secrets_are_refused_unread_and_bad_updates_in_one_line(
    emulator, db, database_url, tmp_path
):
    staff(db)
    process, port, url = webhook_process(
        emulator,
        database_url,
        tmp_path,
        CADRE_WEBHOOK_MAX_BODY_BYTES="65536",
        CADRE_LOG_FORMAT="json",
    )
    await process.start()
    huge = str(60 * 1024 * 1024)
    json_type = {"Content-Type": "application/json"}
    right = {**json_type, "X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        await until(lambda: emulator.world.webhook is not None, within=30)
        cadre = emulator.user(CADRE, "Li", language_code="en")
        await cadre.send("/help")
        await cadre.wait_for("/help", timeout=30)

        # Answered on the headers alone: not a byte of the 60 MB body was sent.
        wrong = {**json_type, "X-Telegram-Bot-Api-Secret-Token": "wrong-secret"}
        for headers in (json_type, wrong):
            sized = {**headers, "Content-Length": huge}
            assert await raw_post(port, "/hook/cadre", sized) == (403, 0)
        big = {**right, "Content-Length": huge}
        assert await raw_post(port, "/hook/cadre", big) == (413, 0)
        # Five 60 MB posts with a wrong secret, as in the probe: refused, and not read in.
        before = resident_mb(process)
        for _ in range(5):
            status, sent = await raw_post(
                port, "/hook/cadre", {**wrong, "Content-Length": huge}, body_of(60 << 20)
            )
            assert status in (403, None) and sent < 30 << 20, (status, sent)
        assert resident_mb(process) - before < 40
        # Without a Content-Length the body is counted as it comes, and refused at the limit.
        status, sent = await raw_post(
            port, "/hook/cadre", {**right, "Transfer-Encoding": "chunked"}, chunked(60 << 20)
        )
        assert status in (413, None) and sent < 30 << 20, (status, sent)

        # Malformed updates with the right secret: one log line each, nothing handled.
        async with aiohttp.ClientSession() as session:
            no_chat = forged_update(900_002, cadre.id, "/sos 13712340000")
            del no_chat["message"]["chat"]
            no_id = forged_update(900_003, cadre.id, "/sos")
            del no_id["update_id"]
            statuses = []
            for body in (no_chat, no_id):
                async with session.post(url, json=body, headers=right) as response:
                    statuses.append(response.status)
            async with session.post(url, data=b"{not json", headers=right) as response:
                statuses.append(response.status)
        assert statuses == [200, 200, 400]
        await cadre.send("/help")  # still serving
        await cadre.wait_for("/help", timeout=30)
    finally:
        code, log = await process.stop()
    assert code == 0, log
    assert "Traceback" not in log and "13712340000" not in log
    messages = [json.loads(line)["message"] for line in log.splitlines()]
    assert "webhook: update 900002 ignored: a message without chat" in messages
    assert any(m.startswith("webhook: update without a valid id ignored") for m in messages)
    assert "webhook: a request whose body is not a JSON object was refused" in messages
    with db.session() as s:
        assert s.exec(select(Alert)).first() is None


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
