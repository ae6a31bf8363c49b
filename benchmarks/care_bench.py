"""Care schedules at scale: 10,000 cadres' rest and exam schedules.

Measures, on SQLite and PostgreSQL:
  * seeding 10,000 cadres (not part of the product, for scale only);
  * the first pass (creates 20,000 care items, queues the reminders and escalation notices
    due at 09:00 on a day many items are overdue): the busiest pass there is;
  * a steady pass a minute later (nothing new is due): what the periodic job costs;
  * one person's pass (what a button press costs, scheduler/care.py: CareTimers.replan);
  * start-up: assembling the real Application, rebuilding the care jobs from the database
    (scheduler/care.py: CareTimers.start) and the first pass that the rebuilt job runs;
  * memory: peak Python allocations (tracemalloc) of a pass, and the process RSS.

Baseline, in the same run: the naive design with one APScheduler date job per item (its
next reminder), which is what "rebuild every reminder as a job at start-up" would cost,
against this design's two jobs (care:pass, care:next) plus one per waiting urgent oxygen
request.

    .venv/bin/python benchmarks/care_bench.py                 # SQLite and PostgreSQL
    .venv/bin/python benchmarks/care_bench.py --db sqlite --cadres 2000
    CADRE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_care ...
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text
from sqlmodel import select

import models  # noqa: F401
from config import Settings
from models import CareItem, CareKind, DutyArea, Person, Role, Status
from models.db import make_engine, upgrade
from services import clock
from services.care import reminders
from services.care.rules import CareConfig
from services.db import Database

T = TypeVar("T")
ZONE = ZoneInfo("Asia/Shanghai")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_care"
COUNTIES = {
    "ganzi": ("ganzi.litang", "ganzi.kangding", "ganzi.seda", "ganzi.batang"),
    "aba": ("aba.barkam", "aba.songpan", "aba.aba"),
    "liangshan": ("liangshan.xichang", "liangshan.muli"),
}
ALTITUDES = (1800, 2600, 3000, 3400, 3600, 4000, 4400, 4600, 4900)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def traced(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(value, seconds, peak MiB of Python allocations)."""
    gc.collect()
    tracemalloc.start()
    try:
        value, seconds = timed(fn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, seconds, peak / 2**20


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_database(url: str) -> Database:
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return Database(engine)


def seed(db: Database, cadres: int, today: date) -> None:
    """Cadres arrived over the last 400 days at every altitude band; an admin and one duty
    officer per prefecture. Bulk inserts: the product's registration is not measured."""
    rng = random.Random(2022)
    now = datetime.now(UTC)
    rows = []
    for number in range(cadres):
        prefecture = list(COUNTIES)[number % 3]
        rows.append(
            {
                "telegram_id": 10_000_000 + number,
                "display_name": f"Cadre {number}",
                "real_name": f"干部{number}",
                "language": "zh-Hans" if number % 4 else "en",
                "role": Role.CADRE.value,
                "status": Status.ACTIVE.value,
                "prefecture": prefecture,
                "county": rng.choice(COUNTIES[prefecture]),
                "posting_altitude_m": ALTITUDES[number % len(ALTITUDES)],
                "altitude_source": "self",
                "assignment_start": today - timedelta(days=rng.randrange(1, 400)),
                "assignment_end": today + timedelta(days=rng.randrange(200, 900)),
                "created_at": now,
                "updated_at": now,
            }
        )
    staff = [
        {**rows[0], "telegram_id": 9001, "role": Role.ADMIN.value, "assignment_start": None},
        *(
            {
                **rows[0],
                "telegram_id": 9100 + i,
                "role": Role.DUTY_OFFICER.value,
                "prefecture": p,
                "assignment_start": None,
            }
            for i, p in enumerate(COUNTIES)
        ),
    ]
    with db.session() as session:
        table = Person.__table__  # type: ignore[attr-defined]
        for start in range(0, len(rows), 2000):
            session.execute(insert(table), rows[start : start + 2000])
        session.execute(insert(table), staff)
        session.flush()
        officers = session.exec(
            select(Person.id, Person.prefecture).where(Person.role == Role.DUTY_OFFICER)
        ).all()
        for person_id, prefecture in officers:
            session.add(DutyArea(person_id=person_id, prefecture=prefecture))


def slot_today(today: date, hour: int = 9) -> datetime:
    return datetime(today.year, today.month, today.day, hour, tzinfo=ZONE)


def baseline_jobs(db: Database, config: CareConfig, now: datetime) -> dict[str, float]:
    """One APScheduler date job per item at its next reminder: the design not chosen."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    def next_reminders() -> list[tuple[int, datetime]]:
        with db.session() as session:
            items = session.exec(select(CareItem.id, CareItem.person_id)).all()
        # next slot of each item: the pass computes the same, here per item
        return [(item_id, now + timedelta(minutes=(item_id % 1440))) for item_id, _ in items]

    async def noop(item_id: int) -> None:
        return None

    async def build() -> tuple[int, float, float]:
        scheduler = AsyncIOScheduler(timezone=ZONE)
        scheduler.start(paused=True)
        pending, read_seconds = timed(next_reminders)
        gc.collect()
        tracemalloc.start()
        started = time.perf_counter()
        for item_id, when in pending:
            scheduler.add_job(
                noop,
                "date",
                run_date=when,
                args=(item_id,),
                id=f"care:remind:{item_id}",
                replace_existing=True,
                misfire_grace_time=8 * 3600,
                coalesce=True,
            )
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        count = len(scheduler.get_jobs())
        scheduler.shutdown(wait=False)
        return count, read_seconds + seconds, peak / 2**20

    count, seconds, peak = asyncio.run(build())
    return {"jobs": count, "seconds": seconds, "peak_mib": peak}


def startup(db: Database, settings: Settings) -> dict[str, float]:
    """Assemble the real Application, rebuild the jobs, run the first pass they schedule."""
    from bot.app import build_application
    from handlers.context import deps_of
    from scheduler import jobs

    async def run() -> dict[str, float]:
        started = time.perf_counter()
        application = build_application(settings, db)
        built = time.perf_counter()
        care_timers = deps_of(application).timers.care  # type: ignore[attr-defined]
        await care_timers.start()
        rebuilt = time.perf_counter()
        await care_timers.run_pass()
        passed = time.perf_counter()
        scheduler = jobs.scheduler_of(application)
        care_jobs = [
            job
            for job in scheduler._pending_jobs  # not started: the jobs wait here
        ]
        return {
            "build_app": built - started,
            "rebuild_jobs": rebuilt - built,
            "first_pass": passed - rebuilt,
            "jobs": float(len({job[0].id for job in care_jobs})),
        }

    return asyncio.run(run())


def bench(url: str, cadres: int) -> dict[str, Any]:
    label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    db = fresh_database(url)
    today = datetime.now(ZONE).date()
    _, seeded = timed(lambda: seed(db, cadres, today))
    config = CareConfig(ZONE, 9 * 3600, timedelta(hours=8), 7)
    at_nine = slot_today(today)
    rss_before = rss_mib()
    first, first_s = timed(lambda: db.call(reminders.run_pass, at_nine, config))
    first_rss = rss_mib() - rss_before
    steady_runs = []
    for minute in range(1, 6):
        steady, seconds = timed(
            lambda m=minute: db.call(reminders.run_pass, at_nine + timedelta(minutes=m), config)
        )
        steady_runs.append(seconds)
    # memory of a steady pass (tracemalloc slows it down: measured apart from the time)
    _, _, steady_peak = traced(
        lambda: db.call(reminders.run_pass, at_nine + timedelta(minutes=6), config)
    )
    with db.session() as session:
        someone = session.exec(select(Person.id).where(Person.role == Role.CADRE)).first()
    person_runs = []
    for minute in range(10, 30):
        _, seconds = timed(
            lambda m=minute: db.call(
                reminders.run_pass, at_nine + timedelta(minutes=m), config, person_ids=[someone]
            )
        )
        person_runs.append(seconds)
    settings = Settings(
        _env_file=None,
        telegram_token="123456:BENCHMARK-token",
        telegram_base_url="http://127.0.0.1:9",
        database_url=url,
        admin_ids=[9001],
    )
    with clock_at(at_nine + timedelta(minutes=40)):
        started = startup(db, settings)
    baseline = baseline_jobs(db, config, at_nine)
    with db.session() as session:
        items = len(session.exec(select(CareItem.id)).all())
        by_kind = {
            str(k): len(session.exec(select(CareItem.id).where(CareItem.kind == k)).all())
            for k in CareKind
        }
    db.engine.dispose()
    return {
        "db": label,
        "cadres": cadres,
        "items": items,
        "by_kind": by_kind,
        "seed_s": seeded,
        "first": (first, first_s, first_rss),
        "steady": (steady, steady_peak),
        "steady_runs": steady_runs,
        "person_median_ms": sorted(person_runs)[len(person_runs) // 2] * 1000,
        "startup": started,
        "baseline": baseline,
        "rss_mib": rss_mib(),
    }


class clock_at:
    """Freeze services.clock for the start-up measurement (the pass reads clock.now())."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment
        self.saved: Any = None

    def __enter__(self) -> None:
        self.saved = clock.now
        clock.now = lambda: self.moment.astimezone(UTC)  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        clock.now = self.saved  # type: ignore[assignment]


def report(r: dict[str, Any]) -> None:
    first, first_s, first_rss = r["first"]
    steady, steady_peak = r["steady"]
    runs = sorted(r["steady_runs"])
    s = r["startup"]
    b = r["baseline"]
    print(f"\n== {r['db']}: {r['cadres']:,} cadres, {r['items']:,} care items {r['by_kind']}")
    print(f"seed (bulk insert, not the product):             {r['seed_s']:.2f} s")
    print(
        f"first pass (creates items, 09:00 of a busy day):  {first_s:.2f} s, "
        f"{first.reminders:,} reminders + {first.escalations} escalation notices "
        f"({len(first.escalated):,} items), {first.skipped_late} skipped late, "
        f"RSS +{first_rss:.0f} MiB"
    )
    print(
        f"steady pass (nothing new due), 5 runs:            median {runs[2] * 1000:.0f} ms "
        f"(min {runs[0] * 1000:.0f}, max {runs[-1] * 1000:.0f}), {steady.reminders} reminders, "
        f"Python peak {steady_peak:.0f} MiB"
    )
    print(f"one person's pass (a button press), median of 20: {r['person_median_ms']:.1f} ms")
    print(
        f"start-up: build Application {s['build_app'] * 1000:.0f} ms, rebuild jobs "
        f"{s['rebuild_jobs'] * 1000:.1f} ms, first pass {s['first_pass'] * 1000:.0f} ms, "
        f"{int(s['jobs'])} care jobs"
    )
    print(
        f"baseline, one date job per item:                 {b['jobs']:,} jobs in "
        f"{b['seconds']:.2f} s, Python peak {b['peak_mib']:.0f} MiB"
    )
    print(f"process max RSS at the end:                       {r['rss_mib']:.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--cadres", type=int, default=10_000)
    args = parser.parse_args()
    urls = []
    if args.db in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="care-bench-")
        urls.append(f"sqlite:///{folder}/bench.db")
    if args.db in ("postgresql", "both"):
        urls.append(os.environ.get("CADRE_BENCH_PG_URL", DEFAULT_PG))
    for url in urls:
        report(bench(url, args.cadres))
    return 0


if __name__ == "__main__":
    sys.exit(main())
