"""People Telegram refuses messages to (they blocked the bot, deleted their account...):
marked unreachable, the admins told once, and marked reachable again when they come back."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models import OutcomeCode, Person, Priority, Role, Status
from services import clock
from services.i18n import t
from services.outbox.producer import enqueue
from services.people import name_of


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
                name=name_of(p, str(p.telegram_id)),
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
