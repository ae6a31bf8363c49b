"""Deletion that reaches every copy (PIPL art. 47), and the outbox's shelf life (art. 19).

Deleting a person's rows (services.people.delete_own_data: the person row, and through the
foreign keys' ON DELETE CASCADE everything that belongs to them) is not enough: what the
person said and what was measured about them was copied into messages for officers and
admins, channel rows (WeCom, DingTalk, SMS), alert records and audit details. `erase`
removes or redacts those copies first, from the person's id and the links to it, so that
it reaches any feature's rows that point at a person (e.g. a caller who never finished
registering):

- alerts stay in the officers' record as "a deleted person" with their times, the
  officers who handled them and how it ended: the person link, what was said, where and
  why are cleared (an alert still in progress is closed as cancelled), the events keep
  their kind, time, officer and round, without details;
- outbox rows about the person (sources ``alert:``, ``chart:alert:``, ``checkin:``,
  ``care:``, ``oxygen:``, ``kb:handoff:``, ``approval:``, ``people:``) lose their payload,
  and those not sent yet are cancelled; alert messages already delivered on Telegram are
  edited to a line without personal data; rows addressed to the person are deleted;
- in every other outbox row and audit entry, the person's names, phone numbers and texts
  are replaced where they occur (lists of several people, e.g. missed check-ins);
- audit entries by or about the person keep the action, outcome and time, their counters
  and codes, not what was typed, and no Telegram id;
- conversation states and drafts of the person are dropped, and so are the updates they
  sent that are stored in the update inbox (services/inbox.py).

`clear_sent` is run by the daily retention pass: the text of messages that reached an end
(sent, failed, cancelled) more than `CADRE_OUTBOX_SENT_RETENTION_DAYS` ago is cleared; the
delivery record (recipient, status, times, outcome) stays.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, delete, or_
from sqlmodel import Session, col, select

from models import (
    Alert,
    AlertEvent,
    AlertStatus,
    AuditEntry,
    BotState,
    CareItem,
    CareRecord,
    CheckIn,
    EmergencyContact,
    KbDocument,
    KbHandoff,
    KbQuestion,
    OutboxMessage,
    OutboxStatus,
    OutcomeCode,
    OxygenRequest,
    Person,
    Priority,
)
from services import clock, inbox, outbox
from services.i18n import t
from services.kb import documents, store

# What a cleared payload keeps: what an edit or a follower needs to find its message.
_STRUCTURE = ("edit_of", "message_id", "after", "label", "alert")
ERASED = "erased"  # the person deleted their data
EXPIRED = "expired"  # sent longer ago than the outbox keeps texts
_UNSENT = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
_ENDED = (OutboxStatus.SENT.value, OutboxStatus.FAILED.value, OutboxStatus.CANCELLED.value)
# Audit detail values kept for an erased person: codes and counts, never typed text.
_AUDIT_CODES = frozenset(
    {"reason", "cause", "role", "item", "via", "channel", "which", "urgency", "outcome", "stage"}
)
# Alert event details kept: the officers' record (round, who was alerted, how it ended).
_EVENT_CODES = frozenset({"stage", "people", "cause", "outcome"})
_CHUNK = 2000  # rows cleared per statement by the retention pass
_MIN_MARK = 2  # shorter strings are not searched for (they would match everywhere)


@dataclass
class Erased:
    """What `erase` did, for the caller (the delivery worker drops `sources` it holds)."""

    alerts: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    outbox_cleared: int = 0
    outbox_scrubbed: int = 0
    audit_redacted: int = 0
    faqs: list[str] = field(default_factory=list)  # saved answers retitled: refresh the index


def cleared_payload(payload: dict[str, Any] | None, reason: str) -> dict[str, Any]:
    kept = {k: v for k, v in (payload or {}).items() if k in _STRUCTURE}
    return {**kept, "cleared": reason}


def erase(session: Session, person: Person) -> Erased:
    """Remove or redact every copy of `person`'s data outside their own rows. Call it in
    the transaction that then deletes the person (services.people.delete_own_data)."""
    assert person.id is not None
    done = Erased()
    marks = _marks(session, person)
    done.alerts = _redact_alerts(session, person.id)
    done.sources = _sources(session, person.id, done.alerts)
    _edit_delivered_alerts(session, done.alerts)
    done.outbox_cleared = _clear_linked(session, done.sources)
    _delete_addressed(session, person)
    done.outbox_scrubbed = _scrub_outbox(session, marks)
    done.audit_redacted = _redact_audit(session, person, marks)
    done.faqs = _retitle_faqs(session, person.id)
    _drop_state(session, person)
    return done


def clear_sent(session: Session, days: int, now: datetime | None = None) -> int:
    """Clear the text of outbox messages that ended more than `days` ago. Returns how
    many were cleared."""
    cutoff = (now or clock.now()) - timedelta(days=days)
    ended = or_(
        col(OutboxMessage.sent_at) < cutoff,
        (col(OutboxMessage.sent_at).is_(None)) & (col(OutboxMessage.next_attempt_at) < cutoff),
    )
    query = (
        select(OutboxMessage)
        .where(
            col(OutboxMessage.status).in_(_ENDED),
            ended,
            ~cast(OutboxMessage.payload, String).like('%"cleared"%'),
        )
        .limit(_CHUNK)
    )
    count = 0
    while rows := session.exec(query).all():  # a cleared row no longer matches
        for row in rows:
            row.payload = cleared_payload(row.payload, EXPIRED)
            session.add(row)
        session.flush()
        session.expunge_all()
        count += len(rows)
    return count


def clear_sources(session: Session, sources: Iterable[str], reason: str) -> int:
    """Clear the payload of every message of these sources; cancel those not sent yet."""
    return _clear_linked(session, list(sources), reason)


# ---------------------------------------------------------------------------- the steps


def _marks(session: Session, person: Person) -> list[str]:
    """The strings that identify the person or that they wrote, as they may appear in a
    message: names, phone numbers (with and without +86), typed texts."""
    assert person.id is not None
    pid = person.id
    found: list[str | None] = [person.real_name, person.display_name, person.home_unit]
    for phone in (person.phone, person.sms_phone):
        found += [phone, phone.removeprefix("+86") if phone else None]
    for contact in session.exec(select(EmergencyContact).where(EmergencyContact.person_id == pid)):
        found += [contact.name, contact.phone, contact.phone.removeprefix("+86")]
    typed = [
        select(Alert.details).where(Alert.person_id == pid),
        select(CheckIn.note).where(CheckIn.person_id == pid),
        select(KbQuestion.text).where(KbQuestion.person_id == pid),
        select(KbHandoff.question).where(KbHandoff.person_id == pid),
        select(OxygenRequest.place).where(OxygenRequest.person_id == pid),
        select(CareRecord.place).where(CareRecord.person_id == pid),
        select(CareRecord.result).where(CareRecord.person_id == pid),
    ]
    for query in typed:
        found += list(session.exec(query))
    marks: set[str] = set()
    for value in found:
        value = (value or "").strip()
        if len(value) >= _MIN_MARK:
            marks |= {value, html.escape(value, quote=False), html.escape(value)}
    return sorted(marks, key=len, reverse=True)  # longest first: a text before a name in it


def _pattern(marks: list[str]) -> re.Pattern[str] | None:
    if not marks:
        return None

    def one(mark: str) -> str:
        body = re.escape(mark)
        before = r"(?<![A-Za-z0-9])" if mark[0].isascii() and mark[0].isalnum() else ""
        after = r"(?![A-Za-z0-9])" if mark[-1].isascii() and mark[-1].isalnum() else ""
        return before + body + after

    return re.compile("|".join(one(m) for m in marks))


def _scrub(value: Any, pattern: re.Pattern[str], replacement: str) -> Any:
    if isinstance(value, str):
        return pattern.sub(replacement, value)
    if isinstance(value, list):
        return [_scrub(v, pattern, replacement) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, pattern, replacement) for k, v in value.items()}
    return value


def _like_any(column: Any, marks: list[str]) -> Any:
    """Rows whose JSON text may hold one of `marks` (as json.dumps writes it: non-ASCII
    characters escaped, as both backends store the JSON type's text)."""
    clauses = []
    for mark in marks:
        encoded = json.dumps(mark)[1:-1]
        escaped = encoded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(cast(column, String).like(f"%{escaped}%", escape="\\"))
    return or_(*clauses)


def _redact_alerts(session: Session, person_id: int) -> list[int]:
    """Close the person's alerts still in progress, then keep each one as the record of "a
    deleted person" and its times."""
    now = clock.now()
    alerts = list(session.exec(select(Alert).where(Alert.person_id == person_id)))
    for alert in alerts:
        if alert.status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED):
            alert.status = AlertStatus.CANCELLED
            alert.cancelled_at = now
            session.add(AlertEvent(alert_id=alert.id or 0, at=now, kind="erased", detail={}))
        alert.person_id = None
        alert.next_escalation_at = None
        alert.reasons = []
        alert.category = alert.details = alert.resolution_note = None
        alert.latitude = alert.longitude = alert.location_at = None
        alert.live_location = False
        alert.caller = None  # an unverified caller's Telegram name (alerts.raise_alert)
        session.add(alert)
    ids = [a.id for a in alerts if a.id is not None]
    if ids:
        for event in session.exec(select(AlertEvent).where(col(AlertEvent.alert_id).in_(ids))):
            event.detail = {k: v for k, v in event.detail.items() if k in _EVENT_CODES}
            session.add(event)
    session.flush()
    return ids


def _sources(session: Session, person_id: int, alert_ids: list[int]) -> list[str]:
    """The outbox sources of messages about the person, sent to someone else."""
    found = [f"alert:{i}" for i in alert_ids] + [f"chart:alert:{i}" for i in alert_ids]
    linked = (
        ("checkin", select(CheckIn.id).where(CheckIn.person_id == person_id)),
        ("care", select(CareItem.id).where(CareItem.person_id == person_id)),
        ("oxygen", select(OxygenRequest.id).where(OxygenRequest.person_id == person_id)),
        ("kb:handoff", select(KbHandoff.id).where(KbHandoff.person_id == person_id)),
    )
    for prefix, query in linked:
        found += [f"{prefix}:{i}" for i in session.exec(query)]
    return [*found, f"approval:{person_id}", f"people:{person_id}"]


def _edit_delivered_alerts(session: Session, alert_ids: list[int]) -> None:
    """Alert messages already in officers' Telegram chats are edited to a line without
    personal data (WeCom, DingTalk and SMS messages cannot be changed once sent)."""
    for alert_id in alert_ids:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        rows = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.source == f"alert:{alert_id}",
                OutboxMessage.kind == "text",
                OutboxMessage.channel == "telegram",
                OutboxMessage.status == OutboxStatus.SENT,
                col(OutboxMessage.telegram_message_id).is_not(None),
            )
        ).all()
        for row in rows:
            text = t(row.language or "zh-Hans", "erasure.alert", id=alert_id)
            outbox.enqueue_edit(
                session,
                text=text,
                edit_of=row.idempotency_key,
                priority=Priority.URGENT,
                source=f"erased:alert:{alert_id}",
            )


def _clear_linked(session: Session, sources: list[str], reason: str = ERASED) -> int:
    if not sources:
        return 0
    rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.source).in_(sources)))
    count = 0
    for row in rows:
        if row.status in _UNSENT:
            row.status = OutboxStatus.CANCELLED
            row.outcome_code = OutcomeCode.CANCELLED
            row.outcome = "cancelled: the person's data was deleted"
        row.payload = cleared_payload(row.payload, reason)
        session.add(row)
        count += 1
    session.flush()
    return count


def _delete_addressed(session: Session, person: Person) -> None:
    """Messages to the person: to their id, their chat, or their SMS number."""
    session.execute(
        delete(OutboxMessage).where(
            or_(
                col(OutboxMessage.person_id) == person.id,
                (col(OutboxMessage.channel) == "telegram")
                & (col(OutboxMessage.chat_id) == person.telegram_id),
                col(OutboxMessage.target) == f"person:{person.id}",
            )
        )
    )


def _scrub_outbox(session: Session, marks: list[str]) -> int:
    pattern = _pattern(marks)
    if pattern is None:
        return 0
    rows = session.exec(select(OutboxMessage).where(_like_any(OutboxMessage.payload, marks))).all()
    count = 0
    for row in rows:
        scrubbed = _scrub(row.payload, pattern, t(row.language or "zh-Hans", "erasure.redacted"))
        if scrubbed != row.payload:
            row.payload = scrubbed
            session.add(row)
            count += 1
    session.flush()
    return count


def _redact_audit(session: Session, person: Person, marks: list[str]) -> int:
    """Entries by or about the person keep codes and counts; others lose the person's
    strings wherever they occur."""
    own = or_(
        col(AuditEntry.target_person_id) == person.id,
        col(AuditEntry.actor_telegram_id) == person.telegram_id,
    )
    count = 0
    for entry in session.exec(select(AuditEntry).where(own)).all():
        if entry.actor_telegram_id == person.telegram_id:
            entry.actor_telegram_id = None
            entry.target_person_id = entry.target_person_id or person.id
        entry.detail = {
            key: value
            for key, value in (entry.detail or {}).items()
            if value is None
            or isinstance(value, bool | int | float)
            or (key in _AUDIT_CODES and isinstance(value, str) and len(value) <= 40)
        }
        session.add(entry)
        count += 1
    pattern = _pattern(marks)
    if pattern is not None:
        for entry in session.exec(
            select(AuditEntry).where(~own, _like_any(AuditEntry.detail, marks))
        ).all():
            entry.detail = _scrub(entry.detail, pattern, "[deleted]")
            session.add(entry)
            count += 1
    session.flush()
    return count


def _retitle_faqs(session: Session, person_id: int) -> list[str]:
    """An answer an admin saved from the person's question stays in the knowledge base for
    everyone, but no longer under the person's words: every version is retitled "FAQ n"."""
    saved = select(KbHandoff).where(
        KbHandoff.person_id == person_id, col(KbHandoff.faq_doc_id).is_not(None)
    )
    retitled: list[str] = []
    for handoff in session.exec(saved).all():
        versions = select(KbDocument).where(KbDocument.doc_id == handoff.faq_doc_id)
        for doc in session.exec(versions).all():
            title = str(t(doc.language, "kb.faq.erased_title", number=handoff.id))
            _, _, rest = doc.content.partition("\n---\n\n")
            body = rest.split("\n\n", 1)[1] if rest.startswith("## ") and "\n\n" in rest else ""
            day = clock.now().date()
            with contextlib.suppress(ValueError):
                day = date.fromisoformat(doc.issued)
            doc.content = store.faq_text(
                doc.doc_id, doc.language, title, body or (handoff.answer or ""), doc.issuer, day
            )
            doc.title = title
            doc.sha256 = documents.parse(doc.content, doc.filename).sha256
            session.add(doc)
        retitled.append(str(handoff.faq_doc_id))
    return retitled


def _drop_state(session: Session, person: Person) -> None:
    """Form drafts, conversation states and waits of the person (keys: their Telegram id,
    ``[chat, user]`` pairs, or their person id for admins' copies of their request)."""
    tid = str(person.telegram_id)
    session.execute(
        delete(BotState).where(
            or_(
                col(BotState.key) == tid,
                col(BotState.key).like(f"[%, {tid}]"),
                (col(BotState.kind) == "approval_messages") & (col(BotState.key) == str(person.id)),
            )
        )
    )
    if person.telegram_id is not None:  # what they sent the bot, kept until handled
        inbox.forget_user(session, person.telegram_id)
