"""Prometheus metrics of one Application (served on /metrics by bot/http.py).

Each Application has its own `CollectorRegistry` (never prometheus_client's global one),
so two bots in one process - the tests - never mix their figures.

In-process counters are updated where things happen: every handler callback is timed
(`instrument_handlers`, called when the handlers are registered), and the delivery worker
counts each recorded outcome (`count_send`). Figures that live in the database (outbox
depth, open alerts, overdue care) are read at scrape time by `DatabaseGauges`, in a worker
thread with a timeout: a slow or stopped database leaves them out of the scrape (and sets
``cadre_database_up`` to 0) rather than making /metrics hang.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from telegram.ext import Application, ApplicationHandlerStop, BaseHandler, ConversationHandler

from bot.outage import OutageGuard, background, database_unavailable
from models import AlertStatus, CareKind, Priority
from services import clock, monitoring
from services.care.rules import CareConfig
from services.db import Database

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 3.0  # seconds the database may take to answer the gauges' queries
OVERDUE_TTL = 300.0  # seconds an overdue-care count is reused (it reads every schedule)
ALERT_CAUSES = ("sos", "checkin_red")
# Handler latencies: a reply is expected in well under a second; a slow database shows.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The registry of one Application and its in-process metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "cadre_updates",
            "Updates handled, by handler callback and outcome "
            "(ok, error, or db_unavailable: deferred until the database is back).",
            ["handler", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "cadre_update_handler_seconds",
            "Time a handler callback took to handle an update, by handler.",
            ["handler"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sends = Counter(
            "cadre_sends",
            "Outbox sends by outcome (sent, retry, failed, cancelled) and cause "
            "(the outcome code: sent, blocked, not_started, retry, gave_up...).",
            ["outcome", "cause"],
            registry=self.registry,
        )
        # High availability (bot/leader.py): a single process on SQLite is its own leader.
        self.leader = Gauge(
            "cadre_leader",
            "1 if this process is the leader (fetches updates, sends, runs the jobs), "
            "0 on a standby.",
            registry=self.registry,
        )
        self.leader.set(1)
        self.takeovers = Counter(
            "cadre_takeovers",
            "Times this process took the leadership (PostgreSQL high availability).",
            registry=self.registry,
        )
        self.term = Gauge(
            "cadre_leader_term",
            "Takeovers on this database since high availability began (the leader's term).",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)

    def observe_update(self, handler: str, outcome: str, seconds: float) -> None:
        self.updates.labels(handler=handler, outcome=outcome).inc()
        self.update_seconds.labels(handler=handler).observe(seconds)

    def count_send(self, status: str, code: str | None) -> None:
        """An outcome the delivery worker recorded. A part of a long text sent, or a message
        put back at shutdown, is not an outcome and is not counted."""
        if code is None:
            return
        outcome = "retry" if status == "pending" else str(status)
        self.sends.labels(outcome=outcome, cause=str(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


# ------------------------------------------------------------------ handler timing


def handler_name(callback: Any) -> str:
    """`sos.on_sos`, `app.flush_after_update`: the module (without the package) and the
    function, which stays stable across decorators that use functools.wraps."""
    target = callback.func if isinstance(callback, functools.partial) else callback
    module = getattr(target, "__module__", "") or ""
    name = getattr(target, "__qualname__", None) or type(target).__name__
    return f"{module.rsplit('.', 1)[-1]}.{name}" if module else name


def _handlers_of(handlers: Iterable[BaseHandler[Any, Any, Any]]) -> Iterator[BaseHandler]:
    for handler in handlers:
        if isinstance(handler, ConversationHandler):
            yield from _handlers_of(handler.entry_points)
            for state_handlers in handler.states.values():
                yield from _handlers_of(state_handlers)
            yield from _handlers_of(handler.fallbacks)
        else:
            yield handler


def instrument_handlers(application: Application, metrics: Metrics) -> int:
    """Time every handler callback registered so far (conversations' inner handlers too).
    Returns how many callbacks were wrapped."""
    wrapped = 0
    seen: set[int] = set()
    for group in application.handlers.values():
        for handler in _handlers_of(group):
            if id(handler) in seen or getattr(handler.callback, "_cadre_timed", False):
                continue
            seen.add(id(handler))
            handler.callback = _timed(handler.callback, handler_name(handler.callback), metrics)
            wrapped += 1
    return wrapped


def _timed(
    callback: Callable[..., Awaitable[Any]], name: str, metrics: Metrics
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(callback)
    async def timed(update: object, context: Any) -> Any:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await callback(update, context)
        except ApplicationHandlerStop:
            raise
        except Exception as exc:
            outcome = "db_unavailable" if database_unavailable(exc) else "error"
            raise
        finally:
            metrics.observe_update(name, outcome, time.perf_counter() - started)

    timed._cadre_timed = True  # type: ignore[attr-defined]
    return timed


# --------------------------------------------------------- figures from the database


@dataclass
class Snapshot:
    at: datetime
    outbox: monitoring.OutboxState
    alerts: monitoring.AlertState
    overdue: dict[str, int] | None


class DatabaseGauges(Collector):
    """A collector whose figures are read from the database at each scrape (`refresh`,
    awaited by the /metrics handler before rendering). One read at a time: a scrape that
    arrives while the previous read still hangs reports the database as down."""

    def __init__(
        self,
        db: Database,
        care_config: CareConfig,
        guard: OutageGuard | None = None,
        timeout: float = SCRAPE_TIMEOUT,
    ) -> None:
        self.db = db
        self.care_config = care_config
        self.guard = guard
        self.timeout = timeout
        self.snapshot: Snapshot | None = None
        self._inflight: asyncio.Future[Snapshot] | None = None
        self._overdue: dict[str, int] | None = None
        self._overdue_at = -OVERDUE_TTL
        self._overdue_task: asyncio.Future[dict[str, int]] | None = None

    def _read(self) -> Snapshot:
        with self.db.session() as session:
            outbox = monitoring.outbox_state(session)
            alerts = monitoring.alert_state(session)
        return Snapshot(clock.now(), outbox, alerts, self._overdue)

    def warm_up(self) -> None:
        """Start the first overdue count now, so that the first scrapes have it."""
        self._recount_overdue()

    def _recount_overdue(self) -> None:
        """Overdue care reads every schedule (seconds with 100,000 people): it is recounted
        in the background at most every OVERDUE_TTL seconds, never within a scrape's time."""
        if self._overdue_task is not None and not self._overdue_task.done():
            return
        if time.monotonic() - self._overdue_at < OVERDUE_TTL:
            return
        self._overdue_at = time.monotonic()
        task = asyncio.ensure_future(
            asyncio.to_thread(self.db.call, monitoring.overdue_care, self.care_config)
        )
        task.add_done_callback(self._overdue_counted)
        self._overdue_task = task

    def _overdue_counted(self, task: asyncio.Future[dict[str, int]]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            self._overdue = task.result()
        elif not database_unavailable(error):
            log.error("metrics: counting overdue care failed", exc_info=error)

    async def refresh(self) -> bool:
        """Read the figures now; False (and no figures) if the database did not answer in
        time."""
        if self._inflight is None or self._inflight.done():
            self._inflight = background(asyncio.to_thread(self._read))
        inflight = self._inflight
        try:
            async with asyncio.timeout(self.timeout):
                self.snapshot = await asyncio.shield(inflight)
        except Exception as exc:
            if not database_unavailable(exc) and not isinstance(exc, TimeoutError):
                log.exception("metrics: reading the database failed")
            self.snapshot = None
            return False
        self._recount_overdue()
        return True

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "cadre_database_up",
            "1 if the database answered the last scrape's queries in time, else 0 "
            "(the database-derived metrics are then left out).",
            value=1.0 if self.snapshot is not None else 0.0,
        )
        yield up
        if self.guard is not None:
            yield GaugeMetricFamily(
                "cadre_updates_waiting_for_database",
                "Updates whose handling waits for the database to be reachable again.",
                value=float(self.guard.waiting),
            )
            yield CounterMetricFamily(
                "cadre_updates_deferred",
                "Times an update was deferred because the database was unreachable.",
                value=float(self.guard.deferred_total),
            )
        snapshot = self.snapshot
        if snapshot is None:
            return
        depth = GaugeMetricFamily(
            "cadre_outbox_depth",
            "Outbox messages waiting to be sent (pending or being sent), by priority.",
            labels=["priority"],
        )
        overdue = GaugeMetricFamily(
            "cadre_outbox_oldest_due_seconds",
            "How long the oldest due, unsent outbox message has been due, by priority.",
            labels=["priority"],
        )
        waited = snapshot.outbox.overdue_seconds(snapshot.at)
        for priority in Priority:
            name = priority.name.lower()
            depth.add_metric([name], float(snapshot.outbox.depth.get(int(priority), 0)))
            overdue.add_metric([name], waited.get(int(priority), 0.0))
        yield depth
        yield overdue
        for status, metric, text in (
            (AlertStatus.OPEN, "cadre_alerts_open", "Alerts raised that nobody acknowledged yet"),
            (
                AlertStatus.ACKNOWLEDGED,
                "cadre_alerts_acknowledged",
                "Alerts acknowledged and not resolved yet",
            ),
        ):
            family = GaugeMetricFamily(
                metric, f"{text}, by cause (sos, checkin_red).", labels=["cause"]
            )
            causes = set(ALERT_CAUSES) | {c for s, c in snapshot.alerts.counts if s == status}
            for cause in sorted(causes):
                family.add_metric([cause], float(snapshot.alerts.counts.get((status, cause), 0)))
            yield family
        yield GaugeMetricFamily(
            "cadre_alert_oldest_unacknowledged_seconds",
            "Seconds since the oldest alert nobody has acknowledged was raised (0: none).",
            value=snapshot.alerts.unacknowledged_seconds(snapshot.at),
        )
        if snapshot.overdue is not None:
            family = GaugeMetricFamily(
                "cadre_care_overdue",
                "Low-altitude rests and physical examinations overdue today, by kind.",
                labels=["kind"],
            )
            for kind in CareKind:
                family.add_metric([str(kind)], float(snapshot.overdue.get(str(kind), 0)))
            yield family
