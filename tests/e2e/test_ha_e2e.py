"""High availability (issue 15): two real `cadre-bot run` processes on one PostgreSQL
database, against the emulator. One leads (fetches updates, sends, runs the jobs), the
other stands by and takes over when the leader is killed, paused or cut off.

Fast settings: CADRE_HA_LEASE=1.5 (heartbeat every 0.25 s, a paused leader replaced after
1.5 s). Every wait polls for its condition with a deadline. Skipped on SQLite, where a
second `run` refuses to start (tests/e2e/test_cli.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlmodel import select

from bot.leader import LOCK_KEY
from emulator.faults import Fault
from models import Alert, AuditEntry, HaLeader, OutboxMessage, UpdateInbox
from models.db import make_engine, upgrade
from services.db import Database
from tests.e2e.test_outage_e2e import cluster  # noqa: F401  (the private PostgreSQL cluster)
from tests.e2e.test_webhook_e2e import SECRET as WEBHOOK_SECRET
from tests.e2e.test_webhook_e2e import forged_update
from tests.support import factories
from tests.support.sos_support import (
    CADRE,
    OFF_DUTY,
    ON_DUTY,
    BotProcess,
    process_env,
    staff,
    until,
)

pytestmark = pytest.mark.e2e

LEASE = "1.5"
STARTUP = 90  # seconds a process may take to start on a busy CI machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `cadre-bot run` with its own /healthz port."""

    def __init__(self, env: dict[str, str], tmp_path: Any, *options: str) -> None:
        self.base = f"127.0.0.1:{free_port()}"
        self.process = BotProcess({**env, "CADRE_HTTP_LISTEN": self.base}, tmp_path, *options)

    @property
    def pid(self) -> int:
        assert self.process.process is not None
        return self.process.process.pid

    @property
    def returncode(self) -> int | None:
        assert self.process.process is not None
        return self.process.process.returncode

    async def health(self) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=2)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"http://{self.base}/healthz") as response,
            ):
                return json.loads(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}

    async def role(self) -> str | None:
        return (await self.health()).get("role")

    async def sees_a_standby(self) -> bool:
        """The leader counted a standby at its last heartbeat: losing its lock, it exits
        rather than taking the lock again (alone, it would ride the outage out)."""
        return ((await self.health()).get("standbys") or 0) > 0

    async def metrics(self) -> str:
        timeout = aiohttp.ClientTimeout(total=2)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"http://{self.base}/metrics") as response,
        ):
            return await response.text()


def leader_pid(db) -> int | None:
    with db.session() as s:
        row = s.get(HaLeader, 1)
        return row.pid if row is not None else None


async def eventually(condition: Any, within: float = 20.0) -> Any:
    """Poll an async or plain condition every 50 ms until it holds (its value)."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def handled(db, update_id: int) -> bool:
    with db.session() as s:
        row = s.get(UpdateInbox, update_id)
        return row is not None and row.handled_at is not None


def ha_env(emulator, db, database_url: str, **extra: str) -> dict[str, str]:
    """The roster, no leader row left by another test, and the fast settings."""
    staff(db)
    with db.session() as s:
        row = s.get(HaLeader, 1)
        if row is not None:
            s.delete(row)
    return process_env(
        emulator, database_url, **{"CADRE_HA_LEASE": LEASE, "CADRE_OUTBOX_LEASE": "3", **extra}
    )


@contextlib.asynccontextmanager
async def two_nodes(
    env: dict[str, str],
    db,
    tmp_path,
    *options: str,
    envs: tuple[dict[str, str], dict[str, str]] = ({}, {}),
) -> AsyncIterator[tuple[Node, Node]]:
    """(leader, standby): the first started leads, the second stands by (`envs`: what
    each has of its own, `options`: of `run`). Both are stopped at the end (resumed first
    if paused)."""
    first = Node({**env, **envs[0]}, tmp_path, *options)
    second = Node({**env, **envs[1]}, tmp_path, *options)
    try:
        await first.process.start()
        await eventually(lambda: leader_pid(db) == first.pid, STARTUP)
        await second.process.start()
        await eventually(lambda: second.role(), STARTUP)
        await eventually(first.sees_a_standby, STARTUP)
        yield first, second
    finally:
        for node in (first, second):
            if node.process.process is not None and node.returncode is None:
                node.process.process.send_signal(signal.SIGCONT)
                await node.process.stop()


@pytest_asyncio.fixture
async def pair(emulator, db, database_url, tmp_path) -> AsyncIterator[Any]:
    if not database_url.startswith("postgresql"):
        pytest.skip("high availability needs PostgreSQL (SQLite: one process, locked)")
    env = ha_env(emulator, db, database_url, CADRE_LOG_LEVEL="INFO")
    async with two_nodes(env, db, tmp_path) as nodes:
        cadre = emulator.user(CADRE, "Li", language_code="en")
        await cadre.send("/help")
        await cadre.wait_for("/help", timeout=30)
        yield nodes


async def sos_in_flight(emulator, cadre) -> None:
    """Telegram takes a minute to answer sendMessage; the cadre sends /sos and the alert to
    the officer on duty is on its way (clear the fault to let the next sends through)."""
    emulator.faults.add(Fault.slow(60), methods="sendMessage")
    await cadre.send("/sos")
    await emulator.wait_for_request(
        "sendMessage",
        lambda r: r.params.get("chat_id") in (ON_DUTY, str(ON_DUTY)),
        finished=False,
    )


def sos_count(user) -> int:
    return len([m for m in user.messages if "紧急求助" in (m.text or "")])


async def test_exactly_one_polls_and_help_is_answered_once(pair, emulator, db):
    leader, standby = pair
    assert await leader.role() == "leader"
    assert await standby.role() == "standby"
    assert "cadre_leader 1.0" in await leader.metrics()
    assert "cadre_leader 0.0" in await standby.metrics()
    user = emulator.user(4242, "Guest", language_code="en")
    conflicts = emulator.count("getUpdates", status=409)
    for n in range(3):
        await user.send("/help")
        await until(lambda n=n: len([m for m in user.messages if "/start" in (m.text or "")]) > n)
    await asyncio.sleep(1)  # a second poller would have answered by now
    assert len([m for m in user.messages if "/start" in (m.text or "")]) == 3
    assert emulator.count("getUpdates", status=409) == conflicts  # one consumer only
    with db.session() as s:
        entries = s.exec(select(AuditEntry).where(AuditEntry.action == "ha.takeover")).all()
    assert len(entries) == 1 and entries[0].detail["pid"] == leader.pid
    status = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("cadre-bot")),
        "status",
        env={**leader.process.env, "CADRE_HTTP_LISTEN": standby.base},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await status.communicate())[0].decode()
    assert status.returncode == 0, out
    assert "standby" in out and f"(pid {leader.pid}) since" in out, out


async def test_kill_9_during_an_sos_fan_out_the_standby_delivers_it_once(pair, emulator, db):
    leader, standby = pair
    officer = emulator.user(ON_DUTY, "Zhang")
    cadre = emulator.user(CADRE, "Li", language_code="en")
    await sos_in_flight(emulator, cadre)  # the fan-out is in flight at the kill
    killed_at = time.monotonic()
    await leader.process.stop(signal.SIGKILL)
    emulator.faults.clear()
    await eventually(lambda: leader_pid(db) == standby.pid)
    takeover = time.monotonic() - killed_at
    await officer.wait_for("紧急求助", timeout=20)
    await cadre.wait_for("Help has been called", timeout=20)
    assert takeover < 10, takeover
    assert await standby.role() == "leader"
    await asyncio.sleep(1.5)  # time for a duplicate to show
    assert sos_count(officer) == 1  # the slow send never completed: no duplicate
    with db.session() as s:
        assert len(s.exec(select(Alert)).all()) == 1


@pytest.mark.parametrize("removal", ["kill -9", "connection cut"])
async def test_an_sos_the_leader_took_but_had_not_handled_is_handled_by_the_next(
    pair, emulator, db, removal
):
    """The SOS the failover benchmark lost: the leader fetched it and confirmed it to
    Telegram (its next getUpdates asks for what follows), its handler was still waiting
    for the database, and the leader died (kill -9) or lost its lock connection and
    exited. The update was stored before it was confirmed: the next leader handles it."""
    leader, standby = pair
    officer = emulator.user(ON_DUTY, "Zhang")
    cadre = emulator.user(CADRE, "Li", language_code="en")
    with db.engine.connect() as blocker:  # the SOS handler waits to write its alert
        blocker.execute(text("LOCK TABLE alert IN EXCLUSIVE MODE"))
        await cadre.send("/sos")
        sos = emulator.world.update_log[-1]["update_id"]
        await emulator.wait_for_request(
            "getUpdates",
            lambda r: int(r.params.get("offset") or 0) > sos,
            finished=False,
            timeout=STARTUP,
        )
        if removal == "kill -9":
            await leader.process.stop(signal.SIGKILL)
        else:
            with db.session() as s:
                backend = s.get(HaLeader, 1).backend_pid
                s.execute(text(f"SELECT pg_terminate_backend({backend})"))
            assert leader.process.process is not None
            code = await asyncio.wait_for(leader.process.process.wait(), STARTUP)
            assert code == 3
        blocker.rollback()
    await officer.wait_for("紧急求助", timeout=STARTUP)
    await cadre.wait_for("Help has been called", timeout=30)
    assert leader_pid(db) == standby.pid
    await eventually(lambda: handled(db, sos))
    # Once, although two processes handled it: one alert to the officer, and the cadre's
    # messages (help called, the numbers, the first steps, what is wrong?) once each.
    with db.session() as s:
        (alert,) = s.exec(select(Alert)).all()
        queued = list(
            s.exec(select(OutboxMessage).where(OutboxMessage.source == f"alert:{alert.id}"))
        )
    assert [int(m.chat_id) for m in queued].count(ON_DUTY) == 1
    to_cadre = [m.idempotency_key.split(":")[2] for m in queued if int(m.chat_id) == CADRE]
    assert "help" in to_cadre and len(to_cadre) == len(set(to_cadre)), to_cadre
    assert sos_count(officer) == 1


async def test_a_paused_leader_is_replaced_and_sends_nothing_after_it_resumes(pair, emulator, db):
    leader, standby = pair
    officer = emulator.user(ON_DUTY, "Zhang")
    cadre = emulator.user(CADRE, "Li", language_code="en")
    assert leader.process.process is not None
    leader.process.process.send_signal(signal.SIGSTOP)
    paused_at = time.monotonic()
    await eventually(lambda: leader_pid(db) == standby.pid, 15)
    took = time.monotonic() - paused_at
    # Raised while the old leader is paused: the new one sends it.
    await cadre.send("/sos")
    await officer.wait_for("紧急求助", timeout=20)
    await cadre.wait_for("Help has been called", timeout=20)
    leader.process.process.send_signal(signal.SIGCONT)
    await asyncio.wait_for(leader.process.process.wait(), 15)
    code, log = await leader.process.stop()
    assert code == 3, log  # it noticed, and exited for its supervisor
    assert "lost the leadership" in log
    conflicts = emulator.count("getUpdates", status=409)
    await asyncio.sleep(1)
    # It sent nothing: one alert, one confirmation; and only the new leader polls.
    assert sos_count(officer) == 1
    assert len([m for m in cadre.messages if "Help has been called" in (m.text or "")]) == 1
    assert emulator.count("getUpdates", status=409) == conflicts
    assert 1.5 <= took < 10, took
    helps = len([m for m in cadre.messages if "/help" in (m.text or "")])
    await cadre.send("/help")
    await until(lambda: len([m for m in cadre.messages if "/help" in (m.text or "")]) > helps)


async def test_an_escalation_due_during_the_takeover_fires_once(
    emulator, db, database_url, tmp_path
):
    if not database_url.startswith("postgresql"):
        pytest.skip("high availability needs PostgreSQL")
    env = ha_env(
        emulator, db, database_url, CADRE_SOS_ACK_TIMEOUT="3", CADRE_SOS_REPEAT_INTERVAL="60"
    )
    async with two_nodes(env, db, tmp_path) as (first, _standby):
        cadre = emulator.user(CADRE, "Li", language_code="en")
        officer = emulator.user(ON_DUTY, "Zhang")
        other = emulator.user(OFF_DUTY, "Wang")
        admin = emulator.user(factories.ADMIN_ID, "Admin")
        await cadre.send("/sos")
        await officer.wait_for("紧急求助", timeout=20)
        # Round 2 is due 3 s after the alert: the leader dies before, the timer is rebuilt
        # from the database by the new leader and fires once.
        await first.process.stop(signal.SIGKILL)
        await other.wait_for("第 2 轮", timeout=20)
        await admin.wait_for("第 2 轮", timeout=10)
        await asyncio.sleep(2)
        assert len([m for m in other.messages if "第 2 轮" in (m.text or "")]) == 1
        assert len([m for m in admin.messages if "第 2 轮" in (m.text or "")]) == 1
        with db.session() as s:
            alert = s.exec(select(Alert)).one()
        assert alert.stage == 2


class Balancer:
    """A load balancer without health checks in front of two webhook ports: each post
    goes to the next port in turn (Telegram's next try then reaches the other). A port
    that refuses the connection answers 502. Records (port, update_id, status)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook/cadre"
        self.posts: list[tuple[int, int, int]] = []
        self._turn = 0
        self._runner: Any = None

    async def start(self) -> None:
        app = aiohttp.web.Application()
        app.router.add_post("/hook/cadre", self._forward)
        self._runner = aiohttp.web.AppRunner(app)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _forward(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = await request.read()
        port = self.ports[self._turn % len(self.ports)]
        self._turn += 1
        headers = {
            k: v for k, v in request.headers.items() if k.lower().startswith(("x-", "content-type"))
        }
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.post(
                    f"http://127.0.0.1:{port}/hook/cadre", data=body, headers=headers
                ) as answer,
            ):
                status, payload = answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError):
            status, payload = 502, b""
        self.posts.append((port, json.loads(body)["update_id"], status))
        return aiohttp.web.Response(status=status, body=payload)

    def statuses(self, update_id: int, port: int | None = None) -> list[int]:
        return [s for p, u, s in self.posts if u == update_id and port in (None, p)]


async def post_to(port: int, update: dict[str, Any]) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(f"http://127.0.0.1:{port}/hook/cadre", json=update, headers=headers) as answer,
    ):
        return answer.status


async def test_webhook_standby_answers_503_leader_handles_once_then_the_standby_takes_over(
    emulator, db, database_url, tmp_path
):
    """Two `cadre-bot run --webhook` behind a load balancer that does not know which one
    leads: the standby answers 503 and handles nothing, Telegram (the emulator) posts the
    update again, the leader answers 200 and handles it once. After kill -9 of the leader
    the standby takes over: updates posted to it are answered 200 and handled."""
    if not database_url.startswith("postgresql"):
        pytest.skip("high availability needs PostgreSQL")
    ports = [free_port(), free_port()]
    balancer = Balancer(ports)
    await balancer.start()
    env = ha_env(
        emulator,
        db,
        database_url,
        CADRE_LOG_LEVEL="INFO",
        CADRE_WEBHOOK_URL=balancer.url,
        CADRE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    envs = (
        {"CADRE_WEBHOOK_LISTEN": f"127.0.0.1:{ports[0]}"},
        {"CADRE_WEBHOOK_LISTEN": f"127.0.0.1:{ports[1]}"},
    )
    cadre = emulator.user(CADRE, "Li", language_code="en")

    def answers() -> int:
        return len([m for m in cadre.bot_messages if "/help" in (m.text or "")])

    async def help_answered() -> int:
        before = answers()
        await cadre.send("/help")
        update_id = emulator.world.update_log[-1]["update_id"]
        await eventually(lambda: answers() > before, STARTUP)
        return update_id

    try:
        async with two_nodes(env, db, tmp_path, "--webhook", envs=envs) as (leader, standby):  # type: ignore[arg-type]
            assert emulator.world.webhook is not None
            assert emulator.world.webhook.url == balancer.url
            # Posted to the standby itself: 503, and nothing stored or handled.
            assert await post_to(ports[1], forged_update(900_100, CADRE, "/help")) == 503
            sent = [await help_answered() for _ in range(3)]
            assert answers() == 3  # one answer each, none for the update the standby refused
            for update_id in sent:
                assert balancer.statuses(update_id).count(200) == 1
                assert set(balancer.statuses(update_id, ports[1])) <= {503}
                assert handled(db, update_id)
            assert 503 in [s for p, _u, s in balancer.posts if p == ports[1]]
            with db.session() as s:
                assert s.get(UpdateInbox, 900_100) is None

            await leader.process.stop(signal.SIGKILL)
            after = await help_answered()  # retried until the standby leads
            assert leader_pid(db) == standby.pid
            assert await standby.role() == "leader"
            assert balancer.statuses(after, ports[1]).count(200) == 1
            assert balancer.statuses(after).count(200) == 1
            # And posted to it directly, as a load balancer that knows the leader does.
            assert await post_to(ports[1], forged_update(900_101, CADRE, "/help")) == 200
            await eventually(lambda: handled(db, 900_101))
            await eventually(lambda: answers() == 5)
            assert handled(db, after)
        assert answers() == 5
    finally:
        await balancer.stop()


async def test_sigterm_while_taking_over_stops_the_standby_and_gives_the_lock_back(
    emulator, db, database_url, tmp_path
):
    """systemctl stop on the standby just as it takes the lock of a leader that died: it
    is waiting for the old leader's send window to close. It stops, exit code 0, and gives
    the lock back. (It went on to lead before, deaf to the signal, until systemd killed it.)
    CADRE_HA_LEASE=6 here: the wait lasts up to 2 s."""
    if not database_url.startswith("postgresql"):
        pytest.skip("high availability needs PostgreSQL")
    env = ha_env(emulator, db, database_url, CADRE_HA_LEASE="6", CADRE_LOG_LEVEL="INFO")
    async with two_nodes(env, db, tmp_path) as (first, second):
        await first.process.stop(signal.SIGKILL)
        log = second.process.log_path
        await eventually(
            lambda: "waiting" in log.read_text() and "for the old leader" in log.read_text()
        )
        code, text_ = await second.process.stop(signal.SIGTERM)
        assert code == 0, text_
        assert "this process leads now" not in text_
        with db.engine.connect() as connection:  # the lock is free again
            free = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
            assert free.scalar() is True
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})


async def test_postgresql_restarted_under_two_processes_one_leads_after_and_nothing_is_lost(
    emulator,
    cluster,  # noqa: F811  (the fixture imported above)
    tmp_path,
):
    """A primary switch, simulated by restarting a private cluster (as the outage test
    does): the leader, whose lock connection breaks with a standby connected, exits with
    code 3 and is started again by its supervisor (here the test); one process leads
    afterwards and the SOS that was in flight at the restart reaches the officer once."""
    engine = make_engine(cluster.url)
    upgrade(engine)
    db = Database(engine)
    env = ha_env(emulator, db, cluster.url)
    restarted: Node | None = None
    try:
        async with two_nodes(env, db, tmp_path) as (first, second):
            cadre = emulator.user(CADRE, "Li", language_code="en")
            officer = emulator.user(ON_DUTY, "Zhang")
            await sos_in_flight(emulator, cadre)
            engine.dispose()
            await cluster.ctl("restart")
            emulator.faults.clear()
            assert first.process.process is not None
            await asyncio.wait_for(first.process.process.wait(), 60)
            code, log = await first.process.stop()
            assert code == 3, log
            restarted = Node(env, tmp_path)
            await restarted.process.start()
            await officer.wait_for("紧急求助", timeout=60)
            await cadre.wait_for("Help has been called", timeout=30)
            await eventually(lambda: restarted.role(), STARTUP)
            roles = sorted([await second.role(), await restarted.role()])
            assert roles == ["leader", "standby"], roles
            await asyncio.sleep(1.5)
            assert sos_count(officer) == 1
            with db.session() as s:
                assert len(s.exec(select(Alert)).all()) == 1
    finally:
        if restarted is not None and restarted.process.process is not None:
            await restarted.process.stop()
        engine.dispose()


async def test_a_second_run_on_the_same_sqlite_file_refuses_in_one_line(emulator, tmp_path):
    """SQLite serves one process: the second `run` says so and exits 2; the first goes on."""
    url = f"sqlite:///{tmp_path / 'single.db'}"
    env = process_env(emulator, url)
    first = BotProcess(env, tmp_path)
    await first.start()
    try:
        await until(lambda: (tmp_path / "single.db.lock").exists(), 60)
        second = BotProcess(env, tmp_path)
        await second.start()
        assert second.process is not None
        code = await asyncio.wait_for(second.process.wait(), 60)
        _, log = await second.stop()
        assert code == 2, log
        lines = [line for line in log.splitlines() if line.strip()]
        assert len(lines) == 1 and "in use by another `cadre-bot run`" in lines[0], log
        assert first.process is not None and first.process.returncode is None
    finally:
        code, log = await first.stop()
    assert code == 0, log
