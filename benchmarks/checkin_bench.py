"""Health check-in benchmark: 1,000 cadres submitting check-ins within one minute, through
the Bot API emulator, against the real `cadre-bot run` process (a child process, so that
the simulated phones in this process do not take the bot's CPU).

    .venv/bin/python benchmarks/checkin_bench.py [--users 1000] [--window 60]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_checkin]

Each simulated cadre starts at a random moment within the window and does the whole
check-in on the fastest path a phone user takes (13 updates: /checkin, feeling, no red
flag, no cough, four Lake Louise items, SpO2 typed, heart rate and temperature picked,
no blood pressure, no note). Reply latency is measured per update: from the moment the
update is queued at the emulator to the bot's answer (the next question, or the result).

Baseline, in the same run and on the same database: the latency of `/help` (a reply that
touches the database once) and of one check-in step, both with a single user and no load.

Prints Markdown: stored check-ins, total time, throughput, p50/p90/p99/max latency per
step and of the final (assess + store) step, the bot process's CPU time per update (the
figure that other load on the machine changes least) and the load average. SQLite by
default (a temporary file); the PostgreSQL database given is wiped (DROP SCHEMA public
CASCADE) first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlmodel import func, select  # noqa: E402

from emulator.server import BotApiEmulator  # noqa: E402
from models import CheckIn, Person, Role, Status  # noqa: E402
from models.db import make_engine, upgrade  # noqa: E402
from services.db import Database  # noqa: E402

FIRST_ID = 100_000
STEPS: list[tuple[str, str, str]] = [  # (send|press, what, what the answer shows)
    ("send", "/checkin", "ci:feeling:fine"),
    ("press", "ci:feeling:fine", "ci:flags:none"),
    ("press", "ci:flags:none", "ci:cough:no"),
    ("press", "ci:cough:no", "ci:headache:0"),
    ("press", "ci:headache:0", "ci:gi:0"),
    ("press", "ci:gi:0", "ci:fatigue:0"),
    ("press", "ci:fatigue:0", "ci:dizziness:0"),
    ("press", "ci:dizziness:0", "ci:spo2:none"),
    ("send", "90", "ci:hr:none"),
    ("press", "ci:hr:75", "ci:temp:none"),
    ("press", "ci:temp:36.5", "ci:bp:none"),
    ("press", "ci:bp:none", "ci:note:none"),
    ("press", "ci:note:none", "RESULT"),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def prepare_database(url: str | None) -> tuple[str, Database]:
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='checkin-bench-')}/bench.db"
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return url, Database(engine)


def add_cadres(db: Database, count: int) -> None:
    """Active cadres posted in Litang (4,014 m), inserted in one statement."""
    from services import clock

    now = clock.now()
    rows = [
        {
            "telegram_id": FIRST_ID + i,
            "display_name": f"Cadre {i}",
            "real_name": f"Cadre {i}",
            "phone": "+8613800138000",
            "language": "zh-Hans" if i % 2 else "en",
            "role": Role.CADRE.value,
            "status": Status.ACTIVE.value,
            "prefecture": "ganzi",
            "county": "ganzi.litang",
            "posting_altitude_m": 4014,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]
    with db.session() as session:
        session.execute(insert(Person), rows)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere). The bot's CPU
    per update is the figure that load from other programs on the machine changes least."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Waiters:
    """One event per chat, set when the bot posts there: the harness wakes only the user
    concerned (the emulator's own signal wakes every waiter on every message)."""

    def __init__(self, emulator: BotApiEmulator) -> None:
        self.events: dict[int, asyncio.Event] = {}
        world = emulator.world
        original = world.new_message

        def new_message(chat, sender, **content):  # type: ignore[no-untyped-def]
            message = original(chat, sender, **content)
            if sender.is_bot and chat.id in self.events:
                self.events[chat.id].set()
            return message

        world.new_message = new_message  # type: ignore[method-assign]

    async def answer(self, user, expect: str, limit: float = 600) -> None:  # type: ignore[no-untyped-def]
        event = self.events.setdefault(user.chat_id, asyncio.Event())
        async with asyncio.timeout(limit):
            while True:
                last = next(reversed(user.chat.messages.values()))
                if last.from_bot and _shows(last, expect):
                    return
                event.clear()
                await event.wait()


def _shows(message, expect: str) -> bool:  # type: ignore[no-untyped-def]
    if expect == "RESULT":
        return "ℹ️" in message.text
    return expect in str(message.reply_markup)


async def walk(
    emulator: BotApiEmulator,
    waiters: Waiters,
    user_id: int,
    delay: float,
    out: list[float],
    final: list[float],
) -> None:
    await asyncio.sleep(delay)
    user = emulator.user(user_id, f"U{user_id}", language_code="en")
    waiters.events.setdefault(user.chat_id, asyncio.Event())
    for index, (kind, what, expect) in enumerate(STEPS):
        started = time.perf_counter()
        if kind == "send":
            await user.send(what)
        else:
            await user.press(what)
        await waiters.answer(user, expect)
        elapsed = time.perf_counter() - started
        out.append(elapsed)
        if index == len(STEPS) - 1:
            final.append(elapsed)


async def baseline(emulator: BotApiEmulator, waiters: Waiters, user_id: int) -> tuple[float, float]:
    """/help and one check-in step, one user, no load (median of 10 each)."""
    user = emulator.user(user_id, "Base", language_code="en")
    helps, steps = [], []
    for _ in range(10):
        started = time.perf_counter()
        await user.send("/help")
        await user.wait_for("/checkin", timeout=30)
        helps.append(time.perf_counter() - started)
    for _ in range(10):
        started = time.perf_counter()
        await user.send("/checkin")
        await user.wait_for(lambda m: "ci:" in str(m.reply_markup))
        steps.append(time.perf_counter() - started)
        await user.send("/cancel")
        await user.wait_for("cancelled")
    return statistics.median(helps), statistics.median(steps)


async def run(users: int, window: float, url: str | None) -> None:
    url, db = prepare_database(url)
    add_cadres(db, users + 1)
    async with BotApiEmulator() as emulator:
        waiters = Waiters(emulator)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CADRE_")}
        env.update(
            {
                "CADRE_DATABASE_URL": url,
                "CADRE_TELEGRAM_TOKEN": emulator.token,
                "CADRE_TELEGRAM_BASE_URL": emulator.base_url,
                "CADRE_ADMIN_IDS": "9001",
                "CADRE_LOG_LEVEL": "ERROR",
            }
        )
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("cadre-bot")),
            "run",
            env=env,
            cwd=tempfile.mkdtemp(prefix="checkin-bench-cwd-"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            help_latency, step_latency = await baseline(emulator, waiters, FIRST_ID + users)
            rng = random.Random(5)
            latencies: list[float] = []
            finals: list[float] = []
            load_before = os.getloadavg()[0]
            cpu_before = cpu_seconds(process.pid)
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    walk(emulator, waiters, FIRST_ID + i, rng.uniform(0, window), latencies, finals)
                    for i in range(users)
                )
            )
            total = time.perf_counter() - started
            cpu = cpu_seconds(process.pid) - cpu_before
            load_after = os.getloadavg()[0]
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
    with db.session() as session:
        stored = session.exec(select(func.count()).select_from(CheckIn)).one()
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    ms = 1000.0
    print(f"### Check-ins: {users} cadres within {window:.0f} s, {backend}\n")
    print("| figure | value |\n|---|---|")
    print(f"| check-ins stored | {stored} / {users} |")
    print(f"| updates handled | {len(latencies)} ({len(STEPS)} per check-in) |")
    print(f"| wall time (last answer) | {total:.1f} s |")
    print(f"| throughput | {len(latencies) / total:.0f} updates/s |")
    for name, values in (("every step", latencies), ("final step (assess + store)", finals)):
        print(
            f"| latency, {name}: p50 / p90 / p99 / max | "
            f"{percentile(values, 0.5) * ms:.0f} / {percentile(values, 0.9) * ms:.0f} / "
            f"{percentile(values, 0.99) * ms:.0f} / {max(values) * ms:.0f} ms |"
        )
    print(
        f"| bot process CPU during the run | {cpu:.1f} s: {cpu / total * 100:.0f} % of one "
        f"core, {cpu / len(latencies) * ms:.2f} ms per update |"
    )
    print(f"| load average (1 min) before / after | {load_before:.1f} / {load_after:.1f} |")
    print(f"| baseline, /help, one user | {help_latency * ms:.0f} ms |")
    print(f"| baseline, one check-in step, one user | {step_latency * ms:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.window, args.database_url))


if __name__ == "__main__":
    main()
