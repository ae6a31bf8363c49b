"""Board benchmark (issue #17): the board's pages for the duty officer of Ganzi (40% of the
people) and an admin at 100,000 people and 1,000,000 check-ins, and the import of a
5,000-row roster, each beside /help measured in the same run.

    .venv/bin/python benchmarks/board_bench.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_board
    .venv/bin/python benchmarks/board_bench.py --database-url ... --seeded   # data kept

The population is scale_bench.py's (its seeding, wiped and redone unless --seeded says the
database already holds it). The real Application runs in this process against the Bot
API emulator, with its board server on a free port (as `cadre-bot run` starts them):

1. each page is requested over HTTP with valid initData, as board.js does; the time is
   from the request to the last byte of the answer on the loopback, so it is the
   server's time plus a few tenths of a millisecond. Pages far down a list are reached
   as the Next links reach them (after the last id of the page before);
2. /help, sent through the emulator to the same Application, from the update to the
   answer (the baseline: one person lookup, one reply). /help and the pages are
   measured in rounds (each once a round), so that the load of a shared machine weighs
   on them alike; the load average before and after is printed;
3. a 5,000-row roster (XLSX, every row valid, new phones) uploaded on the board and one
   sent to the bot as a file: the time to the report, and in the chat to the progress
   message ("Checking cohort.xlsx…") that comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scale_bench as sb  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from models import Person, Role, Status  # noqa: E402
from models.db import make_engine  # noqa: E402
from services.db import Database  # noqa: E402

URL = "https://board.example.org/board/"


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": sb.percentile(ordered, 0.95),
        "max": ordered[-1],
    }


def line(label: str, values: list[float]) -> str:
    s = summary(values)
    return f"  {label:<46} p50 {s['p50']:6.1f} ms  p95 {s['p95']:6.1f} ms  (n={s['n']})"


class Cpu:
    """CPU time (ns, /proc/<pid>/schedstat) of this process's threads (the bot, its board
    server, the emulator: idle while a page is served) and of the PostgreSQL backends
    serving this database: the work a page costs, which the machine's load does not
    change, where the wall time grows with the load (Linux only)."""

    def __init__(self, url: str) -> None:
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.monitor = psycopg.connect(dsn, autocommit=True)
        self.pids: list[int] = []

    def refresh(self) -> None:
        """The backends now open (the pool may open more): read once a round."""
        self.pids = [
            pid
            for (pid,) in self.monitor.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]

    @staticmethod
    def _ns(path: str) -> int:
        try:
            with open(path) as stat:
                return int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def sample(self) -> tuple[int, int]:
        own = sum(
            self._ns(f"/proc/self/task/{task}/schedstat") for task in os.listdir("/proc/self/task")
        )
        return own, sum(self._ns(f"/proc/{pid}/schedstat") for pid in self.pids)


def roster_xlsx(rows: int, first_phone: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "phone", "home_unit", "prefecture", "county", "assignment_start",
                  "assignment_end", "cohort"])  # fmt: skip
    counties = ["ganzi.litang", "ganzi.kangding", "aba.barkam", "liangshan.xichang"]
    letters = "abcdefghij"
    for i in range(rows):
        county = counties[i % len(counties)]
        name = "Cadre " + "".join(letters[int(d)] for d in f"{i:05d}")  # names have no digits
        sheet.append([name, str(first_phone + i), "Hangzhou CDC",
                      county.split(".")[0], county, "2026-09-01", "2028-09-01",
                      "bench-cohort"])  # fmt: skip
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def views(db: Database, settings: Any) -> tuple[list[str], list[str]]:
    """The officer's and the admin's pages: first pages, pages far down (reached as the
    Next links reach them: after the last id of the page before), filtered and searched."""
    from services import people
    from services.health import reports
    from services.health.config import HealthConfig

    with db.engine.connect() as connection:
        cid = connection.execute(
            select(Person.id).where(Person.prefecture == "ganzi", Person.role == Role.CADRE)
        ).scalar()
        county = connection.execute(
            select(Person.county)
            .where(Person.prefecture == "ganzi")
            .group_by(Person.county)
            .order_by(func.count().desc())
        ).scalar()
    assert cid is not None and county is not None
    health = HealthConfig.from_settings(settings)

    def page_100(telegram_id: int) -> str:
        """today?state=checked at its 100th page: after the 4,950th person of the state."""
        viewer = db.call(people.find, telegram_id)
        found = db.call(
            lambda s: reports.area_page(s, viewer, health, state="checked", offset=4949, limit=1)
        )
        assert found.people, "fewer than 4,950 people checked in"
        return f"today?state=checked&after={found.people[0].id}&page=100"

    search = quote("干部01234")  # scale_bench.py's names: 干部000000...; ten match
    officer = [
        "alerts",
        "today?state=missing",
        "today?state=checked",
        "today?state=none",
        page_100(sb.OFFICER_TG),
        f"today?state=missing&prefecture=ganzi&county={county}",
        f"today?state=missing&q={search}",
        f"person/{cid}",
        "care",
        "oxygen",
    ]
    admin = [
        *officer[:4],
        page_100(sb.ADMIN_TG),
        *officer[5:],
        "people",
        "people?status=active&prefecture=ganzi&page=200",
        f"people?q={search}",
        f"people/{cid}",
        "roster?prefecture=ganzi",
        "import",
        "broadcasts",
        "questions",
    ]
    return officer, admin


async def run(
    url: str, requests: int, budget: float, import_rows: int, pages_too: bool = True
) -> dict[str, Any]:
    import aiohttp
    from telegram import Update

    from bot.app import build_application, freeze_startup_objects
    from emulator.server import BotApiEmulator
    from scheduler import jobs
    from webapp import auth

    figures: dict[str, Any] = {"pages": {}, "help": {}, "import": {}, "load": {}}
    async with BotApiEmulator(token=sb.TOKEN) as emu:
        db = Database(make_engine(url))
        with db.engine.begin() as connection:  # a rerun: the last run's imports go
            connection.execute(
                text("DELETE FROM person WHERE status = 'expected' AND home_unit = 'Hangzhou CDC'")
            )
        settings = sb.bench_settings(url, emu.base_url).model_copy(
            update={"webapp_url": URL, "webapp_listen": "127.0.0.1:0"}
        )
        app = build_application(settings, db)
        freeze_startup_objects()
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        assert app.updater is not None
        await app.updater.start_polling(
            poll_interval=0, timeout=10, allowed_updates=Update.ALL_TYPES
        )
        await app.start()
        jobs.scheduler_of(app).remove_all_jobs()
        board = app.bot_data["board"]
        base = f"http://127.0.0.1:{board.port}/board/api/"
        officer_views, admin_views = views(db, settings)
        cpu = Cpu(url)
        try:
            async with aiohttp.ClientSession() as http:
                for who, telegram_id, pages in (
                    ("Ganzi duty officer", sb.OFFICER_TG, officer_views),
                    ("admin", sb.ADMIN_TG, admin_views),
                ):
                    # Round after round, /help and each page once: the machine's load
                    # (shared here) weighs on every figure of a table alike.
                    user = emu.user(telegram_id, who.title(), language_code="zh-hans")
                    help_times: list[float] = []
                    times: dict[str, list[float]] = {view: [] for view in pages}
                    cpu_app: dict[str, list[float]] = {view: [] for view in pages}
                    cpu_db: dict[str, list[float]] = {view: [] for view in pages}
                    load = [os.getloadavg()[0]]
                    deadline = time.perf_counter() + budget
                    for _ in range(requests):
                        started = time.perf_counter()
                        await user.send("/help")
                        await user.wait_for(lambda m: True, timeout=600)
                        help_times.append((time.perf_counter() - started) * 1000)
                        cpu.refresh()
                        for view in pages if pages_too else []:
                            header = {"Authorization": "tma " + auth.sign(sb.TOKEN, telegram_id)}
                            before = cpu.sample()
                            started = time.perf_counter()
                            async with http.get(base + view, headers=header) as response:
                                body = await response.text()
                            times[view].append((time.perf_counter() - started) * 1000)
                            after = cpu.sample()
                            cpu_app[view].append((after[0] - before[0]) / 1e6)
                            cpu_db[view].append((after[1] - before[1]) / 1e6)
                            assert response.status == 200, (view, response.status, body[:300])
                        if time.perf_counter() > deadline:
                            break
                    load.append(os.getloadavg()[0])
                    figures["help"][who] = summary(help_times)
                    figures["load"][who] = load
                    print(f"{who} (load average {load[0]:.1f} -> {load[1]:.1f}):", flush=True)
                    print(line("/help (chat, end to end)", help_times), flush=True)
                    figures["pages"][who] = {}
                    for view, timings in times.items():
                        if timings:
                            figures["pages"][who][view] = {
                                **summary(timings),
                                "cpu_app_p50": statistics.median(cpu_app[view]),
                                "cpu_db_p50": statistics.median(cpu_db[view]),
                            }
                            print(
                                line(unquote(view), timings)
                                + f"  cpu p50: app {statistics.median(cpu_app[view]):5.1f}"
                                f" + db {statistics.median(cpu_db[view]):5.1f} ms",
                                flush=True,
                            )

                # Import: 5,000 rows on the board, then 5,000 sent to the bot as a file.
                data = roster_xlsx(import_rows, 13700000000)
                form = aiohttp.FormData()
                form.add_field("file", data, filename="cohort.xlsx")
                header = {"Authorization": "tma " + auth.sign(sb.TOKEN, sb.ADMIN_TG)}
                started = time.perf_counter()
                async with http.post(base + "import", data=form, headers=header) as response:
                    body = await response.text()
                took = time.perf_counter() - started
                assert response.status == 200 and f"已接收 {import_rows} 人" in body, body[:800]
                figures["import"]["board_s"] = took
                print(f"  import {import_rows} rows on the board: {took:.2f} s", flush=True)
                admin = emu.user(sb.ADMIN_TG, "Admin", language_code="zh-hans")
                data = roster_xlsx(import_rows, 13600000000)
                started = time.perf_counter()
                await admin.send_document("cohort.xlsx", data)
                await admin.wait_for("cohort.xlsx", timeout=600)
                progress = time.perf_counter() - started
                report = await admin.wait_for(lambda m: "cohort.xlsx" not in (m.text or ""),
                                              timeout=600)  # fmt: skip
                took = time.perf_counter() - started
                assert f"{import_rows} 人" in (report.text or ""), report.text
                figures["import"]["chat_progress_s"] = progress
                figures["import"]["chat_s"] = took
                print(
                    f"  import {import_rows} rows sent to the bot: progress message after "
                    f"{progress:.2f} s, report after {took:.2f} s",
                    flush=True,
                )
                with db.session() as s:
                    expected = s.exec(
                        select(func.count())
                        .select_from(Person)
                        .where(Person.status == Status.EXPECTED)
                    ).one()
                figures["import"]["expected_after"] = expected[0]
        finally:
            cpu.monitor.close()
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
            db.engine.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("CADRE_BENCH_DATABASE_URL"))
    parser.add_argument("--seeded", action="store_true", help="the population is there already")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--checkins", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30, help="requests per page")
    parser.add_argument("--budget", type=float, default=900, help="seconds per viewer at most")
    parser.add_argument("--import-rows", type=int, default=5000)
    parser.add_argument("--import-only", action="store_true", help="no page times")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    url = args.database_url
    if not url:
        parser.error("--database-url (PostgreSQL) is needed")
    print(f"database: {url.split('@')[-1]} · load average {os.getloadavg()[0]:.1f}", flush=True)
    if not args.seeded:
        db = sb.fresh_database(url)
        started = time.perf_counter()
        pop = sb.seed(db, args.people, args.checkins, 3000)
        print(f"seeded in {time.perf_counter() - started:.0f} s: {json.dumps(pop.counts)}")
        db.engine.dispose()
    figures = asyncio.run(
        run(url, args.requests, args.budget, args.import_rows, not args.import_only)
    )
    figures["load_average"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
