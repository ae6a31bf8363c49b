"""Private chats only, and edits never act: the gate every update passes first.

bot/app.py registers build() as the first handler group, before the emergency channel and
every feature, so that no handler needs a check of its own (PIPL: health data is
sensitive; docs/privacy.md):

- In a group, supergroup or channel the bot answers nothing but ``/start`` and ``/help``
  addressed to it, with a one-line pointer to a private chat (a t.me link). Everything
  else stops here, silently: no form, board, policy answer, SOS detail or "not registered"
  is ever posted into a group, and a button pressed there is answered without text.
- Channel posts, messages sent on behalf of a chat (anonymous group admins, a linked
  channel), updates without a sender, and business-account messages are ignored.
- An edited message never acts (PTB's CommandHandler would run an edited ``/sos`` or
  ``/mydata`` again). While the person is in the middle of a form, each edit is answered
  once with "edits are not read; send a new message"; otherwise it is ignored. A moving
  live location arrives as an edit too: it goes on to the emergency channel.
"""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    TypeHandler,
    filters,
)

from handlers.common import Context, answer, current_person, language_of, reply
from services.i18n import t

# /start and /help typed by a person (not on behalf of a chat) in a group, not edited.
POINTER = (
    filters.ChatType.GROUPS & filters.UpdateType.MESSAGE & filters.USER & ~filters.SenderChat.ALL
)


def admitted(update: Update) -> bool:
    """Whether the bot may act on this update: something a person did in their own private
    chat with the bot (a message, a button, blocking or unblocking it), or a live location
    moving there. Everything the handlers see has passed this test."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or chat.type != ChatType.PRIVATE or user is None or user.is_bot:
        return False
    if update.message is not None:
        return update.message.sender_chat is None
    if update.edited_message is not None:
        return update.edited_message.location is not None  # a live location moving
    return update.callback_query is not None or update.my_chat_member is not None


def is_private_edit(update: Update) -> bool:
    message = update.edited_message
    return (
        message is not None
        and message.chat.type == ChatType.PRIVATE
        and message.from_user is not None
        and message.sender_chat is None
    )


async def gate(update: Update, context: Context) -> None:
    """Let admitted updates on to the other groups; stop the rest here."""
    if admitted(update):
        return
    if update.callback_query is not None:
        await answer(update.callback_query)  # stops the spinner; nothing is posted
    elif is_private_edit(update) and in_a_form(context.application, update):
        person = await current_person(update, context)
        await reply(update, t(language_of(update, context, person), "privacy.edit_not_read"))
    raise ApplicationHandlerStop


async def point_to_private_chat(update: Update, context: Context) -> None:
    """/start or /help in a group: one line, the link to a private chat, nothing else."""
    link = f"https://t.me/{context.bot.username}"
    await reply(update, t(language_of(update, context), "privacy.private_only", link=link))
    raise ApplicationHandlerStop


def in_a_form(application: Application[Any, Any, Any, Any, Any, Any], update: Update) -> bool:
    """Whether one of the forms (ConversationHandler) waits for this person's answer.

    PTB keeps each conversation's state in ``ConversationHandler._conversations`` and has no
    public reader for it; tests/handlers/test_privacy.py fails if that changes."""
    for handlers in application.handlers.values():
        for handler in handlers:
            if not isinstance(handler, ConversationHandler):
                continue
            try:
                key = handler._get_key(update)
            except RuntimeError:
                continue
            if handler._conversations.get(key) is not None:
                return True
    return False


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler(("start", "help"), point_to_private_chat, filters=POINTER),
        TypeHandler(Update, gate),
    ]
