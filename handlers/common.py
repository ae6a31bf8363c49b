"""What every handler shares (the handler kit): the current person, the permission gate,
replies, editing the message under a button (`edit_or_reply`, `set_keyboard`,
`drop_keyboard`), keyboards in one shape (`buttons`: rows of (label, data); the row
that turns pages is `handlers.paging.page_buttons`) and callback
answers (`answer`, `plain_text`). Elsewhere in the kit: the context (`Context`, with
`context.db`, `context.settings`, `context.timers`) in handlers/context.py; the grammar of
button data and the press as a handler reads it (`pressed`) in handlers/callbacks.py; what forms
share (`FormDraft`, `form_conversation`) in handlers/conversation.py. What to call a person
is `services.people.name_of`."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from telegram import (
    CallbackQuery,
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    WebAppInfo,
)
from telegram.constants import MessageLimit
from telegram.error import BadRequest, TelegramError
from telegram.ext import ConversationHandler

from handlers.context import Context
from models import Person
from services import audit, people
from services.i18n import normalize_language, t
from services.i18n import plain_text as _plain_text
from services.outbox.split import split_html
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


async def edit_or_reply(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Edit the message under the pressed button in place; send a new one when that is
    impossible (no button, a photo, too old). A message that already shows this (a list's
    current filter pressed again) is compared first and left as it is. Telegram's 400
    "message is not modified" is still taken as done, for the race the comparison cannot
    see: the same edit sent twice at once (two presses in flight)."""
    query = update.callback_query
    if query is not None and query.message is not None:
        shown = query.message
        if (
            getattr(shown, "text", None) is not None
            and shown.text.strip() == _plain_text(text).strip()
            and shown.reply_markup == markup
        ):
            return
        try:
            await query.edit_message_text(text, reply_markup=markup)
            return
        except BadRequest as error:
            if "not modified" in str(error).lower():
                return
        except TelegramError:
            pass
    await reply(update, text, reply_markup=markup)


async def set_keyboard(update: Update, markup: InlineKeyboardMarkup | None) -> None:
    """Replace the buttons under the pressed button's message (None: remove them). A
    message too old to edit keeps its buttons: nothing is lost, a later press is stale."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=markup)
    except TelegramError:
        pass


async def drop_keyboard(update: Update) -> None:
    """Remove the buttons under the pressed button's message (it cannot be pressed again)."""
    await set_keyboard(update, None)


def buttons(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """Inline keyboard from rows of (label, callback_data): the one shape of the bot's
    keyboards, shown by this for a direct reply and by `services.outbox.inline_keyboard`
    (Bot API JSON) for a queued message; a service whose keyboard is both gives its rows
    (`cards.handler_rows`, `oxygen.responder_rows`). Two builders below cover the buttons
    that are not (label, data): `link_buttons` (copy and share a link) and `markup_of` (the
    JSON of a queued keyboard, which may carry the board's "Open board" Mini App button)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


def link_buttons(copy_label: str, share_label: str, link: str) -> InlineKeyboardMarkup:
    """Two buttons under an invitation link: copy it, and share it in another chat."""
    share = f"https://t.me/share/url?url={quote(link, safe='')}"
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(copy_label, copy_text=CopyTextButton(link))],
            [InlineKeyboardButton(share_label, url=share)],
        ]
    )


def _button(data: dict[str, Any]) -> InlineKeyboardButton:
    if "web_app" in data:  # "Open board" (services.board)
        return InlineKeyboardButton(data["text"], web_app=WebAppInfo(data["web_app"]["url"]))
    return InlineKeyboardButton(data["text"], callback_data=data["callback_data"])


def markup_of(data: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    """Bot API JSON of an inline keyboard as a PTB markup: a queued message's keyboard shown
    again (an SOS card's) or one with the board's web_app button (services.board_links)."""
    if not data:
        return None
    return InlineKeyboardMarkup([[_button(b) for b in row] for row in data["inline_keyboard"]])


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
        audit_denied,
        user.id if user else None,
        person.id if person else None,
        action,
        str(denial),
        attempted or "",
    )
    text = t(language_of(update, context, person), refusal_key(action, denial))
    if query is not None:
        await answer(query, text, alert=True)
    else:
        await reply(update, text)


def audit_denied(
    session: Any,
    actor: int | None,
    person_id: int | None,
    action: Action | str,
    reason: str,
    attempted: str,
) -> None:
    """A refused attempt (run through `context.db.run`): ``denied.<action>`` with the reason
    (a Denial, or "forged" for data no button of ours carries) and what was pressed or typed
    (at most 64 characters)."""
    audit.record(
        session,
        f"denied.{action}",
        actor=actor,
        target_person_id=person_id,
        outcome="denied",
        reason=reason,
        attempted=attempted[:64],
    )


async def refuse_forged(
    update: Update, context: Context, person: Person, action: Action, key: str = "form.stale"
) -> None:
    """Button data that parses but names nothing this person may press (an unknown area or
    step, someone else's item: forged, or from an older version): audited as
    ``denied.<action>``, reason "forged", and answered with `key` in their language (the
    stale-button answer unless the feature has its own)."""
    query = update.callback_query
    attempted = (query.data if query else "") or ""
    await context.db.run(audit_denied, person.telegram_id, person.id, action, "forged", attempted)
    await answer(query, t(person.language, key), alert=True)


async def answer_stale(update: Update, context: Context, *, forged: bool = False) -> None:
    """The one answer to a button that no longer does anything ("this button is no longer
    active"). A `forged` press (data no button of ours carries) is audited as well."""
    person = await current_person(update, context)
    query = update.callback_query
    if forged and query is not None:
        user = update.effective_user
        await context.db.run(
            audit_denied,
            user.id if user else None,
            person.id if person else None,
            "button",
            "forged",
            str(query.data or ""),
        )
    await answer(query, t(language_of(update, context, person), "form.stale"), alert=True)


def _command_of(update: Update) -> str:
    """Only the command word is audited, never what else a person typed."""
    message = update.effective_message
    text = (message.text or "") if message else ""
    return text.split()[0][:64] if text.startswith("/") else ""


MAX_ANSWER_LENGTH = 200  # a callback answer's text


def plain_text(text: str) -> str:
    """Catalog HTML as a callback answer: plain text, at most 200 characters."""
    return _plain_text(text)[:MAX_ANSWER_LENGTH]
