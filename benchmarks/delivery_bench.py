"""Delivery engine benchmarks against the Bot API emulator (docs/benchmarks.md).

    .venv/bin/python benchmarks/delivery_bench.py                 # ceiling + emergencies
    .venv/bin/python benchmarks/delivery_bench.py --floor         # + 10,000 at 30/s (~6 min)
    .venv/bin/python benchmarks/delivery_bench.py --database-url postgresql+psycopg://...

The emulator runs in its own process (as Telegram would be another machine), with flood
limits on. The engine is `bot.delivery.Delivery` as `cadre-bot run` starts it, on a fresh
database; recipients are queued by `services.broadcasts` exactly as /broadcast does.

Figures, each next to its baseline measured in the same run:

* emulator capacity: plain aiohttp requests, no bot (the most any client can get here);
* naive PTB: `Bot.send_message` with PTB's default transport (httpx), 32 at a time, no
  database: what sending without the engine would achieve;
* engine ceiling: 10,000 recipients with the emulator's limit at 2,000/s, and with no
  limit at all (the bot's own limit raised to 10,000/s);
* emergency latency (queued -> received by the emulator) p50/p99 over 50 emergencies
  during a broadcast, against the emulator's echo round trip (getMe);
* with --floor: 10,000 recipients at 30 msg/s, total time against 10,000/30 s, and the
  peak RSS of the bot process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator_process import EmulatorProcess  # noqa: E402  (benchmarks/, next to this script)

TOKEN = "123456:BENCH-token"
ADMIN = 9001
FIRST = 1_000_000


# ------------------------------------------------------------------ the emulator side


async def serve(users: int, per_second: float) -> None:
    """Run the emulator; commands on stdin: ``limit <n>``, ``stats <marker>``, ``quit``."""
    from emulator.server import BotApiEmulator

    async with BotApiEmulator(token=TOKEN) as emu:
        emu.user(ADMIN, "Admin")
        for i in range(users):
            emu.user(FIRST + i, "U")
        for n in range(100):
            emu.user(500 + n, "Officer")
        emu.rate_limits.enable(global_per_second=per_second)
        print(json.dumps({"url": emu.base_url}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            command, _, arg = line.partition(" ")
            if command == "limit":
                emu.rate_limits.enable(global_per_second=float(arg))
                print(json.dumps({"ok": True}), flush=True)
            elif command == "reset":
                emu.requests.clear()
                emu.rate_limits.throttled.clear()
                for chat in emu.world.chats.values():
                    chat.messages.clear()
                print(json.dumps({"ok": True}), flush=True)
            elif command == "stats":
                sends = [r for r in emu.requests if r.method == "sendMessage"]
                ok = [r for r in sends if r.status == 200]
                marked = {
                    str(r.params.get("text")): r.time
                    for r in ok
                    if arg and arg in str(r.params.get("text"))
                }
                delivered: dict[int, int] = {}
                for r in ok:
                    chat = int(r.params["chat_id"])
                    delivered[chat] = delivered.get(chat, 0) + 1
                print(
                    json.dumps(
                        {
                            "sends": len(sends),
                            "ok": len(ok),
                            "throttled": emu.rate_limits.count,
                            "first": ok[0].time if ok else None,
                            "last": ok[-1].time if ok else None,
                            "marked": marked,
                            "recipients": len(delivered),
                            "duplicates": sum(n - 1 for n in delivered.values()),
                        }
                    ),
                    flush=True,
                )
            else:
                break


# ------------------------------------------------------------------------- the bot side


def make_settings(url: str, database_url: str, rate: float, concurrency: int = 64):
    from config import Settings

    return Settings(
        _env_file=None,
        telegram_token=TOKEN,
        telegram_base_url=url,
        database_url=database_url,
        admin_ids=[ADMIN],
        delivery_rate=rate,
        delivery_concurrency=concurrency,
        log_level="WARNING",
    )


_runs = iter(range(1, 1000))


def fresh_database(database_url: str, recipients: int):
    """A new, migrated database with the admin and `recipients` cadres."""
    from sqlalchemy import insert, text

    from models import Person
    from models.db import make_engine, upgrade
    from services import clock, people
    from services.db import Database

    if database_url.startswith("sqlite:///"):
        database_url = database_url.replace(".db", f"-{next(_runs)}.db")
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    db = Database(engine)
    db.call(people.ensure_admins, [ADMIN], "en")
    now = clock.now()
    rows = [
        {
            "telegram_id": FIRST + i,
            "display_name": "U",
            "real_name": f"Cadre {i}",
            "language": "en" if i % 3 == 0 else "zh-Hans",
            "role": "cadre",
            "status": "active",
            "prefecture": "ganzi",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(recipients)
    ]
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Person.__table__), rows[start : start + 5000])
    return db


def broadcast(db, text: str) -> int:
    from services import broadcasts, people
    from services.broadcasts import Audience, Draft

    admin = db.call(people.find, ADMIN)
    draft = Draft(kind="text", texts={"zh-Hans": f"{text}（中文）", "en": text})
    draft.audience = Audience.ROLE
    draft.audience_value = "cadre"
    return db.call(broadcasts.create, admin, ADMIN, draft).id


def remaining(db, broadcast_id: int) -> int:
    from sqlmodel import func, select

    from models import OutboxMessage, OutboxStatus
    from services.broadcasts import source_of

    with db.session() as session:
        return session.exec(
            select(func.count()).where(
                OutboxMessage.source == source_of(broadcast_id),
                OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),  # type: ignore[attr-defined]
            )
        ).one()


async def run_broadcast(
    emu: EmulatorProcess,
    database_url: str,
    recipients: int,
    rate: float,
    *,
    emergencies: int = 0,
    spacing: float = 0.3,
) -> dict:
    """Queue a broadcast to `recipients`, run the engine until all are sent (or, with
    `emergencies`, until those went out during it); returns the figures."""
    from bot.delivery import Delivery
    from models import Priority
    from services import outbox

    db = fresh_database(database_url, recipients)
    emu.command("reset")
    settings = make_settings(emu.url, str(db.engine.url), rate)
    delivery = Delivery(settings, db)
    worker = asyncio.create_task(delivery.run())
    await delivery.started.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    broadcast_id = broadcast(db, "Benchmark notice")
    queued_at = loop.time()
    latencies_at: dict[str, float] = {}
    if emergencies:
        while delivery.sent_count < 50:  # noqa: ASYNC110 (polling a counter, once)
            await asyncio.sleep(0.05)
        for n in range(emergencies):
            text = f"SOS bench {n}"
            latencies_at[text] = time.monotonic()
            await db.run(
                outbox.enqueue,
                chat_id=500 + n,
                text=text,
                priority=Priority.EMERGENCY,
                idempotency_key=f"bench:sos:{n}",
            )
            await asyncio.sleep(spacing)
        await asyncio.sleep(2)
    else:
        while remaining(db, broadcast_id):  # noqa: ASYNC110 (polling the database)
            await asyncio.sleep(0.2)
    finished = loop.time()
    delivery.request_stop()
    await worker
    stats = emu.command("stats SOS bench")
    figures = {
        "recipients": recipients,
        "queue_s": queued_at - started,
        "total_s": finished - started,
        "sent": stats["ok"],
        "throttled_429": stats["throttled"],
        "duplicates": stats["duplicates"],
    }
    if stats["first"] is not None and stats["last"] is not None and stats["ok"] > 1:
        figures["rate_msg_s"] = (stats["ok"] - 1) / (stats["last"] - stats["first"])
    if emergencies:
        received = stats["marked"]
        waits = sorted(
            (received[k] - latencies_at[k]) * 1000 for k in latencies_at if k in received
        )
        figures["emergencies"] = len(waits)
        figures["emergency_p50_ms"] = statistics.median(waits)
        figures["emergency_p99_ms"] = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
        figures["emergency_max_ms"] = waits[-1]
    db.engine.dispose()
    return figures


async def baseline_echo(url: str, rounds: int = 200) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            async with session.post(f"{url}/bot{TOKEN}/getMe") as response:
                await response.read()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def baseline_aiohttp(url: str, count: int = 5000, concurrency: int = 64) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                data = {"chat_id": FIRST + i, "text": f"raw <b>{i}</b>", "parse_mode": "HTML"}
                async with session.post(f"{url}/bot{TOKEN}/sendMessage", json=data) as response:
                    await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - start)


async def baseline_ptb(url: str, count: int = 2000, concurrency: int = 32) -> float:
    from telegram import Bot

    bot = Bot(TOKEN, base_url=f"{url}/bot")
    async with bot:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                await bot.send_message(FIRST + i, f"naive <b>{i}</b>", parse_mode="HTML")

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="delivery-bench-"))
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    emu = EmulatorProcess(__file__, args.recipients, 1_000_000, cwd=ROOT)
    results: dict[str, object] = {
        "database": database_url.split("://")[0],
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }
    try:
        results["echo_round_trip_ms"] = await baseline_echo(emu.url)
        results["emulator_capacity_msg_s"] = await baseline_aiohttp(emu.url)
        results["naive_ptb_msg_s"] = await baseline_ptb(emu.url)
        emu.command("limit 2000")
        results["ceiling"] = await run_broadcast(emu, database_url, args.recipients, 2000)
        emu.command("limit 1000000")  # no flood limit: what the engine itself can do
        results["unlimited"] = await run_broadcast(emu, database_url, args.recipients, 10000)
        emu.command("limit 30")
        results["emergencies_at_30"] = await run_broadcast(
            emu, database_url, args.recipients, 30, emergencies=50
        )
        emu.command("limit 2000")
        results["emergencies_at_2000"] = await run_broadcast(
            emu, database_url, args.recipients, 2000, emergencies=50, spacing=0.08
        )
        if args.floor:
            emu.command("limit 30")
            floor = await run_broadcast(emu, database_url, args.recipients, 30)
            floor["floor_s"] = args.recipients / 30
            floor["over_floor_pct"] = (floor["total_s"] / floor["floor_s"] - 1) * 100
            results["at_30"] = floor
        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        emu.close()
    print(json.dumps(results, indent=2, default=lambda v: round(v, 2)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2]), float(sys.argv[3])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--floor", action="store_true", help="also 10,000 at 30/s (~6 min)")
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
