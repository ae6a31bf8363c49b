"""Registration requests reach every admin with Approve / Reject; the first decision wins."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler

from handlers import menus
from handlers.common import Context, answer, buttons, deps, guarded
from models import OutboxMessage, OutboxStatus, Person, Priority, Status
from services import outbox, people, state
from services.i18n import t
from services.permissions import Action
from services.postings import load_postings
from services.validation import parse_int

_SENT = "approval_messages"  # before requests went through the outbox (legacy)


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


async def notify_admins(context: Context, person: Person) -> None:
    """Queue the request to every admin (urgent priority, through the delivery engine).
    The worker records each message's Telegram id, so that all can be updated."""
    d = deps(context)
    await d.db.run(_queue_requests, person)


def _source(person_id: int | None) -> str:
    return f"approval:{person_id}"


def _request_rows(lang: str, person_id: int | None) -> list[list[tuple[str, str]]]:
    """Approve and reject on separate rows (a slip of the thumb never rejects)."""
    return [
        [(t(lang, "approve.yes"), f"adm:ok:{person_id}")],
        [(t(lang, "approve.no"), f"adm:no:{person_id}")],
    ]


def _reject_rows(lang: str, person_id: int) -> list[list[tuple[str, str]]]:
    """Reject asks first: yes, or back to the request's buttons."""
    return [
        [(t(lang, "approve.reject_yes"), f"adm:noy:{person_id}")],
        [(t(lang, "people.btn.back"), f"adm:back:{person_id}")],
    ]


def _queue_requests(session: Session, person: Person) -> None:
    for admin in people.admins(session):
        lang = admin.language
        outbox.enqueue_to(
            session,
            admin,
            text=request_text(lang, person),
            reply_markup=outbox.inline_keyboard(_request_rows(lang, person.id)),
            priority=Priority.URGENT,
            idempotency_key=f"{_source(person.id)}:a{admin.id}",
            source=_source(person.id),
        )


def _after_decision(
    session: Session, person: Person, admin: Person, outcome: str, notice: dict[str, Any]
) -> bool:
    """Update every admin's copy of the request (a copy not sent yet is simply dropped)
    and queue the decision to the person. False when no copy was queued (older requests)."""
    rows = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.source == _source(person.id),
            OutboxMessage.kind == "text",
            col(OutboxMessage.idempotency_key).startswith(f"{_source(person.id)}:a"),
        )
    ).all()
    decided_by = admin.real_name or admin.display_name or str(admin.telegram_id)
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
            source=_source(person.id),
        )
    outbox.enqueue_to(
        session,
        person,
        priority=Priority.URGENT,
        idempotency_key=f"{_source(person.id)}:decision",
        source=_source(person.id),
        **notice,
    )
    return bool(rows)


async def announce_decision(bot: Any, db: Any, admin: Person, person: Person) -> bool:
    """After `people.decide`: the person's menu, the decision queued to them, and every
    admin's copy of the request updated (the chat's buttons and the board alike). False
    when no copy was queued (older requests)."""
    if person.status == Status.ACTIVE:
        await menus.set_person_menu(bot, person)
        key = "approve.you_are_in"
        outcome = "approve.done_yes"
    else:
        key = "approve.you_are_rejected"
        outcome = "approve.done_no"
    markup = menus.main_keyboard(person.language) if person.status == Status.ACTIVE else None
    notice: dict[str, Any] = {"text": t(person.language, key)}
    if markup is not None:
        notice["reply_markup"] = markup.to_dict()
    queued: bool = await db.run(_after_decision, person, admin, outcome, notice)
    return queued


@guarded(Action.APPROVE)
async def on_decision(update: Update, context: Context, admin: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, verdict, raw_id = [*query.data.split(":"), "", ""][:3]
    db = deps(context).db
    person_id = parse_int(raw_id)
    if person_id is None:
        await answer(query, t(admin.language, "form.stale"), alert=True)
        return
    if verdict in ("no", "back"):  # reject asks first; back shows the request's buttons
        pending = await db.run(people.get, person_id)
        if pending is None or pending.status != Status.PENDING:
            await answer(query, t(admin.language, "approve.already_decided"), alert=True)
            return
        await answer(query)
        rows = _reject_rows if verdict == "no" else _request_rows
        try:
            await query.edit_message_reply_markup(buttons(rows(admin.language, person_id)))
        except TelegramError:
            pass
        return
    person = await db.run(people.decide, admin, person_id, verdict == "ok")
    if person is None:
        await answer(query, t(admin.language, "approve.already_decided"), alert=True)
        return
    await answer(query)
    outcome = "approve.done_yes" if person.status == Status.ACTIVE else "approve.done_no"
    queued = await announce_decision(context.bot, db, admin, person)
    # Requests sent before they went through the outbox were remembered in bot_state.
    legacy = (await db.run(state.load_all, _SENT)).get(str(person.id), [])
    if not queued and not legacy and query.message is not None:
        legacy = [[query.message.chat.id, query.message.message_id]]
    for chat_id, message_id in legacy:
        recipient = await db.run(people.find, chat_id)
        lang = recipient.language if recipient else admin.language
        decided_by = admin.real_name or admin.display_name or str(admin.telegram_id)
        text = request_text(lang, person) + "\n\n" + t(lang, outcome, admin=decided_by)
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramError:
            pass
    await db.run(state.drop, _SENT, str(person.id))


def build() -> list[BaseHandler]:
    return [CallbackQueryHandler(on_decision, pattern=r"^adm:(ok|no|noy|back):")]
