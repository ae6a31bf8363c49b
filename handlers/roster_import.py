"""Roster import for admins: /import sends the template; an XLSX or CSV sent as a file is
checked row by row and its accepted rows become expected people (services/roster_import)."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from handlers.callbacks import pressed
from handlers.common import Context, answer, buttons, guarded, reply
from models import Person
from services import roster_import, tables
from services.db import Database
from services.i18n import t
from services.permissions import Action
from services.postings import load_postings

MAX_FILE_BYTES = 10 * 1024 * 1024
SHOWN_REFUSALS = 20


SHOWN_WAITING = 20  # names of people not joined yet in /import (all are in the links file)


@guarded(Action.MANAGE_PEOPLE)
async def import_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    count, waiting = await context.db.run(roster_import.not_joined, SHOWN_WAITING)
    await reply(update, t(lang, "import.help", count=count))
    message = update.effective_message
    if message is None:
        return
    await message.chat.send_document(
        InputFile(roster_import.template_xlsx(lang), filename="roster-template.xlsx"),
        caption=t(lang, "import.template_caption"),
    )
    if count:
        await reply(update, waiting_text(lang, count, waiting), reply_markup=_links_buttons(lang))


def waiting_text(lang: str, count: int, waiting: list[Person]) -> str:
    lines = [t(lang, "import.waiting.title", count=count)]
    postings = load_postings()
    for number, p in enumerate(waiting, start=1):
        place = postings.name(p.county, lang) if p.county else "-"
        lines.append(
            t(
                lang,
                "import.waiting.line",
                number=number,
                name=p.real_name or "-",
                phone=p.phone or "-",
                county=place,
            )
        )
    if count > len(waiting):
        lines.append(t(lang, "import.waiting.more", count=count - len(waiting)))
    return "\n".join(lines)


def _links_buttons(lang: str) -> InlineKeyboardMarkup:
    return buttons(
        [
            [
                (t(lang, "import.links.btn_xlsx"), "imp:links:xlsx"),
                (t(lang, "import.links.btn_csv"), "imp:links:csv"),
            ]
        ]
    )


async def invitation_file(db: Database, bot: Any, admin: Person, kind: str) -> tuple[bytes, int]:
    """The personal invitation links of everyone expected (one single-use link each,
    services/roster_import.invitation_links), as XLSX or CSV through services/tables, and
    how many; for /import's buttons and the board."""
    base = f"https://t.me/{bot.username}?start="
    columns, rows = await db.run(
        roster_import.invitation_links, admin, lambda code: base + code, admin.language
    )
    if kind == "csv":
        return tables.to_csv(columns, rows), len(rows)
    return tables.to_xlsx(columns, rows, "invitations"), len(rows)


@guarded(Action.MANAGE_PEOPLE)
async def on_links_button(update: Update, context: Context, person: Person) -> None:
    """imp:links:<xlsx|csv>: the personal invitation links as a file."""
    query = update.callback_query
    assert query is not None
    kind = pressed(update).word(2)
    lang = person.language
    if kind not in ("xlsx", "csv"):
        await answer(query, t(lang, "form.stale"), alert=True)
        return
    await answer(query)
    data, count = await invitation_file(context.db, context.bot, person, kind)
    if not count:
        await reply(update, t(lang, "import.links.none"))
        return
    message = update.effective_message
    assert message is not None
    await message.chat.send_document(
        InputFile(data, filename=f"invitation-links.{kind}"),
        caption=t(lang, "import.links.caption", count=count),
    )


@guarded(Action.MANAGE_PEOPLE)
async def on_roster_file(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    message = update.effective_message
    assert message is not None and message.document is not None
    document = message.document
    name = document.file_name or "roster"
    if document.file_size and document.file_size > MAX_FILE_BYTES:
        await reply(update, t(lang, "import.unreadable"))
        return
    await reply(update, t(lang, "import.progress", name=name))
    try:
        file = await context.bot.get_file(document.file_id)
        data = bytes(await file.download_as_bytearray())
        rows = await asyncio.to_thread(tables.read_rows, data, name)  # off the event loop
    except (TelegramError, tables.UnreadableFile):
        await reply(update, t(lang, "import.unreadable"))
        return
    result = await context.db.run(roster_import.import_rows, person, rows, lang)
    if result.problem is not None:
        await reply(update, t(lang, result.problem))
        return
    await reply(
        update, roster_import.report_text(lang, result, SHOWN_REFUSALS, context.settings.zone)
    )
    if result.refused:
        await message.chat.send_document(
            InputFile(
                roster_import.report_xlsx(result, lang, context.settings.zone),
                filename="roster-report.xlsx",
            ),
            caption=t(lang, "import.report_caption"),
        )


def build() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    spreadsheet = filters.Document.FileExtension("xlsx") | filters.Document.FileExtension("csv")
    return [
        CommandHandler("import", import_command, filters=private & ~filters.UpdateType.EDITED),
        MessageHandler(private & spreadsheet, on_roster_file),
        CallbackQueryHandler(on_links_button, pattern=r"^imp:links:"),
    ]
