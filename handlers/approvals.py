"""Registration requests reach every admin with Approve / Reject; the first decision wins.
The requests and the decision are queued by services/approvals.py."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler

from handlers import menus
from handlers.callbacks import pressed
from handlers.common import Context, answer, buttons, guarded, set_keyboard
from models import Person, Status
from services import approvals, people, state
from services.i18n import t
from services.people import name_of
from services.permissions import Action

_SENT = "approval_messages"  # before requests went through the outbox (legacy)


async def notify_admins(context: Context, person: Person) -> None:
    """Queue the request to every admin (services.approvals.queue_requests)."""
    await context.db.run(approvals.queue_requests, person)


def _reject_rows(lang: str, person_id: int) -> list[list[tuple[str, str]]]:
    """Reject asks first: yes, or back to the request's buttons."""
    return [
        [(t(lang, "approve.reject_yes"), f"adm:noy:{person_id}")],
        [(t(lang, "people.btn.back"), f"adm:back:{person_id}")],
    ]


async def announce_decision(
    bot: Any, db: Any, admin: Person, person: Person, board_url: str | None
) -> bool:
    """After `people.decide`: the person's menu, the decision queued to them, and every
    admin's copy of the request updated (the chat's buttons and the board alike). False
    when no copy was queued (older requests)."""
    if person.status == Status.ACTIVE:
        await menus.set_person_menu(bot, person, board_url)
        key = "approve.you_are_in"
        outcome = "approve.done_yes"
    else:
        key = "approve.you_are_rejected"
        outcome = "approve.done_no"
    markup = None
    if person.status == Status.ACTIVE:  # 📍 stays while their (unverified) alert is open
        markup = menus.main_keyboard(person.language, await menus.alert_open(db, person))
    notice: dict[str, Any] = {"text": t(person.language, key)}
    if markup is not None:
        notice["reply_markup"] = markup.to_dict()
    queued: bool = await db.run(approvals.after_decision, person, admin, outcome, notice)
    return queued


@guarded(Action.APPROVE)
async def on_decision(update: Update, context: Context, admin: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    press = pressed(update)
    verdict, person_id = press.step, press.number(2)
    db = context.db
    if person_id is None:
        await answer(query, t(admin.language, "form.stale"), alert=True)
        return
    if verdict in ("no", "back"):  # reject asks first; back shows the request's buttons
        pending = await db.run(people.get, person_id)
        if pending is None or pending.status != Status.PENDING:
            await answer(query, t(admin.language, "approve.already_decided"), alert=True)
            return
        await answer(query)
        rows = _reject_rows if verdict == "no" else approvals.request_rows
        await set_keyboard(update, buttons(rows(admin.language, person_id)))
        return
    person = await db.run(people.decide, admin, person_id, verdict == "ok")
    if person is None:
        await answer(query, t(admin.language, "approve.already_decided"), alert=True)
        return
    await answer(query)
    outcome = "approve.done_yes" if person.status == Status.ACTIVE else "approve.done_no"
    queued = await announce_decision(context.bot, db, admin, person, context.settings.webapp_url)
    # Requests sent before they went through the outbox were remembered in bot_state.
    legacy = (await db.run(state.load_all, _SENT)).get(str(person.id), [])
    if not queued and not legacy and query.message is not None:
        legacy = [[query.message.chat.id, query.message.message_id]]
    for chat_id, message_id in legacy:
        recipient = await db.run(people.find, chat_id)
        lang = recipient.language if recipient else admin.language
        decided_by = name_of(admin, str(admin.telegram_id))
        text = approvals.request_text(lang, person) + "\n\n" + t(lang, outcome, admin=decided_by)
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramError:
            pass
    await db.run(state.drop, _SENT, str(person.id))


def build() -> list[BaseHandler]:
    return [CallbackQueryHandler(on_decision, pattern=r"^adm:(ok|no|noy|back):")]
