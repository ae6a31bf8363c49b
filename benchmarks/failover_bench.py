"""Failover benchmark: leaders killed under SOS traffic (docs/benchmarks.md, "Failover").

    .venv/bin/python benchmarks/failover_bench.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_failover

Two real `cadre-bot run` processes share one PostgreSQL database (its schema is dropped
and rebuilt) and the Bot API emulator (in this process). Every `--kills` round the leader
is removed in turn by `kill -9`, SIGSTOP (resumed once the standby leads: it must exit
with code 3) or by ending its lock connection (`pg_terminate_backend`: the connection is
cut, it exits with code 3); the benchmark then restarts the removed process, as systemd
would, and waits until the leader counts it as a standby (/healthz "standbys"). Meanwhile
SOS keep coming: one just before the removal (the leader may have fetched it and not
handled it: the case the update inbox is for), one right after it (raised during the
takeover) and one between removals (steady state), each from a cadre of its own.

Measured:
  takeover        removal -> the new leader's `ha_leader` row (it holds the lock and its
                  old leader's send window has closed); then it starts polling
  SOS lost        SOS sent whose alert never reached the officer on duty (must be 0)
  duplicates      alert messages the officer got more than once
  SOS latency     /sos sent -> the officer has the alert, steady and during a takeover
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("kill -9", "SIGSTOP", "connection cut")


async def main(args: argparse.Namespace) -> None:
    import aiohttp
    from sqlalchemy import text
    from sqlmodel import select

    from emulator.server import BotApiEmulator
    from models import HaLeader
    from models.db import make_engine, upgrade
    from services.db import Database
    from tests.support import factories
    from tests.support.sos_support import ON_DUTY, BotProcess, process_env, staff

    engine = make_engine(args.database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    db = Database(engine)
    staff(db)
    sos_per_round = 3
    jitter = random.Random(15)  # where in its handling the SOS before a removal is
    cadres = [20_000 + i for i in range(args.kills * sos_per_round + 2)]
    for tid in cadres:
        factories.person(db, tid, real_name=f"Cadre{tid}", language="en")
    tmp = Path(tempfile.mkdtemp(prefix="failover-bench-"))

    def leader() -> tuple[int, int] | None:
        with db.session() as s:
            row = s.exec(select(HaLeader)).first()
            return (row.pid, row.backend_pid) if row is not None else None

    async def wait(condition: Any, within: float = 120) -> None:
        deadline = time.monotonic() + within
        while True:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            await asyncio.sleep(0.02)

    ports: dict[int, str] = {}  # id(process) -> its /healthz address

    def node(env: dict[str, str]) -> BotProcess:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{s.getsockname()[1]}"
        process = BotProcess({**env, "CADRE_HTTP_LISTEN": address}, tmp)
        ports[id(process)] = address
        return process

    async def sees_a_standby(leading: BotProcess) -> bool:
        """The leader counted a standby at its last heartbeat (so it exits, not rides the
        outage out, when it loses its lock)."""
        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"http://{ports[id(leading)]}/healthz") as response,
            ):
                return ((await response.json(content_type=None)).get("standbys") or 0) > 0
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False

    def leading_node() -> BotProcess:
        pid = leader()[0]  # type: ignore[index]
        return next(n for n in nodes if n.process is not None and n.process.pid == pid)

    async with BotApiEmulator() as emu:
        env = process_env(
            emu,
            args.database_url,
            CADRE_HA_LEASE=str(args.lease),
            CADRE_LOG_LEVEL="INFO",
            CADRE_SOS_ACK_TIMEOUT="3600",  # one alert message per SOS: no escalation
        )
        officer = emu.user(ON_DUTY, "Zhang")
        users = {tid: emu.user(tid, f"C{tid}", language_code="en") for tid in cadres}
        nodes = [node(env), node(env)]

        def received(tid: int) -> int:
            return len([m for m in officer.messages if f"Cadre{tid}" in (m.text or "")])

        sent: dict[int, float] = {}
        arrived: dict[int, float] = {}
        during: set[int] = set()
        takeovers: dict[str, list[float]] = {kind: [] for kind in KINDS}
        try:
            await nodes[0].start()
            await wait(lambda: leader() is not None and leader()[0] == nodes[0].process.pid)
            await nodes[1].start()
            await wait(lambda: sees_a_standby(nodes[0]))

            pending = iter(cadres)

            async def sos(tag_during: bool) -> None:
                tid = next(pending)
                sent[tid] = time.monotonic()
                if tag_during:
                    during.add(tid)
                await users[tid].send("/sos")

            async def watch() -> None:
                while True:
                    for tid in sent:
                        if tid not in arrived and received(tid):
                            arrived[tid] = time.monotonic()
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            await sos(False)
            for round_ in range(args.kills):
                kind = KINDS[round_ % len(KINDS)]
                old_pid, backend = leader()  # type: ignore[misc]
                victim = next(n for n in nodes if n.process.pid == old_pid)
                await sos(True)  # just before: maybe fetched, not handled, at the removal
                await asyncio.sleep(jitter.uniform(0, 0.05))
                removed = time.monotonic()
                if kind == "kill -9":
                    victim.process.send_signal(signal.SIGKILL)
                elif kind == "SIGSTOP":
                    victim.process.send_signal(signal.SIGSTOP)
                else:
                    with engine.begin() as connection:
                        connection.execute(text(f"SELECT pg_terminate_backend({backend})"))
                await sos(True)
                await wait(lambda old=old_pid: leader() is not None and leader()[0] != old)
                takeovers[kind].append(time.monotonic() - removed)
                if kind == "SIGSTOP":
                    victim.process.send_signal(signal.SIGCONT)
                code = await asyncio.wait_for(victim.process.wait(), 60)
                _, log = await victim.stop()
                expected = -9 if kind == "kill -9" else 3
                if code != expected:
                    print(f"round {round_}: {kind}: exit code {code}, expected {expected}\n{log}")
                nodes[nodes.index(victim)] = restarted = node(env)
                await restarted.start()
                await sos(False)
                await wait(lambda: sees_a_standby(leading_node()))  # it stands by again
            with contextlib.suppress(TimeoutError):  # the last alerts
                await wait(lambda: len(arrived) == len(sent), 60)
            watcher.cancel()
        finally:
            # Results first: stopping the leader would make the other one take over.
            if sent:
                report(args, takeovers, sent, arrived, during, received)
            for left in nodes:
                if left.process is not None and left.process.returncode is None:
                    left.process.send_signal(signal.SIGKILL)
                    await left.stop()
            engine.dispose()


def report(
    args: argparse.Namespace,
    takeovers: dict[str, list[float]],
    sent: dict[int, float],
    arrived: dict[int, float],
    during: set[int],
    received: Any,
) -> None:
    all_takeovers = [t for ts in takeovers.values() for t in ts]
    lost = [tid for tid in sent if tid not in arrived]
    duplicates = sum(max(0, received(tid) - 1) for tid in sent)
    steady = [arrived[t] - sent[t] for t in arrived if t not in during]
    hit = [arrived[t] - sent[t] for t in arrived if t in during]
    print(f"{args.kills} leader removals, CADRE_HA_LEASE={args.lease}")
    for kind, values in takeovers.items():
        if values:
            print(
                f"  {kind:15} n={len(values):2}  takeover p50 {statistics.median(values):.2f} s"
                f"  max {max(values):.2f} s"
            )
    print(
        f"  all             n={len(all_takeovers):2}  takeover p50 "
        f"{statistics.median(all_takeovers):.2f} s  max {max(all_takeovers):.2f} s"
    )
    print(f"SOS sent {len(sent)}, lost {len(lost)} {lost}, duplicates {duplicates}")
    print(
        f"SOS latency steady p50 {statistics.median(steady):.2f} s max {max(steady):.2f} s; "
        f"raised during a takeover p50 {statistics.median(hit):.2f} s max {max(hit):.2f} s "
        f"(extra p50 {statistics.median(hit) - statistics.median(steady):.2f} s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("CADRE_TEST_DATABASE_URL"))
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease", type=float, default=6.0)
    arguments = parser.parse_args()
    if not arguments.database_url or not arguments.database_url.startswith("postgresql"):
        parser.error("--database-url must be a PostgreSQL database (it is dropped and rebuilt)")
    asyncio.run(main(arguments))
