"""Roster import for admins: /import sends the template; an XLSX or CSV sent as a file is
checked row by row and its accepted rows become expected people (services/roster_import)."""

from __future__ import annotations

from telegram import InputFile, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from handlers.common import Context, deps, guarded, reply
from models import Person
from services import roster_import, tables
from services.i18n import t
from services.permissions import Action

MAX_FILE_BYTES = 10 * 1024 * 1024
SHOWN_REFUSALS = 20


@guarded(Action.MANAGE_PEOPLE)
async def import_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    count, _ = await deps(context).db.run(roster_import.not_joined, 0)
    await reply(update, t(lang, "import.help", count=count))
    message = update.effective_message
    if message is not None:
        await message.chat.send_document(
            InputFile(roster_import.template_xlsx(lang), filename="roster-template.xlsx"),
            caption=t(lang, "import.template_caption"),
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
        rows = tables.read_rows(data, name)
    except (TelegramError, tables.UnreadableFile):
        await reply(update, t(lang, "import.unreadable"))
        return
    result = await deps(context).db.run(roster_import.import_rows, person, rows, lang)
    if result.problem is not None:
        await reply(update, t(lang, result.problem))
        return
    lines = [
        t(
            lang,
            "import.report",
            rows=result.rows,
            accepted=result.accepted,
            refused=len(result.refused),
        )
    ]
    for refused in result.refused[:SHOWN_REFUSALS]:
        lines.append(t(lang, "import.report.line", row=refused.row, reason=refused.text(lang)))
    if len(result.refused) > SHOWN_REFUSALS:
        lines.append(t(lang, "import.report.more", count=len(result.refused) - SHOWN_REFUSALS))
    await reply(update, "\n".join(lines))
    if result.refused:
        await message.chat.send_document(
            InputFile(roster_import.report_xlsx(result, lang), filename="roster-report.xlsx"),
            caption=t(lang, "import.report_caption"),
        )


def build() -> list[BaseHandler]:
    private = filters.ChatType.PRIVATE
    spreadsheet = filters.Document.FileExtension("xlsx") | filters.Document.FileExtension("csv")
    return [
        CommandHandler("import", import_command, filters=private & ~filters.UpdateType.EDITED),
        MessageHandler(private & spreadsheet, on_roster_file),
    ]
