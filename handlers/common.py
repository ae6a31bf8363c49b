"""What every handler shares: the current person, permission checks, replies. The context
(`Context`, with `context.db`, `context.settings` and `context.timers`) is handlers/context.py."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest
from telegram.ext import ConversationHandler

from handlers.context import Context
from models import Person
from services import audit, people
from services.i18n import normalize_language, t
from services.outbox import split_html
from services.permissions import Action, Denial, check, refusal_key

R = TypeVar("R")


async def current_person(update: Update, context: Context) -> Person | None:
    user = update.effective_user
    if user is None:
        return None
    return await context.db.run(people.find, user.id)


async def current_caller(update: Update, context: Context) -> Person | None:
    """Like current_person, a guest who called for help included (the emergency channel,
    and one's own data: /mydata, /deleteme)."""
    user = update.effective_user
    if user is None:
        return None
    return await context.db.run(people.find_caller, user.id)


def language_of(update: Update, context: Context, person: Person | None = None) -> str:
    """The person's language, else the one they chose in a form, else Telegram's."""
    if person is not None:
        return person.language
    chosen = (context.user_data or {}).get("language")
    if chosen:
        return chosen
    user = update.effective_user
    default = context.settings.default_language
    return normalize_language(user.language_code if user else None, default)


async def reply(
    update: Update, text: str, reply_markup: Any = None, **kwargs: Any
) -> Message | None:
    """Answer in the chat the update came from (a message, or the message under a button)."""
    message = update.effective_message
    if message is None:
        return None
    chunks = split_html(text)  # the outbox's splitter: what the reader sees fits
    sent = None
    for index, chunk in enumerate(chunks):
        markup = reply_markup if index == len(chunks) - 1 else None
        sent = await message.chat.send_message(chunk, reply_markup=markup, **kwargs)
    return sent


def buttons(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Inline keyboard from rows of (label, callback_data)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def answer(query: CallbackQuery | None, text: str | None = None, alert: bool = False) -> None:
    """Every callback query is answered exactly once, so the button stops spinning.
    Catalog text is HTML; a callback answer is plain text of at most 200 characters."""
    if query is None:
        return
    try:
        await query.answer(plain_text(text) if text else None, show_alert=alert)
    except BadRequest as exc:
        # Handled late (after a database outage, bot/outage.py): the query was answered
        # meanwhile or expired. The rest of the handler's work still matters.
        reason = exc.message.lower()
        if "query is too old" not in reason and "query id is invalid" not in reason:
            raise


def pressed_label(query: CallbackQuery) -> str | None:
    """The label of the pressed button, None when the message does not carry a button with
    this data (forged, or already answered)."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return None
    return next(
        (
            button.text
            for row in message.reply_markup.inline_keyboard
            for button in row
            if button.callback_data == query.data
        ),
        None,
    )


async def show_answer(query: CallbackQuery, lang: str) -> None:
    """A form's question, answered by a button: the question stays, the chosen button's
    label is written under it ("Your answer: 🙂 Fine") and the buttons go, so the person
    sees what they chose and an old button cannot be pressed again. A message that cannot
    take the line (a photo, too old, too long) only loses its buttons."""
    message = query.message
    if isinstance(message, Message) and message.reply_markup is None:
        return  # answered already: nothing to show or remove
    chosen = pressed_label(query)
    try:
        if isinstance(message, Message) and message.text and chosen:
            text = f"{message.text_html}\n\n{t(lang, 'form.answered', answer=chosen)}"
            if len(text) <= MessageLimit.MAX_TEXT_LENGTH:
                await query.edit_message_text(text, reply_markup=None)
                return
        await query.edit_message_reply_markup(reply_markup=None)
    except Exception:  # the message may be too old to edit; nothing is lost
        pass


Handler = Callable[[Update, Context, Person], Awaitable[R]]


def guarded(action: Action) -> Callable[[Handler[R]], Callable[[Update, Context], Awaitable[Any]]]:
    """The one permission gate: every handler that needs a registered person goes through it.

    A refusal is explained in the person's language, the button press (if any) is answered,
    and the attempt is audited with the action and what was pressed or typed.
    """

    def decorate(fn: Handler[R]) -> Callable[[Update, Context], Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: Context) -> Any:
            person = await permitted(update, context, action)
            if person is None:
                return ConversationHandler.END
            return await fn(update, context, person)

        return wrapper

    return decorate


async def permitted(update: Update, context: Context, action: Action) -> Person | None:
    """The person when they may perform `action`; otherwise None, the refusal explained,
    the press answered and the attempt audited (`refuse`). One's own data (/mydata,
    /deleteme) is open to a guest who called for help too."""
    load = current_caller if action == Action.OWN_DATA else current_person
    person = await load(update, context)
    denial = check(person, action)
    if denial is None:
        return person
    await refuse(update, context, person, action, denial)
    return None


async def refuse(
    update: Update, context: Context, person: Person | None, action: Action, denial: Denial
) -> None:
    user = update.effective_user
    query = update.callback_query
    attempted = (
        query.data
        if query
        else (update.effective_message.text or "")[:64]
        if (update.effective_message)
        else ""
    )
    await context.db.run(
        _audit_denial,
        user.id if user else None,
        person.id if person else None,
        action,
        denial,
        attempted,
    )
    text = t(language_of(update, context, person), refusal_key(action, denial))
    if query is not None:
        await answer(query, text, alert=True)
    else:
        await reply(update, text)


def _audit_denial(
    session: Any,
    actor: int | None,
    person_id: int | None,
    action: Action,
    denial: Denial,
    attempted: str,
) -> None:
    audit.record(
        session,
        f"denied.{action}",
        actor=actor,
        target_person_id=person_id,
        outcome="denied",
        reason=str(denial),
        attempted=attempted,
    )


async def answer_stale(update: Update, context: Context, *, forged: bool = False) -> None:
    """The one answer to a button that no longer does anything ("this button is no longer
    active"). A `forged` press (data no button of ours carries) is audited as well."""
    person = await current_person(update, context)
    query = update.callback_query
    if forged and query is not None:
        user = update.effective_user
        await context.db.run(
            _audit_forged, user.id if user else None, person.id if person else None, query.data
        )
    await answer(query, t(language_of(update, context, person), "form.stale"), alert=True)


def _audit_forged(session: Any, actor: int | None, person_id: int | None, data: Any) -> None:
    audit.record(
        session,
        "denied.button",
        actor=actor,
        target_person_id=person_id,
        outcome="denied",
        reason="forged",
        attempted=str(data or "")[:64],
    )


def _command_of(update: Update) -> str:
    """Only the command word is audited, never what else a person typed."""
    message = update.effective_message
    text = (message.text or "") if message else ""
    return text.split()[0][:64] if text.startswith("/") else ""


def plain_text(text: str) -> str:
    """Catalog HTML as plain text (callback answers), at most 200 characters."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))[:200]
