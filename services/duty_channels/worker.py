"""Duty channels: the worker's side (bot/duty_channels.py sends): claiming due rows,
where each goes (read when sent, never stored in the row), recording outcomes, and telling
the admins when a channel keeps refusing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from models import (
    Alert,
    AlertStatus,
    Channel,
    DutyGroup,
    OutboxMessage,
    OutboxStatus,
    OutcomeCode,
    Person,
    Priority,
    Role,
    Status,
)
from models.outbox import CHANNEL_ROWS
from services import clock, outbox, state
from services.duty_channels.groups import group_label
from services.i18n import t
from services.outbox.claim import mark_sending
from services.outbox.leases import reclaim
from services.outbox.outcomes import Outcome, record_outcomes

_FAILING = "channel_failing"  # bot_state kind: a channel refusing for good (key "sms")


TEST_SOURCE = "dgtest:"  # source of test messages: dgtest:<admin or officer id>


def is_test(message: ChannelMessage) -> bool:
    return (message.source or "").startswith(TEST_SOURCE)


# ---------------------------------------------------------------------------- the worker's side


@dataclass
class ChannelMessage:
    """A message the channel worker has taken (status ``sending``)."""

    id: int
    channel: str
    target: str | None
    priority: int
    payload: dict[str, Any]
    attempts: int
    source: str | None
    person_id: int | None

    @property
    def endpoint(self) -> str:
        """Who limits the rate: one duty group's robot, or the SMS gateway."""
        return "sms" if self.channel == Channel.SMS else str(self.target)


_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


def recover_interrupted(session: Session, owner: str | None = None) -> int:
    """Channel messages left ``sending`` whose lease expired (their worker died or hangs)
    are sent again; `owner`'s own rows are left alone (see services.outbox.leases.reclaim)."""
    return reclaim(session, "other", owner=owner, attempt=False)


def claim_due(
    session: Session, limit: int, *, owner: str | None = None, lease: float | None = None
) -> list[ChannelMessage]:
    """Take up to `limit` due channel messages, most urgent first (status ``sending``,
    leased to `owner` for `lease` seconds)."""
    if limit <= 0:
        return []
    due = select(_TABLE.c.id).where(
        text(CHANNEL_ROWS),  # literally the partial index's condition, so that it is used
        _TABLE.c.status == OutboxStatus.PENDING.value,
        _TABLE.c.next_attempt_at <= clock.now(),
    )
    # Usually there is nothing: find out with a read, so that this once-a-second check
    # never takes SQLite's write lock from the Telegram worker.
    if session.execute(due.limit(1)).first() is None:
        return []
    chosen = due.order_by(_TABLE.c.priority, _TABLE.c.next_attempt_at, _TABLE.c.id).limit(limit)
    rows = mark_sending(
        session,
        chosen,
        _TABLE.c.id,
        _TABLE.c.channel,
        _TABLE.c.target,
        _TABLE.c.priority,
        _TABLE.c.payload,
        _TABLE.c.attempts,
        _TABLE.c.source,
        _TABLE.c.person_id,
        owner=owner,
        lease=lease,
    )
    claimed = [ChannelMessage(*row) for row in rows]
    claimed.sort(key=lambda m: (m.priority, m.id))
    return claimed


@dataclass
class Destination:
    """Where a claimed message goes, read from the stored settings when it is sent."""

    channel: str
    url: str | None = None  # the robot's webhook (a credential)
    secret: str | None = None  # DingTalk's signing secret
    phone: str | None = None  # an SMS number
    group_id: int | None = None
    problem: str | None = None  # why it cannot be sent (removed, SMS switched off...)
    cancelled: str | None = None  # why it need not be sent any more


def destination(session: Session, message: ChannelMessage, sms_enabled: bool) -> Destination:
    kind, _, raw_id = (message.target or "").partition(":")
    found = Destination(message.channel)
    alert_id = (message.payload or {}).get("alert")
    if alert_id:
        alert = session.get(Alert, int(alert_id))
        if alert is not None and alert.status != AlertStatus.OPEN:
            found.cancelled = f"alert #{alert_id} was {alert.status} before this was sent"
            return found
    if kind == "duty_group" and raw_id.isdigit():
        group = session.get(DutyGroup, int(raw_id))
        if group is None or group.channel != message.channel:
            found.problem = "the duty group was removed"
            return found
        found.url, found.secret, found.group_id = group.webhook_url, group.secret, group.id
    elif kind == "person" and raw_id.isdigit():
        person = session.get(Person, int(raw_id))
        if person is None or not person.sms_phone:
            found.problem = "no SMS number any more"
        elif not sms_enabled:
            found.problem = "the SMS gateway is not configured"
        else:
            found.phone = person.sms_phone
    else:
        found.problem = f"unknown target {message.target!r}"
    return found


@dataclass
class Result:
    """What became of one attempt at a channel message."""

    message: ChannelMessage
    status: OutboxStatus
    code: OutcomeCode
    detail: str | None = None
    retry_at: datetime | None = None
    group_id: int | None = None
    at: datetime = field(default_factory=clock.now)


def record(session: Session, results: list[Result], *, owner: str | None = None) -> None:
    """Write outcomes like Telegram's (services.outbox.outcomes.record_outcomes: the alert
    timeline and its hooks; with `owner`, only for rows it still holds), keep each duty
    group's health, and tell the admins once when a channel starts refusing for good."""
    record_outcomes(
        session,
        [
            Outcome(
                id=r.message.id,
                chat_id=0,
                status=r.status,
                code=r.code,
                detail=r.detail,
                person_id=r.message.person_id,
                source=r.message.source,
                retry_at=r.retry_at,
                at=r.at,
            )
            for r in results
        ],
        owner=owner,
    )
    for result in results:
        _channel_health(session, result)


def _channel_health(session: Session, result: Result) -> None:
    sent = result.status == OutboxStatus.SENT
    refused = result.status == OutboxStatus.FAILED and (
        result.code == OutcomeCode.REFUSED
        or (result.code == OutcomeCode.GAVE_UP and is_test(result.message))
    )
    if result.message.channel == Channel.SMS:
        failing = state.load_all(session, _FAILING).get("sms")
        if sent and failing:
            state.drop(session, _FAILING, "sms")
        elif refused and not failing:
            state.put(
                session,
                _FAILING,
                "sms",
                {"since": result.at.isoformat(), "reason": (result.detail or "-")[:200]},
            )
            _tell_admins(session, "sms", None, result.detail or "-", result.at)
        return
    if result.group_id is None or not (sent or refused):
        return
    group = session.get(DutyGroup, result.group_id)
    if group is None:
        return
    if sent:
        group.last_ok_at = result.at
        group.failing_since = None
        group.failing_reason = None
    elif group.failing_since is None:
        group.failing_since = result.at
        group.failing_reason = (result.detail or "-")[:200]
        _tell_admins(session, f"g{group.id}", group, group.failing_reason, result.at)
    session.add(group)


def _tell_admins(
    session: Session, key: str, group: DutyGroup | None, reason: str, at: datetime
) -> None:
    """One notice per admin when a channel starts refusing (a bad key, say)."""
    admins = session.exec(
        select(Person).where(Person.role == Role.ADMIN, Person.status == Status.ACTIVE)
    ).all()
    stamp = int(at.timestamp())
    for admin in admins:
        lang = admin.language
        if group is not None:
            text = t(lang, "channels.failing.group", label=group_label(group, lang), reason=reason)
        else:
            text = t(lang, "channels.failing.sms", reason=reason)
        outbox.enqueue_to(
            session,
            admin,
            text=text,
            priority=Priority.URGENT,
            idempotency_key=f"chfail:{key}:{stamp}:{admin.id}",
            source="channels:failing",
        )


def sms_failing(session: Session) -> dict[str, Any] | None:
    return state.load_all(session, _FAILING).get("sms")
