"""Registration requests reach every admin through the outbox, with Approve / Reject; the
first decision wins (services.people.decide), and every admin's copy is then updated.
handlers/approvals.py is the Telegram side (the buttons), the board the other
(webapp/admin_views.py)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from models import OutboxMessage, OutboxStatus, Person, Priority
from services import outbox, people
from services.i18n import t
from services.people import name_of
from services.postings import load_postings


def request_text(lang: str, person: Person) -> str:
    postings = load_postings()
    posting = "-"
    if person.county:
        prefecture = postings.name(person.prefecture or "", lang)
        posting = f"{prefecture} · {postings.name(person.county, lang)}"
    return t(
        lang,
        "approve.request",
        real_name=person.real_name or "-",
        display_name=person.display_name or "-",
        home_unit=person.home_unit or "-",
        posting=posting,
        altitude=person.posting_altitude_m if person.posting_altitude_m is not None else "-",
    )


def source(person_id: int | None) -> str:
    return f"approval:{person_id}"


def request_rows(lang: str, person_id: int | None) -> list[list[tuple[str, str]]]:
    """Approve and reject on separate rows (a slip of the thumb never rejects)."""
    return [
        [(t(lang, "approve.yes"), f"adm:ok:{person_id}")],
        [(t(lang, "approve.no"), f"adm:no:{person_id}")],
    ]


def queue_requests(session: Session, person: Person) -> None:
    """Queue the request to every admin (urgent priority, through the delivery engine).
    The worker records each message's Telegram id, so that all can be updated."""
    for admin in people.admins(session):
        lang = admin.language
        outbox.enqueue_to(
            session,
            admin,
            text=request_text(lang, person),
            reply_markup=outbox.inline_keyboard(request_rows(lang, person.id)),
            priority=Priority.URGENT,
            idempotency_key=f"{source(person.id)}:a{admin.id}",
            source=source(person.id),
        )


def after_decision(
    session: Session, person: Person, admin: Person, outcome: str, notice: dict[str, Any]
) -> bool:
    """Update every admin's copy of the request (a copy not sent yet is simply dropped)
    and queue the decision to the person. False when no copy was queued (older requests)."""
    rows = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.source == source(person.id),
            OutboxMessage.kind == "text",
            col(OutboxMessage.idempotency_key).startswith(f"{source(person.id)}:a"),
        )
    ).all()
    decided_by = name_of(admin, str(admin.telegram_id))
    unsent = [r.idempotency_key for r in rows if r.status == OutboxStatus.PENDING]
    if unsent:
        outbox.cancel(session, keys=unsent)
    for row in rows:
        if row.idempotency_key in unsent or row.status in (
            OutboxStatus.FAILED,
            OutboxStatus.CANCELLED,
        ):
            continue
        lang = row.language or admin.language
        outbox.enqueue_edit(
            session,
            edit_of=row.idempotency_key,
            text=request_text(lang, person) + "\n\n" + t(lang, outcome, admin=decided_by),
            priority=Priority.URGENT,
            source=source(person.id),
        )
    outbox.enqueue_to(
        session,
        person,
        priority=Priority.URGENT,
        idempotency_key=f"{source(person.id)}:decision",
        source=source(person.id),
        **notice,
    )
    return bool(rows)
