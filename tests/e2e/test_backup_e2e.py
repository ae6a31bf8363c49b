"""`cadre-bot db backup` while the real `cadre-bot run` is under load, then the documented
restore (docs/deploy.md): the copy passes SQLite's integrity check, `cadre-bot db upgrade`
accepts it, a new `cadre-bot run` on it answers, and everything committed before the
backup is there."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3

import pytest
from sqlmodel import select

from models import Alert, CheckIn
from models.db import make_engine, upgrade
from services.db import Database
from tests.e2e.test_cli import run_cli
from tests.support.checkin_helpers import (
    finish_vitals,
    make_person,
    markup_has,
    officer,
    start_checkin,
    walk_to_vitals,
)
from tests.support.sos_support import BotProcess, process_env, until

pytestmark = pytest.mark.e2e

CHECKED_IN = range(1001, 1007)  # check in before the backup
SOS = 1007  # raises an SOS before the backup
BUSY = range(1008, 1016)  # ask for /help over and over while the backup runs
LATE = range(1016, 1020)  # check in while the backup runs
DUTY = 5001
TIMEOUT = 30


async def check_in(user) -> None:
    await start_checkin(user)
    await walk_to_vitals(user)
    await finish_vitals(user)
    await user.wait_for("Thank you", timeout=TIMEOUT)


async def keep_asking(user, stop: asyncio.Event, answered: list[int]) -> None:
    while not stop.is_set():
        await user.send("/help")
        await user.wait_for("/checkin", timeout=TIMEOUT)
        answered.append(user.id)


def integrity(path) -> str:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()


async def test_a_backup_taken_under_load_restores_to_a_working_database(emulator, tmp_path):
    live_url = f"sqlite:///{tmp_path}/live/cadre-bot.db"
    live = Database(make_engine(live_url))
    upgrade(live.engine)
    for telegram_id in (*CHECKED_IN, SOS, *BUSY, *LATE):
        make_person(live, telegram_id, f"Cadre {telegram_id}")
    officer(live, DUTY, name="Officer Zhao")
    users = {
        telegram_id: emulator.user(telegram_id, f"C{telegram_id}", language_code="en")
        for telegram_id in (*CHECKED_IN, SOS, *BUSY, *LATE)
    }
    duty = emulator.user(DUTY, "Zhao", language_code="en")

    bot = BotProcess(process_env(emulator, live_url), tmp_path)
    await bot.start()
    try:
        await duty.send("/help")  # the officer has started the bot
        await duty.wait_for("/", timeout=TIMEOUT)
        # Committed before the backup: six check-ins and an SOS.
        await asyncio.gather(*(check_in(users[t]) for t in CHECKED_IN))
        await users[SOS].send("/sos")
        await users[SOS].wait_for("Help has been called", timeout=TIMEOUT)
        await duty.wait_for(lambda m: f"Cadre {SOS}" in m.content, timeout=TIMEOUT)
        with live.session() as s:
            (alert,) = s.exec(select(Alert)).all()

        # The backup runs while others keep the bot busy.
        stop, answered = asyncio.Event(), []
        load = [asyncio.create_task(keep_asking(users[t], stop, answered)) for t in BUSY]
        load += [asyncio.create_task(check_in(users[t])) for t in LATE]
        await until(lambda: len(answered) >= len(BUSY), within=TIMEOUT)  # load is running
        answered_before = len(answered)
        code, out, err = await run_cli(
            "db",
            "backup",
            str(tmp_path / "backups" / "cadre-bot.db"),
            env=process_env(emulator, live_url),
            cwd=tmp_path,
        )
        answered_during = len(answered) - answered_before
        stop.set()
        await asyncio.gather(*load)
    finally:
        exit_code, log = await bot.stop()
    assert exit_code == 0 and "Traceback" not in log, log
    assert code == 0, err
    assert answered_during > 0  # the bot was answering while the backup was taken
    backup = tmp_path / "backups" / "cadre-bot.db"
    assert out.startswith(f"backup written to {backup}")
    assert f"{len((*CHECKED_IN, SOS, *BUSY, *LATE)) + 2} people" in out  # and the admin
    assert " 1 alerts" in out

    # The documented restore: the file copied into place, `db upgrade`, then `run`.
    restored = tmp_path / "restored" / "cadre-bot.db"
    restored.parent.mkdir()
    shutil.copy2(backup, restored)
    assert integrity(restored) == "ok"
    restored_url = f"sqlite:///{restored}"
    code, out, err = await run_cli(
        "db", "upgrade", env=process_env(emulator, restored_url), cwd=tmp_path
    )
    assert code == 0 and "database at revision" in out, err

    copy = Database(make_engine(restored_url))
    with copy.session() as s:
        people_checked_in = {c.person_id for c in s.exec(select(CheckIn))}
        alerts = s.exec(select(Alert)).all()
    with live.session() as s:
        live_checked_in = {c.person_id for c in s.exec(select(CheckIn))}
    before = {p.id for p in (live.call(_person, t) for t in CHECKED_IN)}
    assert before <= people_checked_in <= live_checked_in
    assert [a.id for a in alerts] == [alert.id]

    second = BotProcess(process_env(emulator, restored_url), tmp_path)
    await second.start()
    try:
        first = users[CHECKED_IN[0]]
        await first.send("/history")
        history = await first.wait_for("Your last check-in", timeout=TIMEOUT)
        assert "93" in history.content  # the SpO2 typed before the backup
        await duty.send("/alerts")
        listing = await duty.wait_for(f"#{alert.id}", timeout=TIMEOUT)
        assert f"Cadre {SOS}" in listing.content
        newcomer = users[BUSY[0]]
        await newcomer.send("/checkin")  # the restored bot still takes new check-ins
        await newcomer.wait_for(markup_has("ci:feeling:fine"), timeout=TIMEOUT)
    finally:
        exit_code, log = await second.stop()
    assert exit_code == 0 and "Traceback" not in log, log


def _person(session, telegram_id: int):
    from services import people

    return people.find(session, telegram_id)
