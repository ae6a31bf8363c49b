"""Recording what became of each send, in batches, for the rows the worker still holds;
the hooks that follow outcomes of a source (an alert's timeline), registered by the
composition root (bot/app.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, case, func, update
from sqlmodel import Session, select

from models import OutboxMessage, OutboxStatus, OutcomeCode, Person
from models.outbox import UNREACHABLE_CODES
from services import clock
from services.outbox.reachability import mark_unreachable, notify_admins_unreachable

log = logging.getLogger(__name__)

_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


@dataclass
class Outcome:
    """What became of one attempt, recorded by `record_outcomes`.

    status SENT / FAILED (permanent) / CANCELLED, PENDING with `retry_at` (transient), or
    SENDING (a part of a long text went out; `parts_sent` says how many).
    """

    id: int
    chat_id: int
    status: OutboxStatus
    code: OutcomeCode | None  # None: keep the recorded one (a part sent, a message put back)
    detail: str | None = None
    person_id: int | None = None
    source: str | None = None
    telegram_message_id: int | None = None
    retry_at: datetime | None = None
    parts_sent: int = 0
    counts_as_attempt: bool = True
    at: datetime = field(default_factory=clock.now)


OutcomeHook = Callable[[Session, list[Outcome]], None]
_hooks: list[tuple[str, OutcomeHook]] = []


def add_outcome_hook(source_prefix: str, hook: OutcomeHook) -> None:
    """Call `hook(session, outcomes)` for recorded outcomes whose source starts with
    `source_prefix`, in the same transaction (e.g. an alert's timeline of deliveries).
    The composition root registers them (bot/app.py, `register_hooks`)."""
    if (source_prefix, hook) not in _hooks:
        _hooks.append((source_prefix, hook))


def remove_outcome_hook(source_prefix: str, hook: OutcomeHook) -> None:
    if (source_prefix, hook) in _hooks:
        _hooks.remove((source_prefix, hook))


def record_outcomes(
    session: Session, outcomes: Sequence[Outcome], *, owner: str | None = None
) -> list[int]:
    """Write a batch of outcomes (one statement), mark people unreachable or reachable
    again, tell the admins about people who just became unreachable, and run the hooks.
    Returns the ids of the people newly marked unreachable.

    With `owner`, only the rows that worker still holds are written (``sending`` and
    leased to it): a row taken back meanwhile (its lease expired, or a new leader took
    over) belongs to whoever took it, and this outcome is dropped (logged)."""
    if not outcomes:
        return []
    if owner is not None:
        outcomes = _still_owned(session, outcomes, owner)
        if not outcomes:
            return []
    rows = [
        {
            "b_id": o.id,
            "b_status": o.status.value,
            "b_code": o.code.value if o.code is not None else None,
            "b_outcome": (o.detail or "")[:200] or None,
            "b_sent_at": o.at if o.status == OutboxStatus.SENT else None,
            "b_message_id": o.telegram_message_id,
            "b_next": o.retry_at or o.at,
            "b_parts": o.parts_sent,
            "b_inc": 1 if o.counts_as_attempt else 0,
            "b_chat": o.chat_id,
            "b_keep": 1 if o.status == OutboxStatus.SENDING else 0,  # a part sent: still held
        }
        for o in outcomes
    ]
    statement = update(_TABLE).where(_TABLE.c.id == bindparam("b_id"))
    if owner is not None:
        statement = statement.where(
            _TABLE.c.lease_owner == owner, _TABLE.c.status == OutboxStatus.SENDING.value
        )
    keep = bindparam("b_keep") == 1
    session.connection().execute(
        statement.values(
            status=bindparam("b_status"),
            outcome_code=func.coalesce(bindparam("b_code"), _TABLE.c.outcome_code),
            outcome=func.coalesce(bindparam("b_outcome"), _TABLE.c.outcome),
            sent_at=func.coalesce(
                bindparam("b_sent_at", type_=_TABLE.c.sent_at.type), _TABLE.c.sent_at
            ),
            telegram_message_id=func.coalesce(
                bindparam("b_message_id", type_=_TABLE.c.telegram_message_id.type),
                _TABLE.c.telegram_message_id,
            ),
            next_attempt_at=bindparam("b_next", type_=_TABLE.c.next_attempt_at.type),
            parts_sent=bindparam("b_parts"),
            attempts=_TABLE.c.attempts + bindparam("b_inc"),
            chat_id=bindparam("b_chat"),
            lease_owner=case((keep, _TABLE.c.lease_owner), else_=None),
            lease_expires_at=case((keep, _TABLE.c.lease_expires_at), else_=None),
        ),
        rows,
    )
    newly = _mark_unreachable(session, [o for o in outcomes if o.code in UNREACHABLE_CODES])
    reached = {o.chat_id for o in outcomes if o.status == OutboxStatus.SENT and o.chat_id > 0}
    if reached:
        person = Person.__table__  # type: ignore[attr-defined]
        session.execute(
            update(person)
            .where(
                person.c.telegram_id.in_(sorted(reached)),
                person.c.unreachable_since.isnot(None),
            )
            .values(unreachable_since=None, unreachable_reason=None)
        )
    for prefix, hook in list(_hooks):
        mine = [o for o in outcomes if (o.source or "").startswith(prefix)]
        if mine:
            hook(session, mine)
    return newly


def _still_owned(session: Session, outcomes: Sequence[Outcome], owner: str) -> list[Outcome]:
    """The outcomes of rows `owner` still holds, locked until the transaction ends (on
    PostgreSQL) so that a recovery cannot take them back between this read and the write."""
    ids = sorted({o.id for o in outcomes})
    held: set[int] = set()
    for start in range(0, len(ids), 1000):
        query = select(_TABLE.c.id).where(
            _TABLE.c.id.in_(ids[start : start + 1000]),
            _TABLE.c.lease_owner == owner,
            _TABLE.c.status == OutboxStatus.SENDING.value,
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        held.update(session.execute(query).scalars())
    lost = [o.id for o in outcomes if o.id not in held]
    if lost:
        log.warning(
            "outcome of outbox message(s) %s not recorded: taken back by another worker "
            "(lease expired or a new leader took over)",
            ", ".join(map(str, sorted(set(lost))[:20])),
        )
    return [o for o in outcomes if o.id in held]


def _mark_unreachable(session: Session, failed: list[Outcome]) -> list[int]:
    if not failed:
        return []
    now = failed[0].at
    newly: list[Person] = []
    for outcome in failed:
        assert outcome.code is not None  # a failure always has its cause
        person = mark_unreachable(session, outcome.chat_id, outcome.code, now=now, notify=False)
        if person is not None:
            newly.append(person)
    if newly:
        notify_admins_unreachable(session, newly, key=f"unreachable:{failed[0].id}")
    return [p.id for p in newly if p.id is not None]
