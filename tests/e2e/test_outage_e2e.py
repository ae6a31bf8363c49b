"""The real `cadre-bot run` process: /healthz and /metrics as a monitoring system reads them,
and a PostgreSQL outage survived without a restart.

The outage test never touches the shared PostgreSQL server: it creates a private cluster
(pg_createcluster, on a free port, trust authentication), stops and starts it with
pg_ctlcluster, and drops it afterwards. It needs root and the PostgreSQL server packages
(Debian's postgresql-common); without them it is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from models import Alert, AlertStatus
from models.db import make_engine, upgrade
from services.db import Database
from services.i18n import t
from tests.support.sos_support import CADRE, ON_DUTY, BotProcess, process_env, staff, until

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def get(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
        return response.status, await response.text()


async def healthz(base: str) -> tuple[int, dict]:
    import json

    status, text = await get(f"{base}/healthz")
    return status, json.loads(text)


async def until_healthz(base: str, expected: int, within: float = 60, check: str = "") -> dict:
    """Poll /healthz (connection refused counts as not yet) until the leader answers
    `expected` (and, if `check` is named, that check agrees). On PostgreSQL a process is a
    standby until it holds the lock, and a standby answers only for itself (bot/leader.py)."""
    deadline = asyncio.get_running_loop().time() + within
    body: dict = {}
    while asyncio.get_running_loop().time() < deadline:
        try:
            status, body = await healthz(base)
            agrees = not check or body["checks"][check]["ok"] is (expected == 200)
            if status == expected and agrees and body.get("role") == "leader":
                return body
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"/healthz did not answer {expected} within {within} s: {body}")


async def ready(user) -> None:
    await user.send("/help")
    await user.wait_for("/help", timeout=30)


async def test_healthz_and_metrics_of_the_running_process(emulator, db, database_url, tmp_path):
    staff(db)
    base = f"http://127.0.0.1:{free_port()}"
    env = process_env(emulator, database_url, CADRE_HTTP_LISTEN=base.removeprefix("http://"))
    process = BotProcess(env, tmp_path)
    await process.start()
    try:
        body = await until_healthz(base, 200)
        assert body["status"] == "ok"
        assert {name for name, check in body["checks"].items() if check["ok"]} == {
            "database",
            "bot_api",
            "scheduler",
            "outbox",
        }
        cadre = emulator.user(CADRE, "Li", language_code="en")
        await ready(cadre)
        status, text = await get(f"{base}/metrics")
        assert status == 200
        families = {family.name: family for family in text_string_to_metric_families(text)}
        for name in (
            "cadre_updates",
            "cadre_update_handler_seconds",
            "cadre_sends",
            "cadre_outbox_depth",
            "cadre_alerts_open",
            "cadre_alert_oldest_unacknowledged_seconds",
            "cadre_care_overdue",
            "cadre_database_up",
        ):
            assert name in families, name
        handled = [s for s in families["cadre_updates"].samples if s.name == "cadre_updates_total"]
        assert any(s.labels["handler"] == "account.help_command" for s in handled)
    finally:
        code, log = await process.stop()
    assert code == 0, log
    assert "Traceback" not in log


# ------------------------------------------------------------------ a real outage


def _postgres_version() -> str | None:
    """The newest PostgreSQL server installed (Debian layout), if any."""
    versions = sorted(
        (p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")),
        key=lambda v: int(v) if v.isdigit() else 0,
    )
    return versions[-1] if versions else None


def _skip_reason() -> str | None:
    if shutil.which("pg_createcluster") is None or shutil.which("pg_ctlcluster") is None:
        return "pg_createcluster/pg_ctlcluster not installed (Debian postgresql-common)"
    if _postgres_version() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() != 0:
        return "creating a private PostgreSQL cluster needs root"
    return None


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, f"{' '.join(command)}: {out.decode(errors='replace')}"


class Cluster:
    """A private PostgreSQL cluster: pg_ctlcluster <version> <name> start|stop."""

    def __init__(self, version: str, name: str, port: int) -> None:
        self.version, self.name, self.port = version, name, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    async def ctl(self, action: str) -> None:
        await _run("pg_ctlcluster", self.version, self.name, action)


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[Cluster]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    version = _postgres_version()
    assert version is not None
    name = f"cadre_outage_{secrets.token_hex(4)}"
    port = free_port()
    await _run(
        "pg_createcluster",
        version,
        name,
        "--port",
        str(port),
        "--start-conf",
        "manual",
        "--",
        "--auth=trust",
    )
    try:
        cluster = Cluster(version, name, port)
        await cluster.ctl("start")
        yield cluster
    finally:
        await _run("pg_dropcluster", "--stop", version, name)


async def test_the_bot_survives_a_postgresql_outage_without_losing_an_sos(
    emulator, cluster, tmp_path
):
    engine = make_engine(cluster.url)
    upgrade(engine)
    db = Database(engine)
    staff(db)
    engine.dispose()  # the test's own connections would be cut by the stop anyway
    base = f"http://127.0.0.1:{free_port()}"
    env = process_env(emulator, cluster.url, CADRE_HTTP_LISTEN=base.removeprefix("http://"))
    process = BotProcess(env, tmp_path)
    await process.start()
    assert process.process is not None
    pid = process.process.pid
    cadre = emulator.user(CADRE, "Li", language_code="en")
    officer = emulator.user(ON_DUTY, "Zhang")
    guest = emulator.user(4242, "Guest", language_code="en")
    try:
        await until_healthz(base, 200)
        await ready(cadre)

        await cluster.ctl("stop")
        body = await until_healthz(base, 503, within=30, check="database")
        assert body["status"] == "unhealthy"
        assert "unreachable" in body["checks"]["database"]["detail"]
        assert body["checks"]["bot_api"]["ok"] is True
        status, text = await get(f"{base}/metrics")  # answers, without the database figures
        assert status == 200 and "cadre_database_up 0.0" in text

        await cadre.send("/sos")
        await cadre.wait_for("system is delayed", timeout=30)
        await cadre.send("/help")
        await guest.send("/help")
        await guest.wait_for(t("en", "outage.wait"), timeout=30)
        assert not [m for m in officer.messages if "紧急求助" in (m.text or "")]

        await cluster.ctl("start")
        body = await until_healthz(base, 200, within=60, check="database")
        assert body["status"] == "ok"
        # Everything sent meanwhile is handled, by the same process.
        await officer.wait_for("紧急求助", timeout=30)
        await cadre.wait_for("Help has been called", timeout=30)
        await until(lambda: len([m for m in guest.messages if "/start" in (m.text or "")]) == 1)
        await until(lambda: len([m for m in cadre.messages if "/checkin" in (m.text or "")]) == 2)
        assert process.process.returncode is None and process.process.pid == pid
    finally:
        code, log = await process.stop()
    assert code == 0, log
    assert "something went wrong" not in " ".join(m.text or "" for m in cadre.messages)
    with db.session() as s:
        alerts = list(s.exec(select(Alert)))
    engine.dispose()
    assert len(alerts) == 1
    assert alerts[0].cause == "sos" and alerts[0].status == AlertStatus.OPEN
