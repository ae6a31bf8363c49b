"""Queueing proactive messages. The delivery worker (bot/delivery.py) sends them.

Every feature that messages people on its own initiative (alerts, escalations, reminders,
broadcasts, notices to admins) calls `enqueue` and nothing else: the message is stored in
the same transaction as the event that caused it, then sent by priority, within Telegram's
limits, retried through errors and restarts.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models.outbox import OutboxMessage, OutboxStatus, Priority
from services import clock


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
) -> OutboxMessage:
    """Store a message for sending. The same idempotency key never queues twice: a logical
    notification reaches each recipient once, however often the caller retries.

    `text` is Telegram HTML (build it with services.i18n.t, which escapes values);
    `reply_markup` is the Bot API JSON form (e.g. {"inline_keyboard": [[{...}]]}).
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
    message = OutboxMessage(
        idempotency_key=idempotency_key,
        chat_id=chat_id,
        person_id=person_id,
        priority=int(priority),
        kind=kind,
        payload=body,
        language=language,
        status=OutboxStatus.PENDING,
        next_attempt_at=clock.now(),
        created_at=clock.now(),
        source=source,
    )
    session.add(message)
    session.flush()
    return message


def inline_keyboard(rows: list[list[tuple[str, str]]]) -> dict[str, Any]:
    """Bot API JSON for an inline keyboard from rows of (label, callback_data)."""
    return {
        "inline_keyboard": [
            [{"text": label, "callback_data": data} for label, data in row] for row in rows
        ]
    }
