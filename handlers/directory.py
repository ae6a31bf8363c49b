"""The emergency directory admins keep current (/directory): national numbers, and per
prefecture the hospitals and other medical contacts, each with who confirmed it and when.

Callback data (area: a prefecture code, or "cn" for national entries):
    dir:home / dir:p:<area>                    areas / one area's entries
    dir:e:<id>                                 an entry's card
    dir:f:<id>:<field>                         type a new name, phone or address
    dir:ok:<id>                                confirm it is still right
    dir:rm:<id> / dir:rmy:<id>                 remove (asks first)
    dir:add:<area>                             type the name of a new entry
"""

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
    refuse,
    reply,
)
from handlers.roster import pref_buttons
from handlers.sos_common import forged, set_pending
from models import Person
from services import directory
from services.i18n import t
from services.permissions import Action, Denial, check
from services.postings import load_postings

# ---------------------------------------------------------------------------- /directory


def _area_code(prefecture: str | None) -> str:
    return prefecture or directory.NATIONAL


def _area_of(code: str) -> tuple[bool, str | None]:
    """(valid, prefecture) for an area code from callback data."""
    if code == directory.NATIONAL:
        return True, None
    return load_postings().prefecture(code) is not None, code


@guarded(Action.MANAGE_DIRECTORY)
async def directory_command(update: Update, context: Context, admin: Person) -> None:
    await reply(update, *_directory_home(admin.language))


def _directory_home(lang: str) -> tuple[str, InlineKeyboardMarkup]:
    rows = [[(t(lang, "sos.dir.national"), f"dir:p:{directory.NATIONAL}")]]
    rows += pref_buttons(lang, "dir:p:")
    return t(lang, "sos.dir.choose_area"), buttons(rows)


def _directory_list(
    session: Any, prefecture: str | None, lang: str, zone: Any
) -> tuple[str, InlineKeyboardMarkup]:
    entries = directory.entries_of(session, prefecture)
    area = directory.area_name(prefecture, lang)
    lines = [t(lang, "sos.dir.header", area=area)]
    lines += [directory.entry_line(e, lang, zone) for e in entries] or [t(lang, "sos.dir.empty")]
    rows = [[(f"✏️ {directory.entry_name(e, lang)}"[:60], f"dir:e:{e.id}")] for e in entries[:30]]
    rows.append([(t(lang, "sos.dir.add"), f"dir:add:{_area_code(prefecture)}")])
    rows.append([(t(lang, "sos.btn.back"), "dir:home")])
    return "\n".join(lines), buttons(rows)


def _directory_card(
    session: Any, entry_id: int, lang: str, zone: Any
) -> tuple[str, InlineKeyboardMarkup] | None:
    entry = directory.get(session, entry_id)
    if entry is None:
        return None
    text = t(
        lang,
        "sos.dir.card",
        name=directory.entry_name(entry, lang),
        area=directory.area_name(entry.prefecture, lang),
        phone=entry.phone or "-",
        address=entry.address or "-",
        confirmed=directory.confirmed_text(entry, lang, zone),
    )
    second = [(t(lang, "sos.dir.edit_address"), f"dir:f:{entry.id}:address")]
    if directory.has_phone(entry):  # no number, nothing to confirm: type the phone first
        second.append((t(lang, "sos.dir.still_right"), f"dir:ok:{entry.id}"))
    rows = [
        [
            (t(lang, "sos.dir.edit_phone"), f"dir:f:{entry.id}:phone"),
            (t(lang, "sos.dir.edit_name"), f"dir:f:{entry.id}:name"),
        ],
        second,
        [
            (t(lang, "sos.dir.remove"), f"dir:rm:{entry.id}"),
            (t(lang, "sos.btn.back"), f"dir:p:{_area_code(entry.prefecture)}"),
        ],
    ]
    return text, buttons(rows)


@guarded(Action.MANAGE_DIRECTORY)
async def on_directory_button(update: Update, context: Context, admin: Person) -> None:
    press = pressed(update)
    query, lang, db, zone = press.query, admin.language, context.db, context.settings.zone
    step = press.step
    if step == "home":
        await answer(query)
        await edit_or_reply(update, *_directory_home(lang))
        return
    if step in ("p", "add") and len(press.parts) == 3:
        valid, prefecture = _area_of(press.word(2))
        if not valid:
            await forged(update, context, admin)
            return
        await answer(query)
        if step == "p":
            await edit_or_reply(update, *(await db.run(_directory_list, prefecture, lang, zone)))
        else:
            await set_pending(
                context, admin.telegram_id, {"what": "diradd", "area": _area_code(prefecture)}
            )
            await reply(update, t(lang, "sos.dir.ask_new_name"))
        return
    entry_id = press.number(2)
    entry = await db.run(directory.get, entry_id) if entry_id else None
    if entry is None:
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    if step == "e":
        await answer(query)
        card = await db.run(_directory_card, entry.id, lang, zone)
        if card:
            await edit_or_reply(update, *card)
    elif step == "f" and len(press.parts) == 4 and (field := press.word(3)) in directory.EDITABLE:
        await answer(query)
        await set_pending(
            context, admin.telegram_id, {"what": "dir", "entry": entry.id, "field": field}
        )
        await reply(update, t(lang, f"sos.dir.ask_{field}", name=directory.entry_name(entry, lang)))
    elif step == "ok":
        try:
            await db.run(directory.confirm, admin, entry.id)
        except directory.DirectoryError as error:
            await answer(query, t(lang, error.key), alert=True)
            return
        await answer(query, t(lang, "sos.dir.confirmed_now"))
        card = await db.run(_directory_card, entry.id, lang, zone)
        if card:
            await edit_or_reply(update, *card)
    elif step == "rm":
        await answer(query)
        rows = [
            [(t(lang, "sos.dir.remove_yes"), f"dir:rmy:{entry.id}")],
            [(t(lang, "sos.btn.back"), f"dir:e:{entry.id}")],
        ]
        await edit_or_reply(
            update,
            t(lang, "sos.dir.remove_confirm", name=directory.entry_name(entry, lang)),
            buttons(rows),
        )
    elif step == "rmy":
        try:
            await db.run(directory.remove, admin, entry.id)
        except directory.DirectoryError as error:
            await answer(query, t(lang, error.key), alert=True)
            return
        await answer(query, t(lang, "sos.dir.removed"))
        await edit_or_reply(update, *(await db.run(_directory_list, entry.prefecture, lang, zone)))
    else:
        await forged(update, context, admin)


async def receive_text(
    update: Update, context: Context, person: Person, pending: dict[str, Any], text: str
) -> None:
    lang = person.language
    db = context.db
    zone = context.settings.zone
    if check(person, Action.MANAGE_DIRECTORY) is not None:
        await set_pending(context, person.telegram_id, None)
        await refuse(update, context, person, Action.MANAGE_DIRECTORY, Denial.ROLE)
        return
    try:
        if pending.get("what") == "diradd":
            valid, prefecture = _area_of(str(pending.get("area", "")))
            if not valid:
                await set_pending(context, person.telegram_id, None)
                return
            entry = await db.run(directory.add, person, prefecture, "hospital", text)
            entry_id = entry.id or 0
        else:
            entry_id = int(pending.get("entry", 0))
            changed = await db.run(
                directory.update_field, person, entry_id, str(pending.get("field")), text
            )
            if changed is None:
                await set_pending(context, person.telegram_id, None)
                await reply(update, t(lang, "form.stale"))
                return
    except directory.DirectoryError as error:
        await reply(update, t(lang, error.key))
        return
    await set_pending(context, person.telegram_id, None)
    card = await db.run(_directory_card, entry_id, lang, zone)
    if card:
        await reply(update, t(lang, "sos.dir.saved") + "\n\n" + card[0], reply_markup=card[1])


def build() -> list[BaseHandler]:
    return [
        CommandHandler("directory", directory_command),
        CallbackQueryHandler(on_directory_button, pattern=r"^dir:"),
    ]
