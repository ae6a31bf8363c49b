"""Registration requests reach every admin with Approve / Reject; the first decision wins."""

from __future__ import annotations

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler

from handlers import menus
from handlers.common import Context, answer, buttons, deps, guarded
from models import Person, Status
from services import people, state
from services.i18n import t
from services.permissions import Action
from services.postings import load_postings

_SENT = "approval_messages"


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
    """Send the request to every admin, remembering each message so all can be updated."""
    db = deps(context).db
    sent: list[list[int]] = []
    for admin in await db.run(people.admins):
        lang = admin.language
        markup = buttons(
            [
                [
                    (t(lang, "approve.yes"), f"adm:ok:{person.id}"),
                    (t(lang, "approve.no"), f"adm:no:{person.id}"),
                ]
            ]
        )
        try:
            message = await context.bot.send_message(
                admin.telegram_id, request_text(lang, person), reply_markup=markup
            )
        except TelegramError:
            continue
        sent.append([admin.telegram_id, message.message_id])
    await db.run(state.put, _SENT, str(person.id), sent)


@guarded(Action.APPROVE)
async def on_decision(update: Update, context: Context, admin: Person) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, verdict, raw_id = query.data.split(":")
    db = deps(context).db
    if not raw_id.isdigit():
        await answer(query, t(admin.language, "form.stale"), alert=True)
        return
    person = await db.run(people.decide, admin, int(raw_id), verdict == "ok")
    if person is None:
        await answer(query, t(admin.language, "approve.already_decided"), alert=True)
        return
    await answer(query)
    outcome = "approve.done_yes" if person.status == Status.ACTIVE else "approve.done_no"
    sent = (await db.run(state.load_all, _SENT)).get(str(person.id), [])
    for chat_id, message_id in sent or [[query.message.chat.id, query.message.message_id]]:
        recipient = await db.run(people.find, chat_id)
        lang = recipient.language if recipient else admin.language
        text = (
            request_text(lang, person)
            + "\n\n"
            + t(
                lang, outcome, admin=admin.real_name or admin.display_name or str(admin.telegram_id)
            )
        )
        try:
            await context.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except TelegramError:
            pass
    await db.run(state.drop, _SENT, str(person.id))
    if person.status == Status.ACTIVE:
        await menus.set_person_menu(context.bot, person)
        key = "approve.you_are_in"
    else:
        key = "approve.you_are_rejected"
    markup = menus.main_keyboard(person.language) if person.status == Status.ACTIVE else None
    try:
        await context.bot.send_message(
            person.telegram_id, t(person.language, key), reply_markup=markup
        )
    except TelegramError:
        pass


def build() -> list[BaseHandler]:
    return [CallbackQueryHandler(on_decision, pattern=r"^adm:(ok|no):")]
