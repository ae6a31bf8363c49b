"""The worker's side of the table: claiming due rows (status ``sending``, leased to the
worker; see services/outbox/leases.py), most urgent first, and holding back the edits and
follow-ups whose message has not gone out yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from models import OutboxMessage, OutboxStatus, OutcomeCode
from services import clock

_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
_PENDING_EDIT_DELAY = timedelta(seconds=1)


@dataclass
class Claimed:
    """A message the worker has taken (status ``sending`` in the table)."""

    id: int
    chat_id: int
    person_id: int | None
    priority: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    parts_sent: int
    source: str | None
    idempotency_key: str
    target_kind: str | None = None  # for edits: the kind of the message edited


def claim_due(
    session: Session,
    limit: int,
    *,
    below_priority: int | None = None,
    exclude: Iterable[int] = (),
    owner: str | None = None,
    lease: float | None = None,
) -> list[Claimed]:
    """Take up to `limit` due messages, most urgent first, marking them ``sending``
    (leased to `owner` for `lease` seconds; without an owner, unleased).

    `below_priority` takes only messages more urgent than that (used when the worker's
    memory is full of bulk messages and an emergency arrives).
    """
    if limit <= 0:
        return []
    now = clock.now()
    chosen = (
        select(_TABLE.c.id)
        .where(
            _TABLE.c.status == OutboxStatus.PENDING.value,
            _TABLE.c.next_attempt_at <= now,
            _TABLE.c.channel == "telegram",  # WeCom, DingTalk, SMS: bot/duty_channels.py
        )
        .order_by(_TABLE.c.priority, _TABLE.c.next_attempt_at, _TABLE.c.id)
        .limit(limit)
    )
    if below_priority is not None:
        chosen = chosen.where(_TABLE.c.priority < below_priority)
    excluded = list(exclude)
    if excluded:
        chosen = chosen.where(_TABLE.c.id.notin_(excluded))
    rows = mark_sending(
        session,
        chosen,
        _TABLE.c.id,
        _TABLE.c.chat_id,
        _TABLE.c.person_id,
        _TABLE.c.priority,
        _TABLE.c.kind,
        _TABLE.c.payload,
        _TABLE.c.attempts,
        _TABLE.c.parts_sent,
        _TABLE.c.source,
        _TABLE.c.idempotency_key,
        owner=owner,
        lease=lease,
    )
    claimed = [Claimed(*row) for row in rows]
    claimed.sort(key=lambda c: (c.priority, c.id))
    edits = [c for c in claimed if c.kind == "edit" and not c.payload.get("message_id")]
    if edits:
        claimed = _resolve_edits(session, claimed, edits, now)
    followers = [c for c in claimed if c.payload.get("after")]
    if followers:
        claimed = _resolve_followers(session, claimed, followers, now)
    return claimed


def mark_sending(
    session: Session,
    chosen: Any,
    *columns: Any,
    owner: str | None = None,
    lease: float | None = None,
) -> list[Any]:
    """Mark the outbox rows whose ids `chosen` selects (ordered and limited) ``sending``,
    leased to `owner` for `lease` seconds, and return `columns` of each: one statement, so
    that two workers never take the same row (PostgreSQL skips the rows another transaction
    holds)."""
    if session.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    expires = clock.now() + timedelta(seconds=lease) if owner and lease else None
    return list(
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_(chosen.scalar_subquery()))
            .values(
                status=OutboxStatus.SENDING.value,
                lease_owner=owner,
                lease_expires_at=expires,
            )
            .returning(*columns)
        )
    )


def _by_key(session: Session, keys: set[str]) -> dict[str, OutboxMessage]:
    """The outbox rows with these idempotency keys."""
    query = select(OutboxMessage).where(col(OutboxMessage.idempotency_key).in_(keys))
    return {row.idempotency_key: row for row in session.exec(query)}


def _resolve_edits(
    session: Session, claimed: list[Claimed], edits: list[Claimed], now: datetime
) -> list[Claimed]:
    """Edits name the message they change by its key: find its Telegram message id. An
    edit of a message still queued waits; an edit of a message never sent is dropped."""
    targets = _by_key(session, {str(c.payload.get("edit_of")) for c in edits})
    waiting: list[int] = []
    dropped: list[int] = []
    for edit in edits:
        target = targets.get(str(edit.payload.get("edit_of")))
        if target is not None and target.telegram_message_id is not None:
            edit.payload = {**edit.payload, "message_id": target.telegram_message_id}
            edit.chat_id = target.chat_id
            edit.target_kind = target.kind
        elif target is not None and target.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            waiting.append(edit.id)
        else:
            dropped.append(edit.id)
    return _wait_or_drop(
        session,
        claimed,
        waiting,
        dropped,
        now,
        waits="waiting for the message to edit to be sent",
        drops="the message to edit was never sent",
    )


def _wait_or_drop(
    session: Session,
    claimed: list[Claimed],
    waiting: list[int],
    dropped: list[int],
    now: datetime,
    *,
    waits: str,
    drops: str,
) -> list[Claimed]:
    """Put back the messages whose target is still queued, cancel those whose target will
    never be sent, and return the claimed messages that can go now."""
    if waiting:
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_(waiting))
            .values(
                status=OutboxStatus.PENDING.value,
                next_attempt_at=now + _PENDING_EDIT_DELAY,
                outcome=waits,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    if dropped:
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_(dropped))
            .values(
                status=OutboxStatus.CANCELLED.value,
                outcome_code=OutcomeCode.NO_TARGET.value,
                outcome=drops,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    gone = set(waiting) | set(dropped)
    return [c for c in claimed if c.id not in gone]


def _resolve_followers(
    session: Session, claimed: list[Claimed], followers: list[Claimed], now: datetime
) -> list[Claimed]:
    """Messages queued with ``after`` go out once that message is sent, as a reply to it
    (e.g. a chart after the notice it illustrates: same chat, in order, even when the notice
    needed retries). One whose message is being sent to the same chat is taken too: the
    worker sends a chat's messages one at a time, in order, and checks before sending it
    that the other one went out (bot/delivery.py). One whose message is still queued
    waits; one whose message failed or was cancelled is dropped."""
    targets = _by_key(session, {str(c.payload["after"]) for c in followers})
    waiting: list[int] = []
    dropped: list[int] = []
    for follower in followers:
        target = targets.get(str(follower.payload["after"]))
        if target is not None and target.status == OutboxStatus.SENT:
            same_chat = target.chat_id == follower.chat_id
            follower.payload = {  # None: sent, but there is nothing to reply to
                **follower.payload,
                "reply_to_message_id": target.telegram_message_id if same_chat else None,
            }
        elif (
            target is not None
            and target.status == OutboxStatus.SENDING
            and target.chat_id == follower.chat_id
        ):
            continue  # the worker holds both: the chat's lane sends the other one first
        elif target is not None and target.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            waiting.append(follower.id)
        else:
            dropped.append(follower.id)
    return _wait_or_drop(
        session,
        claimed,
        waiting,
        dropped,
        now,
        waits="waiting for the message it follows to be sent",
        drops="the message it follows was never sent",
    )


def next_due_at(session: Session) -> datetime | None:
    """When the earliest waiting message is due (None when nothing waits)."""
    return session.exec(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OutboxStatus.PENDING
        )
    ).one()
