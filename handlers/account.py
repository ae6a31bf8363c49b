"""What everyone can do with their own account: /help, /language, /me, /mydata, /deleteme."""

from __future__ import annotations

import json
from typing import Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from handlers import ask, menus, sos
from handlers.callbacks import pressed
from handlers.common import (
    Context,
    answer,
    answer_stale,
    buttons,
    current_caller,
    current_person,
    drop_keyboard,
    edit_or_reply,
    guarded,
    language_of,
    reply,
)
from models import Person, Role, Status
from services import own_data, people
from services.i18n import LANGUAGES, normalize_language, t
from services.kb import library
from services.permissions import Action, check
from services.postings import load_postings

LANGUAGE_LABELS = {"zh-Hans": "中文", "en": "English"}


def _command_lines(lang: str, names: tuple[str, ...]) -> str:
    return "\n".join(f"/{name} — {t(lang, f'cmd.{name}')}" for name in names)


def _tasks_markup(lang: str, person: Person | None) -> InlineKeyboardMarkup:
    labels = [(t(lang, f"help.task.{task}"), f"hp:{task}") for task in menus.help_tasks(person)]
    labels.append((t(lang, "help.task.terms"), "hp:terms"))
    return buttons([labels[i : i + 2] for i in range(0, len(labels), 2)])


async def help_command(update: Update, context: Context) -> None:
    """/help answers everyone, in their role and language, one screen at a time: who they
    are and the commands they use most (with the 🆘 keyboard), then every other command
    a tap away, by task (on_help_button)."""
    person = await current_person(update, context)
    lang = language_of(update, context, person)
    active = person is not None and person.status == Status.ACTIVE
    if person is None:
        intro = t(lang, "help.guest")
    elif not active:
        intro = t(lang, f"deny.{person.status}")
    else:
        intro = t(lang, f"help.role.{person.role}")
    shown = menus.commands_for(person)
    if person is not None and active:
        shown = menus.ESSENTIALS[Role(person.role)]
    markup = await menus.main_keyboard_of(context, person, lang) if active else None
    await reply(update, intro + "\n\n" + _command_lines(lang, shown), reply_markup=markup)
    if active and len(menus.help_tasks(person)) > 1:
        await reply(update, t(lang, "help.more"), reply_markup=_tasks_markup(lang, person))


async def on_help_button(update: Update, context: Context) -> None:
    """hp:<task> shows the person's commands of one task in place; hp:terms the terms the
    bot uses; hp:home the list of tasks again."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await answer(query)
    person = await current_person(update, context)
    lang = language_of(update, context, person)
    task = pressed(update).step  # hp:<task|terms|home>
    tasks = menus.help_tasks(person)
    back = buttons([[(t(lang, "help.back"), "hp:home")]])
    if task == "terms":
        await edit_or_reply(update, t(lang, "help.terms"), back)
    elif task in tasks:
        title = f"<b>{t(lang, f'help.task.{task}')}</b>"
        await edit_or_reply(update, title + "\n" + _command_lines(lang, tasks[task]), back)
    else:
        await edit_or_reply(update, t(lang, "help.more"), _tasks_markup(lang, person))


UNCHOSEN = "language_unchosen"  # bot_data: ids whose Telegram app decides their language


async def follow_telegram_language(update: Update, context: Context) -> None:
    """An admin from CADRE_ADMIN_IDS is answered in their Telegram app's language until
    they choose one (/language): the check costs nothing for everybody else."""
    user = update.effective_user
    db = context.db
    if UNCHOSEN not in context.bot_data:
        context.bot_data[UNCHOSEN] = await db.run(people.language_unchosen)
    if user is None or not user.language_code or user.id not in context.bot_data[UNCHOSEN]:
        return
    language = normalize_language(user.language_code, context.settings.default_language)
    person = await db.run(people.follow_telegram_language, user.id, language)
    if person is not None:
        await menus.set_person_menu(context.bot, person, context.settings.webapp_url)


async def language_command(update: Update, context: Context) -> None:
    lang = language_of(update, context, await current_person(update, context))
    markup = buttons([[(LANGUAGE_LABELS[code], f"lang:{code}") for code in LANGUAGES]])
    await reply(update, t(lang, "language.choose"), reply_markup=markup)


async def on_language(update: Update, context: Context) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and update.effective_user is not None
    code = pressed(update).step  # lang:<code>
    if code not in LANGUAGES:
        await answer(query)
        return
    person = await context.db.run(people.set_language, update.effective_user.id, code)
    context.bot_data.get(UNCHOSEN, set()).discard(update.effective_user.id)
    if person is None:
        context.user_data["language"] = code  # type: ignore[index]
    else:
        await menus.set_person_menu(context.bot, person, context.settings.webapp_url)
    await answer(query)
    # the reply keyboard (🆘, 📝, 📍) is sent again with its labels in the new language
    caller = person or await current_caller(update, context)
    markup = None
    if caller is not None:
        location = await menus.alert_open(context.db, caller)
        markup = sos.keyboard(code, caller, location=location)
    await reply(update, t(code, "language.set"), reply_markup=markup)


def profile_text(lang: str, person: Person, contacts: list[Any], areas: list[str]) -> str:
    postings = load_postings()
    posting = "-"
    if person.county:
        prefecture = postings.name(person.prefecture or "", lang)
        posting = f"{prefecture} · {postings.name(person.county, lang)}"
    altitude = (
        t(lang, "form.metres", metres=person.posting_altitude_m)
        if person.posting_altitude_m is not None
        else t(lang, "form.not_applicable")
    )
    contact = "; ".join(f"{c.name} {c.phone}" for c in contacts) or "-"
    text = t(
        lang,
        "me.profile",
        real_name=person.real_name or "-",
        role=t(lang, f"role.{person.role}"),
        phone=person.phone or "-",
        home_unit=person.home_unit or "-",
        posting=posting,
        altitude=altitude,
        start=person.assignment_start.isoformat() if person.assignment_start else "-",
        end=person.assignment_end.isoformat() if person.assignment_end else "-",
        contact=contact,
    )
    if areas:
        names = ", ".join(postings.name(code, lang) for code in areas)
        text += "\n" + t(lang, "me.duty_areas", areas=names)
    return text


@guarded(Action.OWN_DATA)
async def me_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    db = context.db
    assert person.id is not None
    contacts = await db.run(people.emergency_contacts, person.id)
    areas = await db.run(people.duty_areas, person.id)
    groups = ("name", "phone", "unit", "posting", "dates", "contact")
    rows = [
        [(t(lang, f"me.edit.{a}"), f"me:edit:{a}"), (t(lang, f"me.edit.{b}"), f"me:edit:{b}")]
        for a, b in zip(groups[::2], groups[1::2], strict=True)
    ]
    await reply(update, profile_text(lang, person, contacts, areas), reply_markup=buttons(rows))


@guarded(Action.OWN_DATA)
async def mydata_command(update: Update, context: Context, person: Person) -> None:
    data = await context.db.run(own_data.export, person.telegram_id)
    payload = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    message = update.effective_message
    assert message is not None
    await message.chat.send_document(
        InputFile(payload, filename="cadre-bot-my-data.json"),
        caption=t(person.language, "mydata.caption"),
    )


@guarded(Action.OWN_DATA)
async def deleteme_command(update: Update, context: Context, person: Person) -> None:
    lang = person.language
    markup = buttons([[(t(lang, "deleteme.yes"), "del:yes")], [(t(lang, "deleteme.no"), "del:no")]])
    await reply(update, t(lang, "deleteme.confirm"), reply_markup=markup)


@guarded(Action.OWN_DATA)
async def on_delete(update: Update, context: Context, person: Person) -> None:
    query = update.callback_query
    assert query is not None
    lang = person.language
    await answer(query)
    await drop_keyboard(update)
    if query.data != "del:yes":
        await reply(update, t(lang, "deleteme.kept"))
        return
    d = context.deps
    erased = await d.db.run(people.erase_person, person.telegram_id)
    if erased is not None and d.delivery is not None:
        for source in erased.sources:  # messages about them the worker has already taken
            d.delivery.forget(source)
    if erased is not None:
        for doc_id in erased.faqs:  # saved answers now under a neutral title
            await d.db.run(library.refresh, await ask.knowledge(context), doc_id)
    context.application.drop_user_data(person.telegram_id)
    await menus.reset_person_menu(context.bot, person.telegram_id, context.settings.webapp_url)
    await reply(update, t(lang, "deleteme.done"))


async def on_other_text(update: Update, context: Context) -> None:
    """Free text outside any form is a question for the policy knowledge base; an unknown
    command gets a pointer to /help."""
    person = await current_person(update, context)
    lang = language_of(update, context, person)
    message = update.effective_message
    text = message.text if message and message.text else ""
    if person is None:
        await reply(update, t(lang, "deny.unregistered"))
    elif person.status != Status.ACTIVE:
        await reply(update, t(lang, f"deny.{person.status}"))
    elif text.startswith("/") or check(person, Action.ASK) is not None:
        await reply(update, t(lang, "fallback.text"))
    else:
        await ask.answer_question(update, context, person, text)


async def on_other_media(update: Update, context: Context) -> None:
    """A photo, file, sticker, contact or location that no form or alert is waiting for:
    say what the bot reads, never stay silent."""
    person = await current_person(update, context)
    await reply(update, t(language_of(update, context, person), "fallback.media"))


async def cancel_nothing(update: Update, context: Context) -> None:
    """/cancel outside any form: about their open call for help if they have one."""
    if await sos.still_open(update, context):
        return
    person = await current_person(update, context)
    await reply(update, t(language_of(update, context, person), "form.nothing_to_cancel"))


async def on_stale_button(update: Update, context: Context) -> None:
    """A button nobody handles any more (an old form): answer it politely."""
    await answer_stale(update, context)


def build() -> list[BaseHandler]:
    return [
        CommandHandler("help", help_command),
        CallbackQueryHandler(on_help_button, pattern=r"^hp:"),
        CommandHandler("language", language_command),
        CallbackQueryHandler(on_language, pattern=r"^lang:"),
        CommandHandler("me", me_command),
        CommandHandler("mydata", mydata_command),
        CommandHandler("deleteme", deleteme_command),
        CallbackQueryHandler(on_delete, pattern=r"^del:"),
        CommandHandler("cancel", cancel_nothing),
    ]


def build_fallbacks() -> list[BaseHandler]:
    """Handlers of last resort; registered after every feature's handlers."""
    return [
        MessageHandler(filters.TEXT & ~filters.COMMAND, on_other_text),
        MessageHandler(filters.COMMAND, on_other_text),
        MessageHandler(filters.ATTACHMENT, on_other_media),
        CallbackQueryHandler(on_stale_button),
    ]
