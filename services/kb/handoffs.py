"""Questions sent to a person ("Ask a person"), the admins' replies and reminders.

Open handoffs are reminded to the admins `FIRST_REMINDER` after they were asked, then every
`REPEAT_REMINDER` until someone replies: `remind_admins` is the scheduler's entry point
(scheduler/kb.py).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from models import HandoffStatus, KbHandoff, OutboxMessage, Person, Priority
from services import audit, clock, outbox, people
from services.i18n import t
from services.kb import questions
from services.kb.text import short
from services.people import name_of
from services.postings import load_postings
from services.screens import SCREEN, lines_on_phone
from services.validation import number_text

FIRST_REMINDER = timedelta(hours=2)
REPEAT_REMINDER = timedelta(hours=12)
REMINDER_LIST = 2  # questions listed in a reminder (one phone screen); /questions has all
MAX_ANSWER = 3500  # leaves room for the framing text within Telegram's 4,096 characters
SCREEN_QUESTION = 100  # characters of a question shortened on the admins' card in the chat
COPY_QUESTION = 120  # characters of the question on an admin's copy once it is answered
COPY_ANSWER = 200  # and of the answer


def open_handoff(
    session: Session,
    question_id: int,
    person: Person,
    guess_topic: str | None = None,
    guess_title: str | None = None,
) -> tuple[KbHandoff, bool] | None:
    """Hand a question to the admins. None when `person` did not ask it; the handoff and
    False when it was already handed over (pressing the button twice sends it once)."""
    assert person.id is not None
    question = questions.owned(session, question_id, person.id)
    if question is None:
        return None
    existing = session.exec(select(KbHandoff).where(KbHandoff.question_id == question_id)).first()
    if existing is not None:
        return existing, False
    handoff = KbHandoff(
        question_id=question_id,
        person_id=person.id,
        asker_telegram_id=person.telegram_id,
        language=question.language,
        question=question.text,
        guess_topic=guess_topic,
        guess_title=(guess_title or "")[:200] or None,
        created_at=clock.now(),
    )
    session.add(handoff)
    session.flush()
    audit.record(
        session,
        "knowledge.handoff.opened",
        actor=person.telegram_id,
        target_person_id=person.id,
        handoff=handoff.id,
    )
    return handoff, True


def get(session: Session, handoff_id: int) -> KbHandoff | None:
    return session.get(KbHandoff, handoff_id)


def copy_key(handoff_id: int | None, admin_chat_id: int) -> str:
    """The outbox key of an admin's copy of a handed-over question (edited later)."""
    return f"kb:handoff:{handoff_id}:admin:{admin_chat_id}"


def admin_copies(session: Session, handoff_id: int | None) -> set[tuple[int, int]]:
    """(chat id, message id) of every admin's copy of the question that has been sent."""
    rows = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.source == f"kb:handoff:{handoff_id}",
            col(OutboxMessage.idempotency_key).contains(":admin:"),
            col(OutboxMessage.telegram_message_id).is_not(None),
        )
    )
    copies = {(row.chat_id, int(row.telegram_message_id or 0)) for row in rows}
    handoff = session.get(KbHandoff, handoff_id) if handoff_id is not None else None
    if handoff is not None:  # copies sent before the outbox carried them
        copies |= {(chat, message) for chat, message in handoff.admin_messages}
    return copies


def by_admin_message(
    session: Session, chat_id: int, message_id: int, text: str | None = None
) -> KbHandoff | None:
    """The handoff whose admin copy is this message (an admin replied to it in Telegram).

    The copy's Telegram message id is recorded just after it is sent; an admin quicker
    than that is matched by the question number in the copy's text, if a copy of that
    question was queued for this very chat."""
    sent = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.telegram_message_id == message_id,
            col(OutboxMessage.source).startswith("kb:handoff:"),
        )
    ).first()
    if sent is not None and sent.source is not None:
        raw_id = sent.source.split(":")[2]
        if raw_id.isdigit():
            return session.get(KbHandoff, int(raw_id))
    number = re.search(r"#([0-9]{1,12})(?![0-9])", number_text(text))
    if number is not None:
        key = copy_key(int(number[1]), chat_id)
        queued = session.exec(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
        ).first()
        if queued is not None:
            return session.get(KbHandoff, int(number[1]))
    recent = clock.now() - timedelta(days=30)
    candidates = session.exec(
        select(KbHandoff).where(col(KbHandoff.created_at) >= recent).order_by(col(KbHandoff.id))
    )
    for handoff in candidates:
        if [chat_id, message_id] in handoff.admin_messages:
            return handoff
    return None


def answer(session: Session, handoff_id: int, admin: Person, text: str) -> KbHandoff | None:
    """Record an admin's reply; None if the handoff is gone (the asker deleted their data)."""
    handoff = session.get(KbHandoff, handoff_id)
    if handoff is None:
        return None
    handoff.answer = text.strip()[:MAX_ANSWER]
    handoff.answered_by = admin.telegram_id
    handoff.answered_at = clock.now()
    handoff.status = HandoffStatus.ANSWERED
    session.add(handoff)
    audit.record(
        session,
        "knowledge.handoff.answered",
        actor=admin.telegram_id,
        target_person_id=handoff.person_id,
        handoff=handoff.id,
    )
    return handoff


def mark_saved(session: Session, handoff_id: int, doc_id: str, admin: Person) -> None:
    handoff = session.get(KbHandoff, handoff_id)
    if handoff is not None:
        handoff.faq_doc_id = doc_id
        session.add(handoff)
        audit.record(
            session, "knowledge.handoff.saved", actor=admin.telegram_id, handoff=handoff.id
        )


def open_handoffs(session: Session, limit: int = 20, offset: int = 0) -> list[KbHandoff]:
    """The questions waiting for a person, the oldest first (a page of them for /questions)."""
    query = (
        select(KbHandoff)
        .where(KbHandoff.status == HandoffStatus.OPEN)
        .order_by(col(KbHandoff.created_at), col(KbHandoff.id))
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(query))


def count_open(session: Session) -> int:
    return len(list(session.exec(select(KbHandoff.id).where(KbHandoff.status == "open"))))


def due_reminders(
    session: Session,
    now: datetime | None = None,
    first: timedelta = FIRST_REMINDER,
    repeat: timedelta = REPEAT_REMINDER,
) -> list[KbHandoff]:
    """Open handoffs to remind the admins of now: `first` after they were asked, then every
    `repeat`. Call `mark_reminded` once the reminders are sent."""
    now = now or clock.now()
    due = []
    for handoff in open_handoffs(session, limit=500):
        last = handoff.reminded_at or handoff.created_at
        wait = first if handoff.reminders == 0 else repeat
        if last + wait <= now:
            due.append(handoff)
    return due


def mark_reminded(session: Session, handoff_ids: list[int], now: datetime | None = None) -> None:
    now = now or clock.now()
    for handoff_id in handoff_ids:
        handoff = session.get(KbHandoff, handoff_id)
        if handoff is not None:
            handoff.reminded_at = now
            handoff.reminders += 1
            session.add(handoff)


def askers(session: Session, items: list[KbHandoff]) -> dict[int, Person]:
    """The people who asked, by person id (for names in lists)."""
    ids = {h.person_id for h in items}
    if not ids:
        return {}
    found = session.exec(select(Person).where(col(Person.id).in_(ids)))
    return {p.id: p for p in found if p.id is not None}


# ---------------------------------------------------------------------------- reminders


def asker_name(person: Person | None) -> str:
    if person is None:
        return "?"
    return name_of(person, str(person.telegram_id))


def _age(lang: str, since: datetime, now: datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return t(lang, "kb.age.minutes", n=minutes)
    if minutes < 48 * 60:
        return t(lang, "kb.age.hours", n=minutes // 60)
    return t(lang, "kb.age.days", n=minutes // (24 * 60))


def waiting_list(
    lang: str, header: str, items: list[KbHandoff], askers: dict[int, Person], now: datetime
) -> tuple[str, list[list[tuple[str, str]]]]:
    """A list of questions waiting for a person, with a Reply button for each (rows of
    (label, callback data))."""
    lines = [header]
    for handoff in items:
        lines.append(
            t(
                lang,
                "kb.handoff.line",
                id=handoff.id,
                age=_age(lang, handoff.created_at, now),
                name=asker_name(askers.get(handoff.person_id)),
                question=short(handoff.question, 120),
            )
        )
    label = t(lang, "kb.button.reply")
    return "\n".join(lines), [[(f"{label} #{h.id}", f"kb:rp:{h.id}")] for h in items]


def remind_admins(session: Session, now: datetime | None = None) -> int:
    """Remind every admin of the questions still waiting for a person; returns how many
    were due. The reminders are queued in the same transaction that marks the handoffs
    reminded. Meant to run every few minutes."""
    now = now or clock.now()
    due = due_reminders(session, now)
    if not due:
        return 0
    asked_by = askers(session, due)
    shown = due[:REMINDER_LIST]
    for admin in people.admins(session):
        lang = admin.language
        header = t(lang, "kb.handoff.reminder", count=len(due))
        text, rows = waiting_list(lang, header, shown, asked_by, now)
        if len(due) > len(shown):
            text += "\n" + t(lang, "kb.handoff.reminder_more", count=len(due) - len(shown))
        outbox.enqueue(
            session,
            chat_id=admin.telegram_id,
            person_id=admin.id,
            text=text,
            reply_markup=outbox.inline_keyboard(rows),
            priority=Priority.REMINDER,
            idempotency_key=f"kb:handoff-reminder:{now.isoformat()}:{admin.telegram_id}",
            language=admin.language,
            source="kb:handoff-reminders",
        )
    mark_reminded(session, [h.id for h in due if h.id is not None], now)
    return len(due)


# ---------------------------------------------------------------------------- the admins' copies


def _posting(lang: str, person: Person | None) -> str:
    if person is None or not person.county:
        return "-"
    postings = load_postings()
    return f"{postings.name(person.prefecture or '', lang)} · {postings.name(person.county, lang)}"


def admin_text(lang: str, handoff: KbHandoff, asker: Person | None, *, screen: bool = False) -> str:
    """The question as the admins see it: whole on the board; `screen`: in the chat, one
    phone screen, a question too long for it shortened (the whole of it comes with the
    reply prompt: `shortened`)."""
    text = _admin_card(lang, handoff, asker, handoff.question)
    if screen and lines_on_phone(text) > SCREEN:
        question = short(handoff.question, SCREEN_QUESTION)
        text = _admin_card(lang, handoff, asker, f"{question} {t(lang, 'kb.handoff.question_cut')}")
    return text


def shortened(lang: str, handoff: KbHandoff, asker: Person | None) -> bool:
    """Whether the chat shows the question shortened (its card would not fit one phone
    screen), so that the admin who replies is sent it whole first."""
    return lines_on_phone(_admin_card(lang, handoff, asker, handoff.question)) > SCREEN


def _admin_card(lang: str, handoff: KbHandoff, asker: Person | None, question: str) -> str:
    return t(
        lang,
        "kb.handoff.to_admin",
        id=handoff.id,
        name=asker_name(asker),
        posting=_posting(lang, asker),
        question=question,
        guess=handoff.guess_title or t(lang, "kb.handoff.no_guess"),
    )


def queue_to_admins(session: Session, handoff: KbHandoff, asker: Person) -> None:
    """Every admin gets the question, through the outbox (stored, retried, rate-limited)."""
    for admin in people.admins(session):
        lang = admin.language
        outbox.enqueue(
            session,
            chat_id=admin.telegram_id,
            person_id=admin.id,
            text=admin_text(lang, handoff, asker, screen=True),
            reply_markup=outbox.inline_keyboard(
                [[(t(lang, "kb.button.reply"), f"kb:rp:{handoff.id}")]]
            ),
            priority=Priority.URGENT,
            idempotency_key=copy_key(handoff.id, admin.telegram_id),
            language=lang,
            source=f"kb:handoff:{handoff.id}",
        )


def queue_copy_edits(
    session: Session, handoff: KbHandoff, asker: Person | None, note: str, admin: Person
) -> None:
    """Every admin's copy of the question says what happened (`note`: answered, saved as
    an FAQ), in the admin's language: one screen (issue 16), the question and the answer
    shortened (the admin who answered has both in full, and an FAQ is saved from them)."""
    for recipient in people.admins(session):
        lang = recipient.language
        text = t(
            lang,
            "kb.handoff.copy_head",
            id=handoff.id,
            name=asker_name(asker),
            question=short(handoff.question, COPY_QUESTION),
        )
        text += "\n" + t(
            lang, note, admin=asker_name(admin), answer=short(handoff.answer or "", COPY_ANSWER)
        )
        markup = None
        if not handoff.faq_doc_id:
            markup = outbox.inline_keyboard(
                [[(t(lang, "kb.button.save_faq"), f"kb:faq:{handoff.id}")]]
            )
        outbox.enqueue_edit(
            session,
            edit_of=copy_key(handoff.id, recipient.telegram_id),
            text=text,
            reply_markup=markup,
            source=f"kb:handoff:{handoff.id}",
        )


def reply(
    session: Session, handoff_id: int, admin: Person, text: str
) -> tuple[KbHandoff, Person | None] | None:
    """An admin's answer to a handed-over question (from the chat or the board): stored,
    queued to the asker, and every admin's copy of the question updated, in one
    transaction. None when the question is gone."""
    handoff = answer(session, handoff_id, admin, text)
    if handoff is None:
        return None
    asker = people.get(session, handoff.person_id)
    outbox.enqueue(
        session,
        chat_id=handoff.asker_telegram_id,
        person_id=handoff.person_id,
        text=t(
            handoff.language,
            "kb.handoff.reply_to_asker",
            question=short(handoff.question, 300),
            answer=handoff.answer or "",
            admin=asker_name(admin),
        ),
        priority=Priority.URGENT,
        idempotency_key=f"kb:handoff:{handoff.id}:reply:{clock.now().isoformat()}",
        language=handoff.language,
        source=f"kb:handoff:{handoff.id}",
    )
    queue_copy_edits(session, handoff, asker, "kb.handoff.answered_note", admin)
    return handoff, asker
