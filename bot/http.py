"""The health and metrics server on CADRE_HTTP_LISTEN: /healthz and /metrics.

It runs inside the bot's event loop (aiohttp), in polling and webhook mode alike: started
at the end of post_init, stopped when the Application stops (the scheduler's shutdown, the
first step of `Application.stop()`) or at post_shutdown, whichever comes first.

/healthz answers 200 when every check passes and 503 otherwise, with JSON:

    {"status": "ok" | "unhealthy",
     "role": "leader",              (a standby answers itself: bot/leader.py)
     "standbys": 1,                 (PostgreSQL; null on SQLite: bot/leader.py)
     "checks": {"database":  {"ok": true, "detail": "SELECT 1 in 2 ms"},
                "bot_api":   {"ok": true, "detail": "getMe answered 4 s ago"},
                "scheduler": {"ok": true, "detail": "running, 9 jobs"},
                "outbox":    {"ok": true, "detail": "no due message waiting too long",
                              "stuck": [], "depth": {"emergency": 0, ...}}},
     "updates_waiting_for_database": 0}

Each check is cheap: one `SELECT 1` (2 s timeout, shared with the outage retries), a
`getMe` at most every `BOT_API_TTL` seconds, the scheduler's state, and one grouped query
on the outbox's due index. A check that cannot run (the outbox while the database is
down) reports ``"ok": null``; the status is "ok" only when every check is ``true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from telegram.error import TelegramError
from telegram.ext import Application

from bot.metrics import DatabaseGauges, Metrics
from bot.outage import DatabaseProbe, OutageGuard, background
from services import clock, monitoring
from services.db import Database

log = logging.getLogger(__name__)

BOT_API_TTL = 30.0  # seconds a successful getMe vouches for the Bot API
BOT_API_TIMEOUT = 5.0
OUTBOX_TIMEOUT = 3.0


class HealthServer:
    def __init__(
        self,
        application: Application,
        db: Database,
        probe: DatabaseProbe,
        metrics: Metrics,
        gauges: DatabaseGauges,
        guard: OutageGuard | None = None,
    ) -> None:
        self.application = application
        self.db = db
        self.probe = probe
        self.metrics = metrics
        self.gauges = gauges
        self.guard = guard
        self.host: str | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._bot_api_ok_at: float | None = None
        self._bot_api_error: str | None = None
        self._get_me: asyncio.Future[Any] | None = None

    # --- lifecycle ----------------------------------------------------------------

    async def start(self, host: str, port: int) -> bool:
        """Bind and serve. A failure to bind is logged, not fatal: the bot's work (an SOS)
        matters more than its monitoring, and the missing endpoint is noticed anyway."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_endpoint)
        served = await listen(app, host, port, "health and metrics server")
        if served is None:
            return False
        self._runner, self.port = served
        self.host = host
        log.info("health and metrics on http://%s:%s/healthz and /metrics", host, self.port)
        self.gauges.warm_up()
        return True

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    # --- /metrics -----------------------------------------------------------------

    async def metrics_endpoint(self, request: web.Request) -> web.Response:
        await self.gauges.refresh()
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- /healthz -----------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        database = await self._check_database()
        bot_api, outbox = await asyncio.gather(
            self._check_bot_api(), self._check_outbox(database["ok"])
        )
        checks = {
            "database": database,
            "bot_api": bot_api,
            "scheduler": self._check_scheduler(),
            "outbox": outbox,
        }
        healthy = all(check["ok"] is True for check in checks.values())
        leadership = self.application.bot_data.get("leadership")  # bot/leader.py
        body = {
            "status": "ok" if healthy else "unhealthy",
            "role": leadership.role if leadership is not None else "leader",
            "checks": checks,
            # PostgreSQL: standbys connected at the last heartbeat (who could take over).
            "standbys": leadership.standbys if leadership is not None else None,
            "updates_waiting_for_database": self.guard.waiting if self.guard else 0,
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def _check_database(self) -> dict[str, Any]:
        started = time.perf_counter()
        if await self.probe.ping():
            return {"ok": True, "detail": f"SELECT 1 in {_ms(started)} ms"}
        return {"ok": False, "detail": f"unreachable: {self.probe.last_error}"}

    async def _check_bot_api(self) -> dict[str, Any]:
        last = self._bot_api_ok_at
        if last is not None and time.monotonic() - last < BOT_API_TTL:
            return {"ok": True, "detail": f"getMe answered {time.monotonic() - last:.0f} s ago"}
        if self._get_me is None or self._get_me.done():
            self._get_me = background(self.application.bot.get_me())
        inflight = self._get_me
        started = time.perf_counter()
        try:
            async with asyncio.timeout(BOT_API_TIMEOUT):
                await asyncio.shield(inflight)
        except TimeoutError:
            return {"ok": False, "detail": f"getMe: no answer within {BOT_API_TIMEOUT:g} s"}
        except TelegramError as exc:
            return {"ok": False, "detail": f"getMe: {exc.__class__.__name__}: {exc.message}"}
        except Exception as exc:
            return {"ok": False, "detail": f"getMe: {exc.__class__.__name__}"}
        self._bot_api_ok_at = time.monotonic()
        return {"ok": True, "detail": f"getMe in {_ms(started)} ms"}

    def _check_scheduler(self) -> dict[str, Any]:
        job_queue = self.application.job_queue
        if job_queue is None:
            return {"ok": False, "detail": "no job queue"}
        scheduler = job_queue.scheduler
        if not scheduler.running:
            return {"ok": False, "detail": "not running"}
        return {"ok": True, "detail": f"running, {len(scheduler.get_jobs())} jobs"}

    async def _check_outbox(self, database_ok: bool) -> dict[str, Any]:
        if not database_ok:
            return {"ok": None, "detail": "not checked: the database is unreachable"}
        try:
            async with asyncio.timeout(OUTBOX_TIMEOUT):
                state = await self.db.run(monitoring.outbox_state)
        except Exception as exc:
            return {"ok": None, "detail": f"not checked: {exc.__class__.__name__}"}
        now = clock.now()
        stuck = [monitoring.priority_name(p) for p in state.stuck(now)]
        depth = {monitoring.priority_name(p): n for p, n in sorted(state.depth.items())}
        if stuck:
            waited = state.overdue_seconds(now)
            worst = max(waited.values())
            detail = f"due messages waiting too long ({', '.join(stuck)}; oldest {worst:.0f} s)"
        else:
            detail = "no due message waiting too long"
        return {"ok": not stuck, "detail": detail, "stuck": stuck, "depth": depth}


async def listen(
    app: web.Application, host: str, port: int, what: str
) -> tuple[web.AppRunner, int] | None:
    """Serve `app` on host:port: the runner and the port actually bound (port 0: any free
    port), or None (logged) when it cannot bind."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("%s: cannot listen on %s:%s (%s)", what, host, port, exc)
        await runner.cleanup()
        return None
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# ------------------------------------------------------------------- with the bot


async def start(application: Application, server: HealthServer, host: str, port: int) -> None:
    """Serve until the Application stops (see the module docstring)."""
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

    from scheduler import jobs

    if not await server.start(host, port):
        return

    def on_shutdown(_event: object) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: post_shutdown stops it
            asyncio.get_running_loop().create_task(server.stop())

    jobs.scheduler_of(application).add_listener(on_shutdown, EVENT_SCHEDULER_SHUTDOWN)
