"""Broadcasts: an admin's notice to many people, each in their language, with optional
confirmation ("Received ✓"), live progress, a final report, scheduling and cancelling.

Every recipient's message is an outbox row (source ``broadcast:<id>``, key
``broadcast:<id>:p<person id>[:r<n>]``), so delivery follows the engine's rules
(priority BROADCAST, limits, retries, restarts) and the per-recipient status is read from
the outbox. The admin's progress message and report have source ``broadcast-admin:<id>``.

Audiences: everyone (active cadres, duty officers and admins; emergency contacts never get
broadcasts), a prefecture, a role, a cohort tag (`tag_people`), or people with an overdue
item. "Overdue" is pluggable: features that track due items (care schedules, check-ins)
call `register_overdue_source`; until one does, that audience is empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session, col, func, select

from models import (
    Audience,
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    OutboxMessage,
    OutboxStatus,
    Person,
    PersonTag,
    Priority,
    Role,
    Status,
)
from models.outbox import UNREACHABLE_CODES
from services import audit, clock, outbox, tables
from services.i18n import t
from services.outbox import NewMessage
from services.people import name_of
from services.postings import load_postings
from services.validation import parse_int

TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
AUDIENCE_ROLES = (Role.CADRE, Role.DUTY_OFFICER, Role.ADMIN)
KINDS = ("text", "photo", "document")


def source_of(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


def admin_source_of(broadcast_id: int) -> str:
    return f"broadcast-admin:{broadcast_id}"


def progress_key(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}:progress"


# ---------------------------------------------------------------------- audiences

OverdueSource = Callable[[Session], Iterable[int]]
_overdue_sources: dict[str, OverdueSource] = {}


def register_overdue_source(name: str, source: OverdueSource) -> None:
    """`source(session)` returns the ids of people with an overdue item of one kind (e.g.
    a missed rest or examination). The "overdue" audience is the union of all sources."""
    _overdue_sources[name] = source


def overdue_sources() -> list[str]:
    return sorted(_overdue_sources)


def _audience_query(session: Session, audience: Audience, value: str | None) -> Any:
    query = select(Person).where(
        Person.status == Status.ACTIVE, col(Person.role).in_([r.value for r in AUDIENCE_ROLES])
    )
    if audience == Audience.PREFECTURE:
        query = query.where(Person.prefecture == value)
    elif audience == Audience.ROLE:
        query = query.where(Person.role == value)
    elif audience == Audience.TAG:
        tagged = select(PersonTag.person_id).where(PersonTag.tag == value)
        query = query.where(col(Person.id).in_(tagged))
    elif audience == Audience.OVERDUE:
        ids: set[int] = set()
        for source in _overdue_sources.values():
            ids.update(source(session))
        query = query.where(col(Person.id).in_(sorted(ids)))
    return query


def audience_people(session: Session, audience: Audience, value: str | None) -> list[Person]:
    query = _audience_query(session, audience, value)
    return list(session.exec(query.order_by(col(Person.id))))


def audience_count(session: Session, audience: Audience, value: str | None) -> dict[str, int]:
    """Recipients per language (``zh-Hans``, ``en``)."""
    people = audience_people(session, audience, value)
    counts: dict[str, int] = {}
    for person in people:
        counts[person.language] = counts.get(person.language, 0) + 1
    return counts


def audience_label(lang: str, audience: Audience | str, value: str | None) -> str:
    audience = Audience(audience)
    if audience == Audience.PREFECTURE and value:
        try:
            name = load_postings().name(value, lang, short=True)
        except KeyError:
            name = value
        return t(lang, "broadcast.audience.prefecture_label", name=name)
    if audience == Audience.ROLE and value:
        return t(lang, "broadcast.audience.role_label", role=t(lang, f"role.{value}"))
    if audience == Audience.TAG and value:
        return t(lang, "broadcast.audience.tag_label", tag=value)
    if audience == Audience.OVERDUE:
        return t(lang, "broadcast.audience.overdue")
    return t(lang, "broadcast.audience.all")


# --------------------------------------------------------------------------- tags


def normalize_tag(raw: str) -> str | None:
    tag = raw.strip().lower()
    return tag if TAG_PATTERN.match(tag) else None


def _resolve(session: Session, refs: Iterable[str]) -> tuple[list[Person], list[str]]:
    """People named by Telegram user id (``123456``) or person id (``#12``)."""
    found: list[Person] = []
    unknown: list[str] = []
    for ref in refs:
        person = None
        number = parse_int(ref[1:] if ref.startswith("#") else ref, max_digits=19)
        if number is not None and ref.startswith("#"):
            person = session.get(Person, number)
        elif number is not None:
            person = session.exec(select(Person).where(Person.telegram_id == number)).first()
        if person is None:
            unknown.append(ref)
        elif person not in found:
            found.append(person)
    return found, unknown


def tag_people(
    session: Session, actor: Person, tag: str, refs: Iterable[str]
) -> tuple[list[Person], list[str]]:
    """Give `tag` to the people named in `refs`. Returns (tagged, unknown refs)."""
    people, unknown = _resolve(session, refs)
    for person in people:
        exists = session.exec(
            select(PersonTag).where(PersonTag.person_id == person.id, PersonTag.tag == tag)
        ).first()
        if exists is None:
            assert person.id is not None
            session.add(PersonTag(person_id=person.id, tag=tag))
            audit.record(
                session, "person.tag", actor=actor.telegram_id, target_person_id=person.id, tag=tag
            )
    return people, unknown


def untag_people(
    session: Session, actor: Person, tag: str, refs: Iterable[str]
) -> tuple[list[Person], list[str]]:
    people, unknown = _resolve(session, refs)
    for person in people:
        row = session.exec(
            select(PersonTag).where(PersonTag.person_id == person.id, PersonTag.tag == tag)
        ).first()
        if row is not None:
            session.delete(row)
            audit.record(
                session,
                "person.untag",
                actor=actor.telegram_id,
                target_person_id=person.id,
                tag=tag,
            )
    return people, unknown


def tags(session: Session) -> list[tuple[str, int]]:
    """Every tag in use with how many people have it."""
    rows = session.exec(
        select(PersonTag.tag, func.count()).group_by(PersonTag.tag).order_by(PersonTag.tag)
    )
    return [(tag, int(n)) for tag, n in rows]


# ------------------------------------------------------------------- broadcasting


@dataclass
class Draft:
    """What the admin composed in /broadcast."""

    kind: str  # text | photo | document
    texts: dict[str, str]  # language -> Telegram HTML (text or caption)
    file_id: str | None = None
    audience: Audience = Audience.ALL
    audience_value: str | None = None
    confirm_required: bool = False
    scheduled_at: datetime | None = None


def create(session: Session, actor: Person, admin_chat_id: int, draft: Draft) -> Broadcast:
    """Store the broadcast; start it now, or leave it scheduled (the caller adds the job)."""
    now = clock.now()
    broadcast = Broadcast(
        created_by=actor.id,
        admin_chat_id=admin_chat_id,
        admin_language=actor.language,
        status=BroadcastStatus.SCHEDULED,
        kind=draft.kind,
        file_id=draft.file_id,
        texts=dict(draft.texts),
        audience=draft.audience,
        audience_value=draft.audience_value,
        confirm_required=draft.confirm_required,
        created_at=now,
        scheduled_at=draft.scheduled_at
        if draft.scheduled_at and draft.scheduled_at > now
        else None,
    )
    session.add(broadcast)
    session.flush()
    audit.record(
        session,
        "broadcasts.created",
        actor=actor.telegram_id,
        broadcast=broadcast.id,
        audience=str(draft.audience),
        value=draft.audience_value,
        scheduled=broadcast.scheduled_at.isoformat() if broadcast.scheduled_at else None,
    )
    if broadcast.scheduled_at is None:
        start(session, broadcast.id)  # type: ignore[arg-type]
    return broadcast


def notice_text(broadcast: Broadcast, lang: str) -> str:
    """The notice as a recipient in `lang` reads it (Telegram HTML)."""
    texts = broadcast.texts or {}
    body = texts.get(lang) or next((v for v in texts.values() if v), "")
    parts = [t(lang, "broadcast.notice.header")]
    if body:
        parts.append(body)
    if broadcast.confirm_required:
        parts.append(t(lang, "broadcast.notice.please_confirm"))
    return "\n\n".join(parts)


def _notice(broadcast: Broadcast, person_id: int, chat_id: int, lang: str, key: str) -> NewMessage:
    assert broadcast.id is not None
    markup = None
    if broadcast.confirm_required:
        markup = outbox.inline_keyboard(
            [[(t(lang, "broadcast.received_button"), f"bc:ok:{broadcast.id}")]]
        )
    payload: dict[str, Any] = {}
    if broadcast.kind in ("photo", "document"):
        payload[broadcast.kind] = broadcast.file_id
    return NewMessage(
        chat_id=chat_id,
        idempotency_key=key,
        text=notice_text(broadcast, lang),
        priority=Priority.BROADCAST,
        person_id=person_id,
        language=lang,
        reply_markup=markup,
        kind=broadcast.kind,
        payload=payload,
        source=source_of(broadcast.id),
    )


def start(session: Session, broadcast_id: int) -> Broadcast | None:
    """Resolve the audience and queue everyone's message (once: a second call does nothing)."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.status != BroadcastStatus.SCHEDULED:
        return None
    people = audience_people(session, Audience(broadcast.audience), broadcast.audience_value)
    if people:
        session.execute(
            insert(BroadcastRecipient.__table__),  # type: ignore[attr-defined]
            [
                {
                    "broadcast_id": broadcast_id,
                    "person_id": p.id,
                    "chat_id": p.telegram_id,
                    "language": p.language,
                    "confirmed_at": None,
                }
                for p in people
            ],
        )
    outbox.enqueue_many(
        session,
        (
            _notice(
                broadcast, p.id, p.telegram_id, p.language, f"{source_of(broadcast_id)}:p{p.id}"
            )
            for p in people
            if p.id is not None
        ),
    )
    now = clock.now()
    broadcast.status = BroadcastStatus.SENDING
    broadcast.total = len(people)
    broadcast.started_at = now
    session.add(broadcast)
    session.flush()
    stats_now = stats(session, broadcast)
    lang = broadcast.admin_language
    outbox.enqueue(
        session,
        chat_id=broadcast.admin_chat_id,
        person_id=broadcast.created_by,
        language=lang,
        text=progress_text(lang, broadcast, stats_now),
        priority=Priority.URGENT,
        idempotency_key=progress_key(broadcast_id),
        source=admin_source_of(broadcast_id),
    )
    audit.record(
        session, "broadcasts.started", actor=None, broadcast=broadcast_id, total=len(people)
    )
    return broadcast


@dataclass
class Stats:
    total: int = 0
    sent: int = 0
    failed: int = 0
    blocked: int = 0
    cancelled: int = 0
    pending: int = 0
    confirmed: int = 0

    @property
    def finished(self) -> bool:
        return self.pending == 0

    @property
    def delivery_rate(self) -> float:
        return self.sent / self.total if self.total else 0.0

    @property
    def confirmation_rate(self) -> float:
        return self.confirmed / self.sent if self.sent else 0.0

    def key(self) -> str:
        return f"{self.sent}/{self.failed}/{self.blocked}/{self.cancelled}/{self.total}"


def _latest_rows(source: str) -> Any:
    return (
        select(func.max(OutboxMessage.id))
        .where(OutboxMessage.source == source)
        .group_by(col(OutboxMessage.person_id))
    )


def stats(session: Session, broadcast: Broadcast) -> Stats:
    """Counts over each recipient's latest message (a re-send replaces the first)."""
    assert broadcast.id is not None
    source = source_of(broadcast.id)
    rows = session.exec(
        select(OutboxMessage.status, OutboxMessage.outcome_code, func.count())
        .where(col(OutboxMessage.id).in_(_latest_rows(source)))
        .group_by(col(OutboxMessage.status), col(OutboxMessage.outcome_code))
    )
    result = Stats(total=broadcast.total)
    for status, code, n in rows:
        if status == OutboxStatus.SENT:
            result.sent += n
        elif status == OutboxStatus.FAILED and code in UNREACHABLE_CODES:
            result.blocked += n
        elif status == OutboxStatus.FAILED:
            result.failed += n
        elif status == OutboxStatus.CANCELLED:
            result.cancelled += n
        else:
            result.pending += n
    result.confirmed = session.exec(
        select(func.count())
        .select_from(BroadcastRecipient)
        .where(
            BroadcastRecipient.broadcast_id == broadcast.id,
            col(BroadcastRecipient.confirmed_at).is_not(None),
        )
    ).one()
    return result


def progress_text(lang: str, broadcast: Broadcast, s: Stats) -> str:
    key = "broadcast.progress.running"
    if broadcast.status == BroadcastStatus.DONE:
        key = "broadcast.progress.done"
    elif broadcast.status == BroadcastStatus.CANCELLED:
        key = "broadcast.progress.cancelled"
    return t(
        lang,
        key,
        id=broadcast.id,
        audience=audience_label(lang, broadcast.audience, broadcast.audience_value),
        sent=s.sent,
        failed=s.failed,
        blocked=s.blocked,
        cancelled=s.cancelled,
        pending=s.pending,
        total=s.total,
    )


def report_text(lang: str, broadcast: Broadcast, s: Stats) -> str:
    text = t(
        lang,
        "broadcast.report",
        id=broadcast.id,
        audience=audience_label(lang, broadcast.audience, broadcast.audience_value),
        sent=s.sent,
        failed=s.failed,
        blocked=s.blocked,
        cancelled=s.cancelled,
        total=s.total,
        rate=f"{s.delivery_rate:.0%}",
    )
    if broadcast.confirm_required:
        text += "\n" + confirmed_line(lang, s)
    return text


def confirmed_line(lang: str, s: Stats) -> str:
    """How many of those reached pressed «Received ✓» (a broadcast that asks for it): the
    report and the broadcast's details."""
    return t(
        lang,
        "broadcast.report.confirmed",
        confirmed=s.confirmed,
        sent=s.sent,
        rate=f"{s.confirmation_rate:.0%}",
    )


def report_progress(session: Session) -> list[int]:
    """The progress pass (a scheduler job, every CADRE_BROADCAST_PROGRESS_INTERVAL s):
    edit each running broadcast's progress message when its counts changed, and finish the
    ones whose every message has an outcome (final edit and report). Returns those ids."""
    finished: list[int] = []
    running = session.exec(
        select(Broadcast).where(Broadcast.status == BroadcastStatus.SENDING)
    ).all()
    for broadcast in running:
        assert broadcast.id is not None
        s = stats(session, broadcast)
        lang = broadcast.admin_language
        if s.finished:
            broadcast.status = BroadcastStatus.DONE
            broadcast.finished_at = clock.now()
            broadcast.last_progress = s.key()
            session.add(broadcast)
            outbox.enqueue_edit(
                session,
                edit_of=progress_key(broadcast.id),
                text=progress_text(lang, broadcast, s),
                source=admin_source_of(broadcast.id),
            )
            outbox.enqueue(
                session,
                chat_id=broadcast.admin_chat_id,
                person_id=broadcast.created_by,
                language=lang,
                text=report_text(lang, broadcast, s),
                reply_markup=outbox.inline_keyboard(_report_buttons(lang, broadcast)),
                priority=Priority.URGENT,
                idempotency_key=f"broadcast:{broadcast.id}:report:{broadcast.resends}",
                source=admin_source_of(broadcast.id),
            )
            audit.record(
                session,
                "broadcasts.finished",
                actor=None,
                broadcast=broadcast.id,
                sent=s.sent,
                failed=s.failed,
                blocked=s.blocked,
            )
            finished.append(broadcast.id)
        elif s.key() != broadcast.last_progress:
            broadcast.last_progress = s.key()
            broadcast.progress_seq += 1
            session.add(broadcast)
            outbox.enqueue_edit(
                session,
                edit_of=progress_key(broadcast.id),
                text=progress_text(lang, broadcast, s),
                source=admin_source_of(broadcast.id),
            )
    return finished


def _report_buttons(lang: str, broadcast: Broadcast) -> list[list[tuple[str, str]]]:
    return [
        [
            (t(lang, "broadcast.button.details"), f"bc:v:{broadcast.id}"),
            (t(lang, "broadcast.button.csv"), f"bc:csv:{broadcast.id}"),
        ]
    ]


def get(session: Session, broadcast_id: int) -> Broadcast | None:
    return session.get(Broadcast, broadcast_id)


def scheduled(session: Session) -> list[Broadcast]:
    return list(
        session.exec(
            select(Broadcast)
            .where(Broadcast.status == BroadcastStatus.SCHEDULED)
            .order_by(col(Broadcast.id))
        )
    )


def cancel(session: Session, actor: Person, broadcast_id: int) -> Broadcast | None:
    """Cancel a scheduled or running broadcast: messages not sent yet are dropped (the
    caller also tells the worker, `Delivery.forget`). None when it had already ended."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.status not in (
        BroadcastStatus.SCHEDULED,
        BroadcastStatus.SENDING,
    ):
        return None
    was_running = broadcast.status == BroadcastStatus.SENDING
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.cancelled_at = clock.now()
    session.add(broadcast)
    dropped = outbox.cancel(session, source=source_of(broadcast_id))
    if was_running:
        s = stats(session, broadcast)
        outbox.enqueue_edit(
            session,
            edit_of=progress_key(broadcast_id),
            text=progress_text(broadcast.admin_language, broadcast, s),
            source=admin_source_of(broadcast_id),
        )
    audit.record(
        session,
        "broadcasts.cancelled",
        actor=actor.telegram_id,
        broadcast=broadcast_id,
        dropped=dropped,
    )
    return broadcast


def confirm(session: Session, broadcast_id: int, telegram_id: int) -> str:
    """A recipient pressed "Received ✓": ``ok``, ``already`` or ``unknown``."""
    row = session.exec(
        select(BroadcastRecipient)
        .join(Person, col(Person.id) == BroadcastRecipient.person_id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id, Person.telegram_id == telegram_id)
    ).first()
    if row is None:
        return "unknown"
    if row.confirmed_at is not None:
        return "already"
    row.confirmed_at = clock.now()
    session.add(row)
    return "ok"


def resend_unconfirmed(session: Session, actor: Person, broadcast_id: int) -> int:
    """Send the notice again to recipients who received it and have not confirmed.
    Returns how many; 0 when there is nobody to remind (or it needs no confirmation)."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or not broadcast.confirm_required:
        return 0
    if broadcast.status not in (BroadcastStatus.DONE, BroadcastStatus.SENDING):
        return 0
    rows = recipients(session, broadcast_id)
    targets = [r for r in rows if r.confirmed_at is None and r.status == "sent"]
    if not targets:
        return 0
    broadcast.resends += 1
    n = broadcast.resends
    outbox.enqueue_many(
        session,
        (
            _notice(
                broadcast,
                r.person_id,
                r.chat_id,
                r.language,
                f"{source_of(broadcast_id)}:p{r.person_id}:r{n}",
            )
            for r in targets
        ),
    )
    broadcast.status = BroadcastStatus.SENDING
    broadcast.finished_at = None
    broadcast.last_progress = None
    session.add(broadcast)
    audit.record(
        session,
        "broadcasts.resent",
        actor=actor.telegram_id,
        broadcast=broadcast_id,
        count=len(targets),
    )
    return len(targets)


@dataclass
class RecipientRow:
    person_id: int
    telegram_id: int
    chat_id: int
    name: str
    language: str
    status: str  # sent | failed | blocked | pending | cancelled
    cause: str | None
    attempts: int
    sent_at: datetime | None
    confirmed_at: datetime | None
    messages: int  # 1 + re-sends


def recipients(session: Session, broadcast_id: int) -> list[RecipientRow]:
    """Each recipient with the status of their latest message."""
    source = source_of(broadcast_id)
    messages: dict[int, OutboxMessage] = {}
    count: dict[int, int] = {}
    for message in session.exec(
        select(OutboxMessage).where(OutboxMessage.source == source).order_by(col(OutboxMessage.id))
    ):
        if message.person_id is not None:
            messages[message.person_id] = message
            count[message.person_id] = count.get(message.person_id, 0) + 1
    rows: list[RecipientRow] = []
    query = (
        select(BroadcastRecipient, Person)
        .join(Person, col(Person.id) == BroadcastRecipient.person_id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id)
        .order_by(col(BroadcastRecipient.id))
    )
    for recipient, person in session.exec(query):
        latest = messages.get(recipient.person_id)
        status, cause, attempts, sent_at = "pending", None, 0, None
        if latest is not None:
            status = _status_word(latest)
            cause = latest.outcome
            attempts = latest.attempts
            sent_at = latest.sent_at
        rows.append(
            RecipientRow(
                person_id=recipient.person_id,
                telegram_id=person.telegram_id,
                chat_id=recipient.chat_id,
                name=name_of(person, ""),
                language=recipient.language,
                status=status,
                cause=cause,
                attempts=attempts,
                sent_at=sent_at,
                confirmed_at=recipient.confirmed_at,
                messages=count.get(recipient.person_id, 0),
            )
        )
    return rows


def _status_word(message: OutboxMessage) -> str:
    if message.status == OutboxStatus.SENT:
        return "sent"
    if message.status == OutboxStatus.FAILED:
        return "blocked" if message.outcome_code in UNREACHABLE_CODES else "failed"
    if message.status == OutboxStatus.CANCELLED:
        return "cancelled"
    return "pending"


def recent(session: Session, limit: int = 10) -> list[tuple[Broadcast, Stats]]:
    rows = session.exec(select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit))
    return [(b, stats(session, b)) for b in rows]


CSV_COLUMNS = (
    "person_id",
    "telegram_id",
    "name",
    "language",
    "status",
    "cause",
    "attempts",
    "messages",
    "sent_at",
    "confirmed_at",
)


def csv_export(session: Session, actor: Person, broadcast_id: int, zone: ZoneInfo) -> bytes:
    """Per-recipient status as CSV (services.tables: UTF-8 with BOM, formulas defused)."""

    def local(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""

    rows = [
        [
            row.person_id,
            row.telegram_id,
            row.name,
            row.language,
            row.status,
            "" if row.status == "sent" else (row.cause or ""),
            row.attempts,
            row.messages,
            local(row.sent_at),
            local(row.confirmed_at),
        ]
        for row in recipients(session, broadcast_id)
    ]
    audit.record(session, "broadcasts.csv", actor=actor.telegram_id, broadcast=broadcast_id)
    return tables.to_csv(CSV_COLUMNS, rows)


def export_for_person(session: Session, person_id: int) -> dict[str, Any]:
    """For /mydata: the person's cohort tags, the broadcasts they received (and when they
    confirmed), and when messages were sent to them (without the texts, which may be about
    others, e.g. an alert shown to a duty officer)."""
    received = session.exec(
        select(BroadcastRecipient)
        .where(BroadcastRecipient.person_id == person_id)
        .order_by(col(BroadcastRecipient.id))
    )
    messages = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.person_id == person_id)
        .order_by(col(OutboxMessage.id))
    )
    return {
        "tags": sorted(session.exec(select(PersonTag.tag).where(PersonTag.person_id == person_id))),
        "broadcasts_received": [
            {
                "broadcast": r.broadcast_id,
                "confirmed_at": r.confirmed_at.isoformat() if r.confirmed_at else None,
            }
            for r in received
        ],
        "messages": [
            {
                "kind": m.kind,
                "source": m.source,
                "status": str(m.status),
                "created_at": m.created_at.isoformat(),
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            }
            for m in messages
        ],
    }
