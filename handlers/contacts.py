"""/contacts: a cadre's emergency contacts, the invitation links that let them join (kin:new,
kin:rm:<id>). An SOS tells the joined contacts (services.alerts)."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from handlers.callbacks import pressed
from handlers.common import (
    Context,
    answer,
    buttons,
    edit_or_reply,
    guarded,
    link_buttons,
    reply,
)
from handlers.sos_common import forged
from models import Person
from services import contact_links
from services.alerts import respond
from services.i18n import t
from services.people import name_of
from services.permissions import Action


@guarded(Action.RAISE_SOS)
async def contacts_command(update: Update, context: Context, person: Person) -> None:
    text, markup = await _contacts_view(context, person, person.language)
    await reply(update, text, reply_markup=markup)


async def _contacts_view(
    context: Context, person: Person, lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    zone = context.settings.zone
    profile, views = await context.db.run(contact_links.overview, person.id or 0)
    lines = [t(lang, "sos.contacts.header")]
    if profile:
        listed = "; ".join(f"{c.name} {c.phone}" for c in profile)
        lines.append(t(lang, "sos.contacts.profile", contacts=listed))
    rows: list[list[tuple[str, str]]] = []
    for view in views:
        if view.contact is not None:
            name = name_of(view.contact)
            lines.append(t(lang, "sos.contacts.joined", name=name))
            rows.append(
                [(t(lang, "sos.contacts.remove", name=name)[:60], f"kin:rm:{view.link.id}")]
            )
        elif contact_links.usable(view):
            expires = (
                view.invitation.expires_at.astimezone(zone).strftime("%m-%d %H:%M")
                if view.invitation.expires_at
                else "-"
            )
            lines.append(t(lang, "sos.contacts.waiting", expires=expires))
            rows.append([(t(lang, "sos.contacts.withdraw"), f"kin:rm:{view.link.id}")])
    if not views:
        lines.append(t(lang, "sos.contacts.none"))
    lines.append("")
    lines.append(t(lang, "sos.contacts.explain"))
    rows.append([(t(lang, "sos.contacts.invite"), "kin:new")])
    return "\n".join(lines), buttons(rows)


@guarded(Action.RAISE_SOS)
async def on_contacts_button(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    query, lang, db, zone = press.query, person.language, context.db, context.settings.zone
    if press.parts[1:] == ("new",):
        try:
            invitation = await db.run(contact_links.create_invitation, person)
        except contact_links.ContactLinkError as error:
            await answer(query, t(lang, error.key), alert=True)
            return
        await answer(query)
        link = f"https://t.me/{context.bot.username}?start={invitation.code}"
        expires = (
            invitation.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            if invitation.expires_at
            else "-"
        )
        markup = link_buttons(t(lang, "sos.contacts.copy"), t(lang, "sos.contacts.share"), link)
        await reply(
            update, t(lang, "sos.contacts.created", link=link, expires=expires), reply_markup=markup
        )
        return
    link_id = press.number(2) if len(press.parts) == 3 and press.step == "rm" else None
    if link_id is None:
        await forged(update, context, person)
        return
    removed = await db.run(contact_links.revoke, person, link_id)
    if not removed:
        await db.run(respond.refuse, person, None, press.data[:64], "not_own")
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    await answer(query, t(lang, "sos.contacts.removed"))
    await edit_or_reply(update, *(await _contacts_view(context, person, lang)))


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("contacts", contacts_command),
        CallbackQueryHandler(on_contacts_button, pattern=r"^kin:"),
    ]
