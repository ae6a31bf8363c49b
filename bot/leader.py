"""Active-passive high availability on PostgreSQL: one leader, warm standbys.

Any number of `cadre-bot run` processes may share one PostgreSQL database. Exactly one is
the leader: it holds a session-level advisory lock (`pg_try_advisory_lock(LOCK_KEY)`) on a
connection of its own, opened with TCP keepalives and `tcp_user_timeout` on both ends, so
that PostgreSQL frees the lock within seconds of the leader's host dying. Only the leader
fetches updates (or takes webhook posts), runs the delivery and channel workers and the
scheduler; the others are standbys (docs/deploy.md, "High availability").

    heartbeat   The leader renews `ha_leader.heartbeat_at` every CADRE_HA_LEASE / 6 seconds
                on the lock connection (a thread of its own: a busy event loop does not
                delay it). It may send only while its last heartbeat *started* less than
                CADRE_HA_LEASE / 3 ago (`may_send`): the delivery and channel workers check
                before each send, and every Bot API request of the Application waits for it
                (bot.request gate), getUpdates included.
    takeover    A standby tries the lock every second. A leader that holds the lock but no
                longer heartbeats (paused with SIGSTOP, hung) for CADRE_HA_LEASE seconds has
                its lock connection terminated by the standby. Having the lock, the new
                leader waits until the old one's last heartbeat is CADRE_HA_LEASE / 3 old
                (so the old one has stopped sending by its own clock), writes the
                `ha_leader` row, takes back the outbox rows the old one had leased, and
                starts exactly as a cold start does.
    losing it   A leader whose lock connection fails (PostgreSQL restarted, network cut,
                the connection terminated) stops sending at once (`may_send` turns false)
                and exits with EXIT_LEADERSHIP_LOST (3) for its supervisor (systemd
                Restart=always) to start it again, as a standby. Exception: when no standby
                was connected at its last heartbeat (a single process), it goes on answering
                people as in any database outage (bot/outage.py), sends nothing from the
                outbox, takes the lock again when the database is back and carries on if
                nobody else led meanwhile; otherwise it exits with code 3 too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from services.outbox.leases import process_node, reclaim_all

log = logging.getLogger(__name__)

LOCK_KEY = 0x43414452  # "CADR": the leadership lock (session level)
EXIT_LEADERSHIP_LOST = 3
STANDBY_NAME = "cadre-bot standby"
LEADER_NAME = "cadre-bot leader"

_ROW = "SELECT node, host, pid, backend_pid, term, since, heartbeat_at FROM ha_leader WHERE id = 1"


class Leadership:
    """This process's side of the election. Blocking database work runs in threads."""

    def __init__(self, engine: Engine, lease: float) -> None:
        self.engine = engine
        self.lease = float(lease)
        self.interval = max(0.05, self.lease / 6)  # heartbeat
        self.validity = self.lease / 3  # may send this long after a heartbeat started
        self.poll = min(1.0, self.lease / 3)  # a standby tries the lock this often
        self.node = process_node()
        self.host = socket.gethostname()
        self.role = "standby"
        self.term = 0
        self.since: datetime | None = None
        self.previous: dict[str, Any] | None = None  # the leader this one replaced
        self.standbys = 0  # standbys connected at the last heartbeat
        self._outage = False  # lock lost, alone, and the database unreachable
        self._valid_until = 0.0
        self._conn: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.exit: Callable[[int], None] = os._exit  # tests may replace it

    # --- what the rest of the process asks ------------------------------------------

    def may_send(self) -> bool:
        """Whether this process may send now: leader, with a recent heartbeat."""
        return self.role == "leader" and time.monotonic() < self._valid_until

    def may_talk(self) -> bool:
        """Whether the Application may call the Bot API (fetch updates, reply): a leader
        with a recent heartbeat, or a single process whose lock connection broke in a
        database outage (nobody can take over from it; it answers as in any outage)."""
        return self.may_send() or (self.role == "leader" and self.standbys == 0 and self._outage)

    async def gate(self) -> None:
        """Await before a Bot API request: returns once talking is allowed (a leader that
        lost the lock to another process exits meanwhile)."""
        # Polled: the heartbeat's validity runs out with time, not with an event.
        while not self.may_talk():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def fence(self) -> None:
        """Await before an outbox send (see `may_send`)."""
        while not self.may_send():  # noqa: ASYNC110  (as in `gate`)
            await asyncio.sleep(0.05)

    # --- the lock connection --------------------------------------------------------

    def _connect(self, name: str) -> Any:
        """A connection of its own (never the pool's), with keepalives on both ends: the
        client notices a dead server, the server a dead client, within seconds."""
        import psycopg

        url = self.engine.url
        cargs, cparams = self.engine.dialect.create_connect_args(url)
        idle = max(1, round(self.lease / 3))
        user_timeout = max(500, int(self.lease * 500))
        server = (
            f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval=1 "
            f"-c tcp_keepalives_count=3 -c tcp_user_timeout={user_timeout} "
            f"-c statement_timeout={max(1000, int(self.lease * 1000))}"
        )
        params = dict(cparams)
        params.update(
            autocommit=True,
            application_name=name,
            connect_timeout=max(2, round(self.lease)),
            keepalives=1,
            keepalives_idle=idle,
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=user_timeout,
            options=(str(params.get("options") or "") + " " + server).strip(),
        )
        return psycopg.connect(*cargs, **params)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    # --- standby ----------------------------------------------------------------------

    async def acquire(self, stopping: Callable[[], bool] = lambda: False) -> bool:
        """Wait as a standby until this process holds the lock (True), or `stopping()`."""
        while not stopping():
            try:
                if await asyncio.to_thread(self._try_acquire):
                    return True
            except Exception as exc:
                log.warning("standby: the database is not reachable (%s); trying again", exc)
                self._close()
            await asyncio.sleep(self.poll)
        self._close()
        return False

    def _try_acquire(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(STANDBY_NAME)
        conn = self._conn
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            self._end_stuck_leader(conn)
            return False
        row = conn.execute(
            _ROW.replace(
                "FROM",
                ", EXTRACT(EPOCH FROM heartbeat_at + make_interval(secs => %s) "
                "- clock_timestamp()) FROM",
            ),
            (self.validity,),
        ).fetchone()
        previous = None
        if row is not None and row[0] != self.node:
            keys = ("node", "host", "pid", "backend_pid", "term", "since", "heartbeat_at")
            previous = dict(zip(keys, row[:7], strict=True))
            wait = float(row[7] or 0)
            if wait > 0:  # the old leader may send until then, by its own clock
                log.info("took the lock; waiting %.1f s for the old leader to stop", wait)
                time.sleep(min(wait, self.validity) + 0.05)
        started = time.monotonic()
        term, since = conn.execute(
            "INSERT INTO ha_leader (id, node, host, pid, backend_pid, term, since, heartbeat_at) "
            "VALUES (1, %s, %s, %s, pg_backend_pid(), 1, clock_timestamp(), clock_timestamp()) "
            "ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node, host = EXCLUDED.host, "
            "pid = EXCLUDED.pid, backend_pid = EXCLUDED.backend_pid, "
            "term = ha_leader.term + 1, since = EXCLUDED.since, "
            "heartbeat_at = EXCLUDED.heartbeat_at RETURNING term, since",
            (self.node, self.host[:255], os.getpid()),
        ).fetchone()
        conn.execute(f"SET application_name = '{LEADER_NAME}'")
        self._valid_until = started + self.validity
        self.term, self.since, self.previous = int(term), since, previous
        self.role = "leader"
        return True

    def _end_stuck_leader(self, conn: Any) -> None:
        """The lock is held. If its holder has not renewed its heartbeat for a whole lease
        (paused, hung), end its lock connection: the lock is then free for the next try.
        Only the backend that holds the lock *and* is named by the row is ended."""
        row = conn.execute(
            "SELECT backend_pid, node, EXTRACT(EPOCH FROM clock_timestamp() - heartbeat_at) "
            "FROM ha_leader WHERE id = 1"
        ).fetchone()
        if row is None or float(row[2]) <= self.lease:
            return
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = 0 AND objid = %s AND objsubid = 1 AND granted AND pid = %s",
            (LOCK_KEY, row[0]),
        ).fetchone()
        if ended is not None:
            log.warning(
                "the leader %s has not renewed its heartbeat for %.1f s: ended its lock "
                "connection so that a standby takes over",
                row[1],
                float(row[2]),
            )

    # --- leader ---------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._heartbeats, name="ha-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """At a clean stop: end the heartbeat and free the lock (closing the connection)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval * 4 + 1)
        was_leader, self.role = self.role == "leader", "standby"
        self._valid_until = 0.0
        if was_leader and self._conn is not None and not self._conn.closed:
            try:  # stopped cleanly, nothing in flight: a standby need not wait for it
                self._conn.execute(
                    "UPDATE ha_leader SET heartbeat_at = clock_timestamp() - interval '1 hour' "
                    "WHERE id = 1 AND node = %s",
                    (self.node,),
                )
            except Exception:
                pass
        self._close()

    def _heartbeats(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                row = self._conn.execute(
                    "UPDATE ha_leader SET heartbeat_at = clock_timestamp() "
                    "WHERE id = 1 AND node = %s AND backend_pid = pg_backend_pid() RETURNING "
                    "(SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                    "AND datname = current_database())",
                    (self.node, STANDBY_NAME),
                ).fetchone()
                if row is None:
                    raise LookupError("the leader row names another process")
            except Exception as exc:
                if self._stop.is_set():
                    return
                self._lost(exc)
                continue
            self._valid_until = started + self.validity
            self.standbys = int(row[0])
            self._stop.wait(max(0.0, started + self.interval - time.monotonic()))

    def _lost(self, error: BaseException) -> None:
        """The lock connection failed: stop sending now; exit for the supervisor, unless
        this is the only process (see the module docstring)."""
        self._valid_until = 0.0
        self._close()
        line = (str(error).strip().splitlines() or [""])[0][:160]
        reason = f"{error.__class__.__name__}: {line}"
        if self.standbys > 0:
            self._exit(f"lost the leadership lock ({reason})")
        log.error(
            "lost the leadership lock (%s); no standby is connected: answering as in a "
            "database outage, sending nothing from the outbox until the lock is back",
            reason,
        )
        first = True
        while not self._stop.is_set():
            if not first:
                self._stop.wait(self.poll)
            first = False
            try:
                conn = self._connect(LEADER_NAME)
            except Exception:
                # The database is unreachable: nobody can take over meanwhile, so answer
                # people as in any outage (a standby started meanwhile is noticed below).
                self._outage = True
                continue
            self._outage = False  # reachable: nothing goes out until the lock is ours
            try:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]
                row = conn.execute(_ROW).fetchone()
                if not got and row is not None and row[0] == self.node:
                    # Our own old lock connection, not yet noticed dead by the server.
                    conn.execute(
                        "SELECT pg_terminate_backend(%s) WHERE %s <> pg_backend_pid()",
                        (row[3], row[3]),
                    )
                    conn.close()
                    continue
                if not got or row is None or row[0] != self.node:
                    conn.close()
                    self._exit("another process leads now")
                started = time.monotonic()
                conn.execute(
                    "UPDATE ha_leader SET backend_pid = pg_backend_pid(), "
                    "heartbeat_at = clock_timestamp() WHERE id = 1 AND node = %s",
                    (self.node,),
                )
            except Exception:
                conn.close()
                continue
            self._conn = conn
            self._valid_until = started + self.validity
            log.warning("took the leadership lock again: sending resumes")
            return

    def _exit(self, why: str) -> None:
        log.critical(
            "%s: stopping at once and exiting with code %d; the supervisor starts this "
            "process again as a standby",
            why,
            EXIT_LEADERSHIP_LOST,
        )
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:
                pass
        self.exit(EXIT_LEADERSHIP_LOST)


def leader_row(engine: Engine) -> dict[str, Any] | None:
    """The `ha_leader` row with the age of its heartbeat (seconds), for `cadre-bot status`."""
    from sqlalchemy import text

    with engine.connect() as connection:
        row = connection.execute(
            text(
                _ROW.replace(
                    "FROM",
                    ", EXTRACT(EPOCH FROM clock_timestamp() - heartbeat_at) AS age FROM",
                )
            )
        ).first()
    return dict(row._mapping) if row is not None else None


# ------------------------------------------------------------------- with the bot


async def stand_by(
    application: Any,
    leadership: Leadership,
    settings: Any,
    webhook: bool,
    stopping: asyncio.Event,
) -> bool:
    """The standby phase of `cadre-bot run`: the schema is checked (build_database did),
    the knowledge index is built, /healthz answers ``"role": "standby"`` and /metrics
    ``cadre_leader 0``, and in webhook mode the webhook address answers 503 (Telegram
    retries; a load balancer routes to the leader), as does the board's (the Mini App
    follows the leader). Returns True once this process holds the lock, False when
    `stopping` is set first (SIGTERM, SIGINT: bot/cli.py), the lock then given back."""
    from aiohttp import web

    from bot.http import listen
    from handlers import ask
    from handlers.context import deps_of

    metrics = application.bot_data["metrics"]
    metrics.leader.set(0)
    db = deps_of(application).db
    runners: list[Any] = []

    async def healthz(_request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(3):
                leader = await asyncio.to_thread(describe_leader, db.engine)
        except Exception as exc:
            body = {
                "status": "unhealthy",
                "role": "standby",
                "checks": {"database": {"ok": False, "detail": f"unreachable: {exc}"[:200]}},
            }
            return web.json_response(body, status=503)
        body = {
            "status": "ok",
            "role": "standby",
            "checks": {"database": {"ok": True, "detail": "reachable"}},
            "leader": leader,
        }
        return web.json_response(body)

    async def metrics_endpoint(_request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def not_leader(_request: web.Request) -> web.Response:
        return web.Response(status=503, text="standby: this process is not the leader\n")

    if settings.http_address is not None:
        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", metrics_endpoint)
        served = await listen(app, *settings.http_address, "health and metrics server (standby)")
        if served is not None:
            runners.append(served[0])
    if webhook:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", not_leader)
        served = await listen(app, *settings.webhook_address, "webhook (standby: 503)")
        if served is not None:
            runners.append(served[0])
    if settings.webapp_url is not None:  # the Mini App board is served by the leader
        from webapp.server import standby_app

        served = await listen(standby_app(settings), *settings.webapp_address, "board (standby)")
        if served is not None:
            runners.append(served[0])
    warm = asyncio.create_task(ask.warm_up(application), name="kb-warm-up")
    log.info("standby: waiting for the leadership (only the leader fetches and sends)")
    try:
        if not await leadership.acquire(stopping.is_set):
            return False
        if stopping.is_set():  # asked to stop while taking the lock: give it back
            leadership.stop()
            return False
        return True
    finally:
        for runner in runners:
            await runner.cleanup()
        if not warm.done():  # stopping, or leading: take_over has the index built anew
            warm.cancel()


async def take_over(application: Any, leadership: Leadership) -> None:
    """This process holds the lock: heartbeat, fence every Bot API request and send, take
    back the outbox rows of the leader it replaced, and record the takeover (audit log,
    metrics). The cold start (`run_polling` / `run_webhook`: persistence loaded, timers
    rebuilt from the database, webhook set) follows."""
    from bot.request import set_gate
    from handlers import ask
    from handlers.context import deps_of

    leadership.start_heartbeat()
    set_gate(leadership.gate)
    ask.forget_knowledge(application)  # built while standing by: post_init builds it again
    deps = deps_of(application)
    if deps.delivery is not None:  # bot.delivery.Delivery: fences each send
        deps.delivery.leadership = leadership  # type: ignore[attr-defined]
    application.bot_data["leadership"] = leadership  # the channel worker, /healthz, the inbox
    reclaimed = await deps.db.run(_record_takeover, leadership)
    metrics = application.bot_data["metrics"]
    metrics.leader.set(1)
    metrics.takeovers.inc()
    metrics.term.set(leadership.term)
    previous = leadership.previous
    log.warning(
        "this process leads now (term %d%s); %d message(s) left being sent are sent again",
        leadership.term,
        f", after {previous['host']} pid {previous['pid']}" if previous else "",
        reclaimed,
    )


def _record_takeover(session: Any, leadership: Leadership) -> int:
    from services import audit

    previous = leadership.previous or {}
    reclaimed = reclaim_all(session)  # only this process may send from now on
    audit.record(
        session,
        "ha.takeover",
        actor=None,
        host=leadership.host,
        pid=os.getpid(),
        term=leadership.term,
        previous_host=previous.get("host"),
        previous_pid=previous.get("pid"),
        reclaimed=reclaimed,
    )
    return reclaimed


def _describe(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "host": row["host"],
        "pid": row["pid"],
        "since": row["since"].isoformat() if row["since"] else None,
        "term": row["term"],
        "heartbeat_age_seconds": round(float(row["age"]), 1),
    }


def describe_leader(engine: Engine) -> dict[str, Any] | None:
    """The leader as /healthz and `cadre-bot status` show it (None: nobody led yet)."""
    return _describe(leader_row(engine))
