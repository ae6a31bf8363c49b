"""What the operators watch, read from the database: outbox depth, open alerts, overdue
care. Used by /metrics and /healthz (bot/http.py); plain queries, no telegram imports.

Every function is cheap on a large database: counts and minimums over indexed columns,
except `overdue_care`, which evaluates every person's schedule and is therefore cached by
its caller (bot/metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from models import Alert, AlertStatus, OutboxMessage, OutboxStatus, Priority
from services import clock
from services.care import areas, rules

WAITING = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
# A message due this long ago and still not sent means the worker is not getting through
# its queue. Emergency and urgent messages never wait behind bulk ones, so two minutes is
# already abnormal; a large broadcast legitimately keeps bulk messages waiting for up to an
# hour (100,000 recipients at 30 messages per second take 55 minutes).
STUCK_AFTER = {
    int(Priority.EMERGENCY): timedelta(minutes=2),
    int(Priority.URGENT): timedelta(minutes=2),
    int(Priority.REMINDER): timedelta(hours=1),
    int(Priority.BROADCAST): timedelta(hours=1),
}


def priority_name(priority: int) -> str:
    try:
        return Priority(priority).name.lower()
    except ValueError:
        return str(priority)


@dataclass
class OutboxState:
    """Messages waiting (pending or being sent) per priority, and per priority the time
    the oldest of them has been due."""

    depth: dict[int, int] = field(default_factory=dict)
    oldest_due: dict[int, datetime] = field(default_factory=dict)

    def overdue_seconds(self, now: datetime) -> dict[int, float]:
        return {p: max(0.0, (now - at).total_seconds()) for p, at in self.oldest_due.items()}

    def stuck(self, now: datetime) -> list[int]:
        """Priorities whose oldest due message has waited longer than `STUCK_AFTER`."""
        return sorted(
            priority
            for priority, waited in self.overdue_seconds(now).items()
            if waited > STUCK_AFTER.get(priority, timedelta(hours=1)).total_seconds()
        )


def outbox_state(session: Session) -> OutboxState:
    """One grouped query over the due index (status, priority, next_attempt_at)."""
    rows = session.exec(
        select(
            OutboxMessage.priority,
            func.count(),
            func.min(OutboxMessage.next_attempt_at),
        )
        .where(col(OutboxMessage.status).in_(WAITING))
        .group_by(col(OutboxMessage.priority))
    ).all()
    now = clock.now()
    state = OutboxState()
    for priority, count, oldest in rows:
        state.depth[int(priority)] = int(count)
        if oldest is not None and _aware(oldest) <= now:
            state.oldest_due[int(priority)] = _aware(oldest)
    return state


@dataclass
class AlertState:
    """Alerts in progress by status ("open": nobody has acknowledged it yet, or
    "acknowledged") and cause, and when the oldest unacknowledged one was raised."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_open_at: datetime | None = None

    def unacknowledged_seconds(self, now: datetime) -> float:
        if self.oldest_open_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_open_at).total_seconds())


def alert_state(session: Session) -> AlertState:
    in_progress = (AlertStatus.OPEN.value, AlertStatus.ACKNOWLEDGED.value)
    rows = session.exec(
        select(Alert.status, Alert.cause, func.count(), func.min(Alert.created_at))
        .where(col(Alert.status).in_(in_progress))
        .group_by(Alert.status, Alert.cause)
    ).all()
    state = AlertState()
    for status, cause, count, oldest in rows:
        state.counts[(str(status), str(cause))] = int(count)
        if str(status) == AlertStatus.OPEN.value and oldest is not None:
            oldest = _aware(oldest)
            if state.oldest_open_at is None or oldest < state.oldest_open_at:
                state.oldest_open_at = oldest
    return state


def overdue_care(session: Session, config: rules.CareConfig) -> dict[str, int]:
    """Rests and examinations overdue today, by kind (the same rule as /overdue)."""
    return {str(kind): count for kind, count in areas.overdue_by_kind(session, config).items()}


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
