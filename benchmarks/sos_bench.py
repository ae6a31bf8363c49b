"""Emergency channel benchmark: alert latency of the real `cadre-bot run` (docs/benchmarks.md).

    .venv/bin/python benchmarks/sos_bench.py                    # 100 SOS idle, then 100 SOS
                                                                # during a 10,000 broadcast
    .venv/bin/python benchmarks/sos_bench.py --broadcast 0      # idle only
    .venv/bin/python benchmarks/sos_bench.py --database-url postgresql+psycopg://...
    .venv/bin/python benchmarks/sos_bench.py --guests 20        # and 20 unverified callers

Unverified callers (`--guests`): people the bot does not know (guests; pending, suspended
and rejected people raise the same unverified alert) press 🆘; their alert goes to the
admin at once. One every 1.1 s, since they all reach the one admin's chat (about 1/s).

The emulator runs in its own process (Telegram is another machine) with Telegram's flood
limits on (30 messages/s overall, about 1/s per private chat); the bot is the real
`cadre-bot run` process on a fresh database. Three prefectures have two officers on duty
each; each SOS comes from a different cadre, the prefectures in turn, one every
`--spacing` seconds (so that each officer's chat stays within Telegram's 1 message/s).

Latency of one SOS = the moment the last of its first-tier alert messages reached the
emulator - the moment the bot fetched the SOS update (when its getUpdates answered with
it: the push itself while the bot long-polls, the next poll otherwise). It covers the
handler, the transaction that stores the alert and queues its messages, the delivery
worker's claim, pacing and the Bot API calls. Baseline in the same run: the emulator's echo
round trip (getMe from a plain aiohttp client), the floor of any request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator_process import EmulatorProcess  # noqa: E402  (benchmarks/, next to this script)

TOKEN = "123456:BENCH-token"
ADMIN = 9001
PREFECTURES = {"ganzi": "ganzi.litang", "aba": "aba.barkam", "liangshan": "liangshan.xichang"}
OFFICERS = {"ganzi": (501, 502), "aba": (503, 504), "liangshan": (505, 506)}
CADRES = 10_000  # telegram ids of the SOS cadres start here
GUESTS = 500_000  # telegram ids of the unverified callers (not in the database) start here
RECIPIENTS = 1_000_000  # telegram ids of the broadcast's audience start here


def name_of(telegram_id: int) -> str:
    return f"Bench-{telegram_id}"


# ------------------------------------------------------------------ the emulator side


async def serve_people(
    cadres: int,
    recipients: int,
    per_second: float,
    handle: Callable[[Any, str, str], Awaitable[dict | None]],
) -> None:
    """The emulator with the admin, the officers, the cadres and the broadcast's audience,
    Telegram's limits on. Each line on stdin is ``command arg``: ``ready`` waits for the bot
    to poll; anything else goes to `handle(emu, command, arg)`, whose answer is printed as
    JSON (None: stop)."""
    from emulator.server import BotApiEmulator

    async with BotApiEmulator(token=TOKEN) as emu:
        loop = asyncio.get_running_loop()
        emu.user(ADMIN, "Admin")
        for officers in OFFICERS.values():
            for officer in officers:
                emu.user(officer, "Officer")
        for i in range(cadres):
            emu.user(CADRES + i, "Cadre", language_code="en")
        for i in range(recipients):
            emu.user(RECIPIENTS + i, "U")
        emu.rate_limits.enable(global_per_second=per_second)
        print(json.dumps({"url": emu.base_url}), flush=True)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            command, _, arg = line.partition(" ")
            if command == "ready":
                await emu.wait_for_request("getUpdates", finished=False, timeout=60)
                answer: dict | None = {"ok": True}
            else:
                answer = await handle(emu, command, arg)
            if answer is None:
                break
            print(json.dumps(answer), flush=True)


async def serve(cadres: int, recipients: int, per_second: float) -> None:
    """The emulator; commands on stdin: ``sos <id>``, ``stats <json>``, ``reset``, ``quit``."""
    pushed: dict[int, tuple[int, float]] = {}  # cadre -> (update id, time)

    async def handle(emu: Any, command: str, arg: str) -> dict | None:
        if command == "sos":
            cadre = int(arg)
            # a guest is known by their Telegram name, and answered in their app's language
            await emu.user(cadre, name_of(cadre), language_code="en").send("/sos")
            pushed[cadre] = (emu.world.next_update_id - 1, asyncio.get_running_loop().time())
            return {"ok": True}
        if command == "reset":
            emu.requests.clear()
            pushed.clear()
            return {"ok": True}
        if command == "stats":
            return _stats(emu, pushed, json.loads(arg))
        return None

    await serve_people(cadres, recipients, per_second, handle)


def _stats(emu: Any, pushed: dict[int, tuple[int, float]], tier1: dict[str, list[int]]) -> dict:
    """Per SOS: fetched -> last first-tier alert message received by the emulator."""
    fetched_at: dict[int, float] = {}
    for record in emu.requests:
        if record.method != "getUpdates" or not record.response:
            continue
        for update in record.response.get("result") or []:
            fetched_at.setdefault(update["update_id"], record.time)
    sends: dict[tuple[int, str], float] = {}
    cadre_told: dict[int, float] = {}
    broadcast_sent = 0
    for record in emu.requests:
        if record.method != "sendMessage" or record.status != 200:
            continue
        chat = int(record.params["chat_id"])
        text = str(record.params.get("text", ""))
        if chat >= RECIPIENTS:
            broadcast_sent += 1
        elif chat >= CADRES and "Help has been called" in text:
            cadre_told.setdefault(chat, record.time)
        elif chat < CADRES and "Bench-" in text:
            key = (chat, text.split("Bench-")[1].split()[0].split("<")[0])
            sends.setdefault(key, record.time)
    latencies, to_cadre, missing = [], [], []
    for cadre, (update_id, at) in pushed.items():
        fetched = max(at, fetched_at.get(update_id, at))
        officers = tier1[str(cadre)]
        arrived = [sends.get((o, str(cadre))) for o in officers]
        if any(a is None for a in arrived):
            missing.append(cadre)
            continue
        latencies.append((max(arrived) - fetched) * 1000)  # type: ignore[type-var]
        if cadre in cadre_told:
            to_cadre.append((cadre_told[cadre] - fetched) * 1000)
    return {
        "sos": len(pushed),
        "latencies_ms": sorted(latencies),
        "to_cadre_ms": sorted(to_cadre),
        "missing": missing,
        "broadcast_sent": broadcast_sent,
        "throttled_429": emu.rate_limits.count,
    }


# ------------------------------------------------------------------------- the bot side


def fresh_database(database_url: str, cadres: int, recipients: int) -> Any:
    """A migrated database: the admin, six officers on duty, the SOS cadres and the
    broadcast's audience."""
    from sqlalchemy import insert, text

    from models import DutyArea, OnDuty, Person
    from models.db import make_engine, upgrade
    from services import clock, people
    from services.db import Database

    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    db = Database(engine)
    db.call(people.ensure_admins, [ADMIN], "en")
    now = clock.now()

    def person(telegram_id: int, role: str, prefecture: str, county: str | None) -> dict:
        return {
            "telegram_id": telegram_id,
            "display_name": "B",
            "real_name": name_of(telegram_id),
            "phone": "+8613800138000",
            "language": "en" if role == "cadre" else "zh-Hans",
            "role": role,
            "status": "active",
            "prefecture": prefecture,
            "county": county,
            "posting_altitude_m": 3500,
            "created_at": now,
            "updated_at": now,
        }

    prefectures = list(PREFECTURES)
    rows = [
        person(o, "duty_officer", p, None) for p, officers in OFFICERS.items() for o in officers
    ]
    rows += [
        person(CADRES + i, "cadre", prefectures[i % 3], PREFECTURES[prefectures[i % 3]])
        for i in range(cadres)
    ]
    rows += [person(RECIPIENTS + i, "cadre", "zhejiang", None) for i in range(recipients)]
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Person.__table__), rows[start : start + 5000])
    with db.session() as session:
        from sqlmodel import select

        for prefecture, officers in OFFICERS.items():
            for telegram_id in officers:
                officer = session.exec(select(Person).where(Person.telegram_id == telegram_id))
                officer_id = officer.one().id
                session.add(DutyArea(person_id=officer_id, prefecture=prefecture))
                session.add(OnDuty(person_id=officer_id, started_at=now))
    return db


def start_bot(url: str, database_url: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADRE_")}
    env.update(
        {
            "CADRE_TELEGRAM_TOKEN": TOKEN,
            "CADRE_TELEGRAM_BASE_URL": url,
            "CADRE_DATABASE_URL": database_url,
            "CADRE_ADMIN_IDS": str(ADMIN),
            "CADRE_LOG_LEVEL": "WARNING",
            # no escalation during the run: it would add messages to the officers' chats
            "CADRE_SOS_ACK_TIMEOUT": "3600",
        }
    )
    exe = str(Path(sys.executable).with_name("cadre-bot"))
    return subprocess.Popen(
        [exe, "run"], env=env, cwd=log.parent, stdout=subprocess.DEVNULL, stderr=log.open("w")
    )


def start_broadcast(db: Any) -> int:
    from services import broadcasts, people
    from services.broadcasts import Audience, Draft

    admin = db.call(people.find, ADMIN)
    draft = Draft(kind="text", texts={"zh-Hans": "基准测试通知", "en": "Benchmark notice"})
    draft.audience = Audience.PREFECTURE
    draft.audience_value = "zhejiang"
    return db.call(broadcasts.create, admin, ADMIN, draft).id


async def echo_round_trip(url: str, rounds: int = 200) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            async with session.post(f"{url}/bot{TOKEN}/getMe") as response:
                await response.read()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def summary(stats: dict) -> dict:
    values = stats["latencies_ms"]
    cadre = stats["to_cadre_ms"]

    def pct(data: list[float], q: float) -> float | None:
        return data[min(len(data) - 1, int(len(data) * q))] if data else None

    return {
        "sos": stats["sos"],
        "measured": len(values),
        "missing": len(stats["missing"]),
        "p50_ms": statistics.median(values) if values else None,
        "p95_ms": pct(values, 0.95),
        "p99_ms": pct(values, 0.99),
        "max_ms": values[-1] if values else None,
        "cadre_told_p50_ms": statistics.median(cadre) if cadre else None,
        "cadre_told_p99_ms": pct(cadre, 0.99),
        "broadcast_sent_meanwhile": stats["broadcast_sent"],
        "throttled_429": stats["throttled_429"],
    }


def tier1_of(cadres: range) -> dict[str, list[int]]:
    """Who must receive each SOS first: the two officers on duty of the cadre's prefecture;
    for an unverified caller (no prefecture known), the admin."""
    prefectures = list(PREFECTURES)
    return {
        str(c): [ADMIN] if c >= GUESTS else list(OFFICERS[prefectures[(c - CADRES) % 3]])
        for c in cadres
    }


async def run_sos(emu: EmulatorProcess, cadres: range, spacing: float) -> dict:
    emu.command("reset")
    for cadre in cadres:
        emu.command(f"sos {cadre}")
        await asyncio.sleep(spacing)
    await asyncio.sleep(3)  # the last ones finish
    return summary(emu.command("stats " + json.dumps(tier1_of(cadres))))


@contextlib.asynccontextmanager
async def bench_run(
    script: str, prefix: str, cadres: int, broadcast: int, database_url: str | None, **extra: Any
) -> AsyncIterator[tuple[Any, EmulatorProcess, dict[str, Any]]]:
    """A fresh database, the emulator of `script` (its ``--serve``) and `cadre-bot run`, up and
    polling: yields (database, emulator, results) and stops both processes afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    database_url = database_url or f"sqlite:///{tmp}/bench.db"
    db = fresh_database(database_url, cadres, broadcast)
    emu = EmulatorProcess(script, cadres, broadcast, 30, cwd=ROOT, stop_timeout=30)
    bot = start_bot(emu.url, database_url, tmp / "bot.log")
    results: dict[str, Any] = {
        "database": database_url.split("://")[0],
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
        **extra,
    }
    try:
        emu.command("ready")
        results["echo_round_trip_ms"] = await echo_round_trip(emu.url)
        yield db, emu, results
    finally:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(60)
        except subprocess.TimeoutExpired:
            bot.kill()
        emu.close()
        db.engine.dispose()
        log = (tmp / "bot.log").read_text(errors="replace")
        results["errors_in_log"] = log.count(" ERROR ") + log.count("Traceback")


async def main(args: argparse.Namespace) -> None:
    cadres = 2 * args.sos
    async with bench_run(
        __file__, "sos-bench-", cadres, args.broadcast, args.database_url, spacing_s=args.spacing
    ) as (db, emu, results):
        results["idle"] = await run_sos(emu, range(CADRES, CADRES + args.sos), args.spacing)
        if args.guests:
            guests = range(GUESTS, GUESTS + args.guests)
            results["unverified_idle"] = await run_sos(emu, guests, max(args.spacing, 1.1))
        if args.broadcast:
            start_broadcast(db)
            await asyncio.sleep(3)  # the broadcast is under way
            second = range(CADRES + args.sos, CADRES + 2 * args.sos)
            results["during_broadcast"] = await run_sos(emu, second, args.spacing)
            results["during_broadcast"]["broadcast_recipients"] = args.broadcast
    print(json.dumps(_rounded(results), indent=2))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sos", type=int, default=100, help="SOS per run (default 100)")
    parser.add_argument("--spacing", type=float, default=0.5, help="seconds between SOS")
    parser.add_argument("--broadcast", type=int, default=10_000, help="0: no broadcast run")
    parser.add_argument(
        "--guests", type=int, default=0, help="unverified callers after the idle run (to admin)"
    )
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
