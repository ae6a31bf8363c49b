"""The `cadre-bot` command line, run as a real process (end-to-end layer)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.reply_limits import REPLY_RETRIES
from emulator.faults import Fault
from emulator.server import BotApiEmulator
from models import Status
from services import people
from tests.support.flows import register_in_english

pytestmark = pytest.mark.e2e
EXE = str(Path(sys.executable).with_name("cadre-bot"))


def env_for(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADRE_")}
    env.update(
        {
            "CADRE_DATABASE_URL": database_url,
            "CADRE_LOG_LEVEL": "WARNING",
            "CADRE_CARE_JOBS": "false",
        }
    )
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        EXE,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.parametrize("args", [[], ["run"], ["db", "upgrade"], ["check"]])
async def test_every_command_explains_itself(args, tmp_path):
    code, out, _ = await run_cli(*args, "--help", env=env_for("sqlite://"), cwd=tmp_path)
    assert code == 0 and "usage: cadre-bot" in out


@pytest.mark.parametrize(
    ("token", "reason"), [(None, "is not set"), ("not-a-token", "is malformed")]
)
async def test_run_without_a_usable_token_says_so_in_one_line(token, reason, tmp_path):
    env = env_for(
        f"sqlite:///{tmp_path}/x.db", **({"CADRE_TELEGRAM_TOKEN": token} if token else {})
    )
    code, _out, err = await run_cli("run", env=env, cwd=tmp_path)
    assert code == 2
    assert err.strip().count("\n") == 0 and reason in err and "Traceback" not in err


async def test_bad_settings_are_reported_not_raised(tmp_path):
    env = env_for("sqlite://", CADRE_TIMEZONE="Mars/Olympus", CADRE_ADMIN_IDS="12,abc")
    code, _, err = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 2 and "CADRE_" in err and "Traceback" not in err


async def test_an_unknown_health_threshold_is_refused_at_start_up(tmp_path):
    """The services check the settings that feed their rules (a typo must not silently
    switch a rule off): reported like any other bad setting."""
    env = env_for("sqlite://", CADRE_HEALTH_THRESHOLDS='{"spo2_red_dorp": 12}')
    code, _, err = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 2 and "CADRE_HEALTH_THRESHOLDS" in err and "spo2_red_dorp" in err
    assert "Traceback" not in err


async def test_db_upgrade_creates_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.db"
    code, out, _ = await run_cli("db", "upgrade", env=env_for(url), cwd=tmp_path)
    assert code == 0 and "database at revision" in out


async def test_check_reports_database_and_bot_api(emulator, tmp_path):
    url = f"sqlite:///{tmp_path}/check.db"
    await run_cli("db", "upgrade", env=env_for(url), cwd=tmp_path)
    env = env_for(
        url, CADRE_TELEGRAM_TOKEN=emulator.token, CADRE_TELEGRAM_BASE_URL=emulator.base_url
    )
    code, out, _ = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 0, out
    assert "schema up to date" in out and "@test_bot" in out
    env["CADRE_TELEGRAM_BASE_URL"] = "http://127.0.0.1:9"
    code, out, _ = await run_cli("check", env=env, cwd=tmp_path)
    assert code == 1 and "NOT reachable" in out


async def test_run_refuses_a_database_newer_than_the_code(emulator, tmp_path):
    url = f"sqlite:///{tmp_path}/newer.db"
    await run_cli("db", "upgrade", env=env_for(url), cwd=tmp_path)
    from models.db import make_engine

    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    env = env_for(
        url, CADRE_TELEGRAM_TOKEN=emulator.token, CADRE_TELEGRAM_BASE_URL=emulator.base_url
    )
    code, _, err = await run_cli("run", env=env, cwd=tmp_path)
    assert code == 2 and "9999_future" in err and "Traceback" not in err


async def test_run_with_a_token_the_bot_api_refuses_says_so_in_one_line(emulator, tmp_path):
    url = f"sqlite:///{tmp_path}/refused.db"
    env = env_for(
        url,
        CADRE_TELEGRAM_TOKEN="123456:ThisTokenWasRevokedByBotFather0000",
        CADRE_TELEGRAM_BASE_URL=emulator.base_url,
    )
    code, _, err = await run_cli("run", env=env, cwd=tmp_path)
    assert code == 2 and "refused this token" in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


# Seconds for `cadre-bot run` to start polling: importing and assembling the bot is about
# 4 s of CPU before the first reply, 10-25 s on a 2-core machine at load 10. A deadline, not
# a benchmark: the wait ends at the first getUpdates, or at once if the process exits.
STARTUP_WAIT = 120


class BotProcess:
    """`cadre-bot run` as a child process, pointed at the emulator."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, emulator: BotApiEmulator | None = None) -> None:
        """Start the process; given the emulator, return once it polls for updates, so that
        the conversation's waits measure the bot's answers, not its start-up."""
        since = len(emulator.requests) if emulator is not None else 0
        self.process = await asyncio.create_subprocess_exec(
            EXE,
            "run",
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        if emulator is not None:
            await self._polling(emulator, since)

    async def _polling(self, emulator: BotApiEmulator, since: int) -> None:
        assert self.process is not None
        polls = asyncio.ensure_future(
            emulator.wait_for_request(
                "getUpdates", since=since, finished=False, timeout=STARTUP_WAIT
            )
        )
        exited = asyncio.ensure_future(self.process.wait())
        await asyncio.wait({polls, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not polls.done():
            polls.cancel()
            _, err = await self.process.communicate()
            raise AssertionError(
                f"cadre-bot run exited ({exited.result()}) before polling:\n{err.decode()}"
            )
        exited.cancel()
        polls.result()  # an AssertionError naming the recent requests after STARTUP_WAIT

    async def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        assert self.process is not None
        self.process.send_signal(sig)
        _, err = await asyncio.wait_for(self.process.communicate(), 30)
        return self.process.returncode, err.decode()


@pytest.fixture
def bot_env(emulator, database_url, engine):
    return env_for(
        database_url,
        CADRE_TELEGRAM_TOKEN=emulator.token,
        CADRE_TELEGRAM_BASE_URL=emulator.base_url,
        CADRE_ADMIN_IDS="9001",
    )


async def test_the_real_process_registers_a_cadre_and_an_admin_approves(
    emulator, db, bot_env, tmp_path
):
    admin = emulator.user(9001, "Admin", language_code="en")
    process = BotProcess(bot_env, tmp_path)
    await process.start(emulator)
    try:
        user = emulator.user(1001, "Li", language_code="zh-hans")
        await register_in_english(user)
        await user.wait_for("administrator has approved", timeout=15)
        request = await admin.wait_for("新的注册申请", timeout=15)  # admins default to zh-Hans
        assert "Li Wei" in request.text
        await admin.press("✅ 批准")
        await user.wait_for("has been approved", timeout=15)
        assert "me" in [c["command"] for c in user.commands()]
        assert "Export my data" in [c["description"] for c in user.commands()]
    finally:
        code, err = await process.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert db.call(people.find, 1001).status == Status.ACTIVE


async def test_a_killed_process_resumes_registration_where_the_user_left_it(
    emulator, db, bot_env, tmp_path
):
    process = BotProcess(bot_env, tmp_path)
    await process.start(emulator)
    user = emulator.user(1002, "Li", language_code="en")
    await user.send("/start")
    await user.wait_for("choose your language", timeout=15)
    await user.press("English")
    await user.wait_for("Separate consent")
    await user.press("f:consent:yes")
    await user.wait_for("real name")
    await user.send("Li Wei")
    await user.wait_for("phone number")
    await process.stop(signal.SIGKILL)

    await user.send("13800138000")  # typed while the bot is down
    restarted = BotProcess(bot_env, tmp_path)
    await restarted.start(emulator)
    try:
        await user.wait_for("home unit", timeout=15)
        await user.send("Hangzhou Health Commission")
        await user.wait_for("Where are you posted?")
    finally:
        code, err = await restarted.stop()
    assert code == 0, err


async def test_sigterm_while_waiting_for_the_bot_api_stops_cleanly(emulator, bot_env, tmp_path):
    """systemctl stop while the VPN is down: the wait ends at once with exit code 0 (it
    was killed by the signal before, code -15, without its clean-up)."""
    emulator.faults.add(Fault.server_error(), methods="getMe")  # every attempt
    process = BotProcess(bot_env, tmp_path)
    await process.start()
    await emulator.wait_for_request(
        "getMe", lambda r: r.status is not None and r.status >= 500, timeout=STARTUP_WAIT
    )
    code, err = await process.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert emulator.count("getUpdates") == 0  # it never started


async def test_run_waits_for_an_unreachable_bot_api_then_answers(emulator, bot_env, tmp_path):
    """A VPN that is down when the bot starts: the bot says so and tries again, with no
    traceback, and answers once Telegram can be reached."""
    # Two attempts fail: each is a getMe sent again REPLY_RETRIES times after a 502 by the
    # Application's rate limiter (bot.reply_limits.ReplyAccounting) before the bot says so.
    emulator.faults.add(Fault.server_error(), methods="getMe", times=2 * (REPLY_RETRIES + 1))
    process = BotProcess(bot_env, tmp_path)
    await process.start(emulator)  # after the two failed attempts, 1 s and 2 s apart
    try:
        user = emulator.user(1003, "Li", language_code="en")
        await user.send("/start")
        await user.wait_for("choose your language", timeout=20)
    finally:
        code, err = await process.stop()
    assert code == 0, err
    assert err.count("cannot be reached") == 2 and emulator.base_url in err
    assert "Traceback" not in err and "<html>" not in err and emulator.token not in err
