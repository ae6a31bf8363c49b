"""The producer API: how every feature queues a message (see the package's docstring)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import Session, col, select

from models import OutboxMessage, OutboxStatus, OutcomeCode, Person, Priority
from services import clock
from services.outbox.wakeup import note_enqueued

_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


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
    note_enqueued(session, int(priority))
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
        note_enqueued(session, min(r["priority"] for r in rows))
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
            note_enqueued(session, row.priority)
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
