"""Queueing proactive messages. The delivery worker (bot/delivery.py) sends them.

Every feature that messages people on its own initiative (alerts, escalations, reminders,
broadcasts, notices to admins) calls `enqueue` (or `enqueue_many`, `enqueue_edit`) and
nothing else: the message is stored in the same transaction as the event that caused it,
then sent by priority, within Telegram's limits, retried through errors and restarts.

The worker is woken when a transaction that queued something commits (see
`add_enqueue_listener`), so callers need not wake it themselves. This module also holds
the worker's side of the table: claiming due rows, recording outcomes in batches, marking
people unreachable and telling the admins once, and splitting long HTML texts.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, event, func, insert, or_, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from models import OutboxMessage, OutboxStatus, OutcomeCode, Person, Priority, Role, Status
from models.outbox import CHANNEL_ROWS, UNREACHABLE_CODES
from services import clock
from services.i18n import plain_text, t

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096  # characters of a message after entity parsing
CAPTION_LIMIT = 1024
_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
_PENDING_EDIT_DELAY = timedelta(seconds=1)


# ------------------------------------------------------------------------------ enqueue


def enqueue(
    session: Session,
    *,
    chat_id: int,
    text: str | None = None,
    priority: Priority = Priority.REMINDER,
    idempotency_key: str,
    person_id: int | None = None,
    language: str | None = None,
    reply_markup: dict[str, Any] | None = None,
    kind: str = "text",
    payload: dict[str, Any] | None = None,
    source: str | None = None,
    channel: str = "telegram",
    target: str | None = None,
) -> OutboxMessage:
    """Store a message for sending. The same idempotency key never queues twice: a logical
    notification reaches each recipient once, however often the caller retries.

    `text` is Telegram HTML (build it with services.i18n.t, which escapes values); for a
    photo or document it is the caption. Texts longer than Telegram allows are split when
    sent, never dropped. `reply_markup` is the Bot API JSON form (see `inline_keyboard`).
    `kind` is text | photo | document | location; `payload` carries the rest (``photo`` or
    ``document``: a file id or URL; ``latitude``/``longitude``/``live_period``).
    A photo or document can instead be drawn when it is sent: ``render`` names a loader
    registered with `register_renderer`, ``args`` its JSON arguments (see `Attachment`).
    ``after``: the idempotency key of a message that must be sent first; this one waits
    for it, goes out as a reply to it, and is dropped if that one is never sent.
    `channel` and `target` send it elsewhere than Telegram (services/duty_channels/).
    """
    existing = session.exec(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        return existing
    body = dict(payload or {})
    if text is not None:
        body["text"] = text
    if reply_markup is not None:
        body["reply_markup"] = reply_markup
    now = clock.now()
    message = OutboxMessage(
        idempotency_key=idempotency_key,
        chat_id=chat_id,
        person_id=person_id,
        priority=int(priority),
        kind=kind,
        payload=body,
        language=language,
        status=OutboxStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        source=source,
        channel=channel,
        target=target,
    )
    session.add(message)
    session.flush()
    _note_enqueued(session, int(priority))
    return message


@dataclass
class NewMessage:
    """One message for `enqueue_many`; the fields mean what `enqueue`'s arguments mean."""

    chat_id: int
    idempotency_key: str
    text: str | None = None
    priority: Priority = Priority.REMINDER
    person_id: int | None = None
    language: str | None = None
    reply_markup: dict[str, Any] | None = None
    kind: str = "text"
    payload: dict[str, Any] | None = None
    source: str | None = None


def enqueue_many(session: Session, messages: Iterable[NewMessage]) -> int:
    """Queue many messages in one statement (a broadcast to thousands). Keys already queued
    are skipped, as `enqueue` does. Returns how many rows were added."""
    pending = list(messages)
    if not pending:
        return 0
    keys = [m.idempotency_key for m in pending]
    existing: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        existing.update(
            session.exec(
                select(OutboxMessage.idempotency_key).where(
                    col(OutboxMessage.idempotency_key).in_(chunk)
                )
            )
        )
    now = clock.now()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in pending:
        if m.idempotency_key in existing or m.idempotency_key in seen:
            continue
        seen.add(m.idempotency_key)
        body = dict(m.payload or {})
        if m.text is not None:
            body["text"] = m.text
        if m.reply_markup is not None:
            body["reply_markup"] = m.reply_markup
        rows.append(
            {
                "idempotency_key": m.idempotency_key,
                "chat_id": m.chat_id,
                "person_id": m.person_id,
                "priority": int(m.priority),
                "kind": m.kind,
                "payload": body,
                "language": m.language,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "parts_sent": 0,
                "next_attempt_at": now,
                "created_at": now,
                "source": m.source,
            }
        )
    for start in range(0, len(rows), 1000):
        session.execute(insert(_TABLE), rows[start : start + 1000])
    if rows:
        _note_enqueued(session, min(r["priority"] for r in rows))
    return len(rows)


def enqueue_edit(
    session: Session,
    *,
    text: str,
    edit_of: str | None = None,
    chat_id: int | None = None,
    message_id: int | None = None,
    reply_markup: dict[str, Any] | None = None,
    priority: Priority = Priority.URGENT,
    source: str | None = None,
) -> OutboxMessage | None:
    """Edit a message the bot sent: the outbox message with key `edit_of` (its Telegram
    message id is looked up when the edit is sent, so it may still be queued), or
    `chat_id` + `message_id`. Only the latest text matters: an edit of the same message
    that is still waiting is replaced. Returns None when `edit_of` names no message.

    A text edit of a photo or document changes its caption.
    """
    if edit_of is not None:
        target = session.exec(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == edit_of)
        ).first()
        if target is None:
            return None
        chat_id = target.chat_id
        target_ref = edit_of
    elif chat_id is None or message_id is None:
        raise ValueError("enqueue_edit needs edit_of, or chat_id and message_id")
    else:
        target_ref = f"{chat_id}:{message_id}"
    body: dict[str, Any] = {"text": text}
    if edit_of is not None:
        body["edit_of"] = edit_of
    else:
        body["message_id"] = message_id
    if reply_markup is not None:
        body["reply_markup"] = reply_markup
    waiting = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.kind == "edit",
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.source == source
            if source is not None
            else col(OutboxMessage.source).is_(None),
        )
    ).all()
    for row in waiting:
        if _edit_target(row.payload) == target_ref:
            row.payload = body
            row.priority = min(row.priority, int(priority))
            session.add(row)
            session.flush()
            _note_enqueued(session, row.priority)
            return row
    assert chat_id is not None
    return enqueue(
        session,
        chat_id=chat_id,
        priority=priority,
        idempotency_key=f"edit:{target_ref}:{secrets.token_hex(6)}"[:120],
        kind="edit",
        payload=body,
        source=source,
    )


def _edit_target(payload: dict[str, Any]) -> str | None:
    if payload.get("edit_of"):
        return str(payload["edit_of"])
    return None


def enqueue_to(session: Session, person: Person, **fields: Any) -> OutboxMessage:
    """`enqueue` for a person: to their chat, recorded against them, in their language."""
    return enqueue(
        session,
        chat_id=person.telegram_id,
        person_id=person.id,
        language=person.language,
        **fields,
    )


def inline_keyboard(rows: list[list[tuple[str, str]]]) -> dict[str, Any]:
    """Bot API JSON for an inline keyboard from rows of (label, callback_data)."""
    return {
        "inline_keyboard": [
            [{"text": label, "callback_data": data} for label, data in row] for row in rows
        ]
    }


def find(session: Session, idempotency_key: str) -> OutboxMessage | None:
    """The message queued with this key (its status, outcome and Telegram message id)."""
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key)
    ).first()


def cancel(session: Session, *, source: str | None = None, keys: Sequence[str] = ()) -> int:
    """Cancel messages not sent yet (all of a source, or by key). Messages the worker has
    already taken are dropped by it (`Delivery.forget`). Returns how many were cancelled."""
    query = update(_TABLE).where(_TABLE.c.status == OutboxStatus.PENDING.value)
    if source is not None:
        query = query.where(_TABLE.c.source == source)
    elif keys:
        query = query.where(_TABLE.c.idempotency_key.in_(list(keys)))
    else:
        return 0
    result = session.execute(
        query.values(
            status=OutboxStatus.CANCELLED.value,
            outcome_code=OutcomeCode.CANCELLED.value,
            outcome="cancelled before it was sent",
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def counts(session: Session, source: str) -> dict[tuple[str, str | None], int]:
    """How many messages of a source are in each (status, outcome code)."""
    rows = session.exec(
        select(OutboxMessage.status, OutboxMessage.outcome_code, func.count())
        .where(OutboxMessage.source == source)
        .group_by(col(OutboxMessage.status), col(OutboxMessage.outcome_code))
    )
    return {(str(status), code): int(n) for status, code, n in rows}


# ---------------------------------------------------------------- waking the worker


_listeners: list[Callable[[int], None]] = []
_listeners_lock = threading.Lock()
_INFO_KEY = "outbox.enqueued"


def add_enqueue_listener(listener: Callable[[int], None]) -> None:
    """Call `listener(priority)` after each commit that queued messages (from whichever
    thread committed: the listener must be thread-safe). The delivery worker registers."""
    with _listeners_lock:
        _listeners.append(listener)


def remove_enqueue_listener(listener: Callable[[int], None]) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _note_enqueued(session: Session, priority: int) -> None:
    current = session.info.get(_INFO_KEY)
    session.info[_INFO_KEY] = priority if current is None else min(current, priority)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    priority = session.info.pop(_INFO_KEY, None)
    if priority is None:
        return
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(priority)


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_INFO_KEY, None)


# ------------------------------------------------------------------- the worker's side


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


# --- leases: who is sending a row ------------------------------------------------------
#
# A worker claims rows with its owner id and a lease expiry, renews the lease of every row
# it holds (queued in memory or in flight) while it holds it, and writes outcomes only for
# rows it still owns. Recovery takes back rows whose lease expired (their worker died or
# hangs), never the rows of a live worker; a new leader also takes back the rows of the
# leader it replaced (bot/leader.py), which can no longer send.

_NODE = f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(3)}"
_owners = itertools.count(1)


def process_node() -> str:
    """This process's id (host:pid:random): the prefix of its workers' lease owners."""
    return _NODE


def new_owner(kind: str) -> str:
    """A lease owner id for one worker of this process (``<node>/<kind><n>``)."""
    return f"{_NODE}/{kind}{next(_owners)}"[:80]


def recover_interrupted(session: Session, owner: str | None = None) -> int:
    """Telegram rows left ``sending`` whose lease expired (their worker died, or hangs):
    the outcome is unknown, so they are sent again (the only case where a duplicate is
    accepted). Rows of `owner` (the caller itself) are left alone: it knows them."""
    count = reclaim(session, "telegram", owner=owner)
    if count:
        _note_enqueued(session, int(Priority.EMERGENCY))
    return count


def reclaim(
    session: Session,
    channel: str,
    *,
    owner: str | None = None,
    node: str | None = None,
    attempt: bool = True,
    every: bool = False,
) -> int:
    """Put ``sending`` rows back to ``pending``: of `channel` ("telegram", or "other" for
    WeCom, DingTalk and SMS), those whose lease expired (none: taken without one), except
    `owner`'s; with `node`, instead every row leased by that process's workers; with
    `every`, every row (the process starting is the only one that may send: see
    `reclaim_all`)."""
    now = clock.now()
    query = update(_TABLE).where(_TABLE.c.status == OutboxStatus.SENDING.value)
    if channel == "telegram":
        query = query.where(_TABLE.c.channel == "telegram")
    else:
        query = query.where(text(CHANNEL_ROWS))
    if every:
        pass
    elif node is not None:
        query = query.where(_TABLE.c.lease_owner.like(f"{node}/%"))
    else:
        query = query.where(
            or_(_TABLE.c.lease_expires_at.is_(None), _TABLE.c.lease_expires_at < now)
        )
        if owner is not None:
            query = query.where(or_(_TABLE.c.lease_owner.is_(None), _TABLE.c.lease_owner != owner))
    values: dict[str, Any] = {
        "status": OutboxStatus.PENDING.value,
        "next_attempt_at": now,
        "outcome_code": OutcomeCode.RESTART.value,
        "outcome": "the bot stopped while sending: outcome unknown, sending again",
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if attempt:
        values["attempts"] = _TABLE.c.attempts + 1
    result = session.execute(query.values(**values))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def reclaim_all(session: Session) -> int:
    """At the start of the one process that may send (it holds the SQLite database's lock
    file, or the PostgreSQL leadership after the old leader's send window closed): every
    row left ``sending`` belongs to a process that is dead or can no longer send, whatever
    its lease says, so all are sent again at once rather than when their leases expire."""
    count = reclaim(session, "telegram", every=True)
    count += reclaim(session, "other", every=True, attempt=False)
    if count:
        _note_enqueued(session, int(Priority.EMERGENCY))
    return count


def renew_leases(session: Session, owner: str, ids: Sequence[int], seconds: float) -> int:
    """Extend the lease of the rows `owner` holds (and still owns) among `ids`."""
    until = clock.now() + timedelta(seconds=seconds)
    renewed = 0
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        result = session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.id.in_(ordered[start : start + 1000]),
                _TABLE.c.lease_owner == owner,
                _TABLE.c.status == OutboxStatus.SENDING.value,
            )
            .values(lease_expires_at=until)
        )
        renewed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return renewed


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


def mark_unreachable(
    session: Session,
    telegram_id: int,
    reason: OutcomeCode,
    *,
    now: datetime | None = None,
    notify: bool = True,
) -> Person | None:
    """Record that Telegram refuses messages to this person. Returns the person when this is
    news (they were reachable until now), after telling the admins once if `notify`."""
    person = session.exec(select(Person).where(Person.telegram_id == telegram_id)).first()
    if person is None or person.unreachable_since is not None:
        return None
    person.unreachable_since = now or clock.now()
    person.unreachable_reason = reason.value
    session.add(person)
    session.flush()
    if notify:
        since = int(person.unreachable_since.timestamp())
        notify_admins_unreachable(session, [person], key=f"unreachable:p{person.id}:{since}")
    return person


def mark_reachable(session: Session, telegram_id: int) -> bool:
    """The person can be reached again (they unblocked the bot or wrote to it)."""
    person = session.exec(select(Person).where(Person.telegram_id == telegram_id)).first()
    if person is None or person.unreachable_since is None:
        return False
    person.unreachable_since = None
    person.unreachable_reason = None
    session.add(person)
    return True


def notify_admins_unreachable(session: Session, people: list[Person], *, key: str) -> None:
    """One notice per admin listing the people who just became unreachable."""
    admins = session.exec(
        select(Person).where(
            Person.role == Role.ADMIN,
            Person.status == Status.ACTIVE,
            col(Person.unreachable_since).is_(None),
        )
    ).all()
    names = [p for p in people if p.id is not None]
    for admin in admins:
        others = [p for p in names if p.id != admin.id]
        if not others:
            continue
        lang = admin.language
        lines = [
            t(
                lang,
                "delivery.unreachable.line",
                name=p.real_name or p.display_name or str(p.telegram_id),
                telegram_id=p.telegram_id,
                reason=t(lang, f"delivery.reason.{p.unreachable_reason or 'forbidden'}"),
            )
            for p in others[:30]
        ]
        if len(others) > 30:
            lines.append(t(lang, "delivery.unreachable.more", count=len(others) - 30))
        enqueue(
            session,
            chat_id=admin.telegram_id,
            person_id=admin.id,
            language=lang,
            text=t(lang, "delivery.unreachable", count=len(others)) + "\n" + "\n".join(lines),
            priority=Priority.URGENT,
            idempotency_key=f"{key}:a{admin.id}"[:120],
            source="delivery:unreachable",
        )


# -------------------------------------------------------------- files drawn when sent


@dataclass(frozen=True)
class Attachment:
    """A photo or document drawn when its message is sent (payload ``render`` + ``args``).

    Why at send time and not as bytes in the payload: drawing a chart takes a few hundred
    milliseconds of CPU; inside the transaction that queues it (a check-in, an alert's
    round) it would hold SQLite's single write lock and delay that emergency round's
    commit. The row keeps only the reference, so no copy of the data it shows (health
    readings) outlives the data's own retention in outbox rows, which are kept for good.
    The loader reads in a short transaction; `draw` runs outside it, in a thread.
    """

    filename: str
    draw: Callable[[], bytes]


Renderer = Callable[[Session, dict[str, Any]], Attachment | None]
_renderers: dict[str, Renderer] = {}


def register_renderer(name: str, renderer: Renderer) -> None:
    """Name the loader of payloads ``{"render": name, "args": {...}}``: a function
    ``(session, args) -> Attachment | None`` (None: nothing to draw any more, the message
    is cancelled). The composition root registers it (bot/app.py, `register_hooks`); keep
    heavy imports (e.g. matplotlib) inside `draw`, which runs in the worker's drawing
    thread."""
    _renderers[name] = renderer


def load_attachment(session: Session, payload: dict[str, Any]) -> Attachment | None:
    """The worker's side: the registered loader for this payload, called with its args.
    An unknown name raises LookupError (the message can never be sent)."""
    name = str(payload.get("render"))
    renderer = _renderers.get(name)
    if renderer is None:
        raise LookupError(f"no renderer registered as {name!r}")
    return renderer(session, dict(payload.get("args") or {}))


# ---------------------------------------------------------------------- long texts


@dataclass(frozen=True)
class Part:
    """One Bot API call of a message: long texts and captions become several."""

    kind: str  # text | photo | document | location | edit
    text: str | None
    last: bool


def parts_of(kind: str, payload: dict[str, Any]) -> list[Part]:
    """The calls that deliver one outbox message, in order; the reply markup goes on the
    last. Deterministic, so that a restart resumes after the parts already sent."""
    if kind == "text":
        chunks = split_html(payload.get("text") or "", TEXT_LIMIT)
        return [Part("text", c, i == len(chunks) - 1) for i, c in enumerate(chunks)]
    if kind in ("photo", "document"):
        caption = payload.get("caption") or payload.get("text")
        if not caption:
            return [Part(kind, None, True)]
        chunks = split_html(caption, TEXT_LIMIT, first_limit=CAPTION_LIMIT)
        parts = [Part(kind, chunks[0], len(chunks) == 1)]
        parts += [Part("text", c, i == len(chunks) - 2) for i, c in enumerate(chunks[1:])]
        return parts
    if kind == "edit":
        text = payload.get("text") or ""
        return [Part("edit", split_html(text, TEXT_LIMIT)[0], True)]
    return [Part(kind, None, True)]


# A tag, a character reference as Telegram's HTML parser reads it (&lt; &gt; &amp; &quot;,
# the ';' optional; decimal and hexadecimal numbers), a surrogate pair, or one character.
_TOKEN = re.compile(
    r"<[^>]*>|&(?:lt|gt|amp|quot)(?![A-Za-z]);?|&#(?:x[0-9a-fA-F]*|[0-9]*);?"
    r"|[\ud800-\udbff][\udc00-\udfff]|.",
    re.S,
)
_TAG = re.compile(r"<\s*(/?)\s*([a-zA-Z][\w-]*)")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _width(token: str) -> int:
    """UTF-16 code units of visible text (how Telegram counts): a character reference counts
    as the character it stands for, tags count nothing."""
    if token.startswith("<") and token.endswith(">") and len(token) > 1:
        return 0
    if token.startswith("&") and len(token) > 1:
        return _units(_reference(token))
    return _units(token)


def _reference(token: str) -> str:
    """The text Telegram shows for a character reference token (itself when not decoded)."""
    body = token[1:].removesuffix(";")
    if body in _NAMED:
        return _NAMED[body]
    digits = body[2:] if body.startswith("#x") else body[1:]
    if not digits or len(token.removesuffix(";")) >= 10:
        return token
    code = int(digits, 16 if body.startswith("#x") else 10)
    return chr(code) if 0 < code < 0x10FFFF and not 0xD800 <= code < 0xE000 else token


def visible_length(text: str) -> int:
    return sum(_width(token) for token in _TOKEN.findall(text))


def split_html(text: str, limit: int = TEXT_LIMIT, *, first_limit: int | None = None) -> list[str]:
    """Split Telegram HTML into parts whose visible text fits `limit` (the first part
    `first_limit`, e.g. a caption), at line breaks where possible, then at spaces. Tags open
    at a split are closed at the end of the part and opened again at the start of the next,
    so every part is valid HTML on its own. Nothing is dropped."""
    first = first_limit or limit
    if len(text) <= first // 2 or visible_length(text) <= first:  # 2 units at most per char
        return [text]
    tokens = _TOKEN.findall(text)
    chunks: list[str] = []
    start = 0
    reopen: list[tuple[str, str]] = []  # (name, opening tag) open at the split
    while start < len(tokens):
        budget = first if not chunks else limit
        stack = list(reopen)
        length = 0
        index = start
        newline: tuple[int, list[tuple[str, str]]] | None = None
        space: tuple[int, list[tuple[str, str]]] | None = None
        while index < len(tokens):
            token = tokens[index]
            width = _width(token)
            if width and length + width > budget:
                break
            length += width
            _track(stack, token)
            index += 1
            if token == "\n":
                newline = (index, list(stack))
            elif token in (" ", "\t"):
                space = (index, list(stack))
        if index >= len(tokens):
            cut, open_at_cut = index, stack
        else:
            # Prefer a line break in the second half of the part, else a space, else here.
            half = start + (index - start) // 2
            if newline and newline[0] > half:
                cut, open_at_cut = newline
            elif space and space[0] > half:
                cut, open_at_cut = space
            elif newline:
                cut, open_at_cut = newline
            elif space:
                cut, open_at_cut = space
            else:
                cut, open_at_cut = index, stack
            if cut <= start:  # one token wider than the budget: cannot happen for text
                cut, open_at_cut = start + 1, stack
        body = "".join(tokens[start:cut])
        prefix = "".join(tag for _, tag in reopen)
        suffix = "".join(f"</{name}>" for name, _ in reversed(open_at_cut))
        chunk = prefix + body + suffix
        if plain_text(chunk).strip():
            chunks.append(chunk)
        reopen = open_at_cut
        start = cut
    return chunks or [text]


def open_tags(text: str, stack: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """The tags still open after `text` (given those open before it, `stack`), innermost
    last, as (name, opening tag): what a part cut there must close and the next reopen."""
    opened = list(stack or [])
    for token in _TOKEN.findall(text):
        _track(opened, token)
    return opened


def _track(stack: list[tuple[str, str]], token: str) -> None:
    match = _TAG.match(token) if token.startswith("<") else None
    if match is None:
        return
    closing, name = match.group(1), match.group(2).lower()
    if token.rstrip().endswith("/>"):
        return
    if not closing:
        stack.append((name, token))
        return
    for position in range(len(stack) - 1, -1, -1):
        if stack[position][0] == name:
            del stack[position:]
            return
