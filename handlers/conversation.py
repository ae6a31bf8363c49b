"""What every persistent form (ConversationHandler) shares: its answers and state are
written before each question goes out, and each update is applied once.

A form keeps its working data in ``user_data[<form key>]``: the current step under
``<state key>`` and the id of the last update applied under ``update_id``.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, ConversationHandler, TypeHandler
from telegram.warnings import PTBUserWarning

from handlers.common import Context, answer
from services import clock

Step = Callable[[Update, Context], Awaitable[Any]]
Handlers = list[BaseHandler[Any, Any, Any]]


@dataclass(frozen=True)
class FormDraft:
    """A form's working data, kept in ``user_data[key]`` (persisted with it). PTB keeps a
    form's timeout in the JobQueue, which does not survive a restart, so the draft carries a
    ``touched`` time: the form is expired when it was left longer than `timeout` seconds
    (None: CADRE_FORM_TIMEOUT), never touched, or, when `alive` names a field, that field is
    not set (the form was cleared)."""

    key: str
    alive: str | None = None
    timeout: int | None = None

    def of(self, context: Context) -> dict[str, Any]:
        return context.user_data.setdefault(self.key, {})  # type: ignore[union-attr]

    def touch(self, context: Context) -> None:
        self.of(context)["touched"] = clock.now().isoformat()

    def clear(self, context: Context) -> None:
        if context.user_data is not None:
            context.user_data.pop(self.key, None)

    def expired(self, context: Context) -> bool:
        form = self.of(context)
        touched = form.get("touched")
        if not touched or (self.alive is not None and not form.get(self.alive)):
            return True
        limit = context.settings.form_timeout if self.timeout is None else self.timeout
        return (clock.now() - datetime.fromisoformat(touched)).total_seconds() > limit


def form_conversation(
    name: str,
    *,
    entry_points: Handlers,
    states: dict[object, Handlers],
    fallbacks: Handlers,
    timeout: int,
    on_timeout: Step | None = None,
    allow_reentry: bool = True,
) -> ConversationHandler[Any]:
    """The one way to build a form: a persistent ConversationHandler (bot/persistence.py)
    with a timeout (`on_timeout` runs when it fires). One form per person at a time is
    intended: presses are tracked per chat and user, not per message, a choice PTB warns
    about (the warning is silenced here, once)."""
    if on_timeout is not None:
        states = {**states, ConversationHandler.TIMEOUT: [TypeHandler(Update, on_timeout)]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*per_message=False.*", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=entry_points,
            states=states,
            fallbacks=fallbacks,
            name=name,
            persistent=True,
            conversation_timeout=timedelta(seconds=timeout),
            allow_reentry=allow_reentry,
        )


async def persist_now(update: Update, context: Context, conversation: str, state: object) -> None:
    """Write the form and the conversation state before the question goes out: if the bot
    is killed right after asking, the answer still finds the question it belongs to."""
    persistence = context.application.persistence
    chat, user = update.effective_chat, update.effective_user
    if persistence is None or chat is None or user is None:
        return
    data = copy.deepcopy(dict(context.user_data or {}))
    write_form = getattr(persistence, "write_form", None)
    if write_form is not None:  # bot.persistence: both rows in one transaction
        await write_form(conversation, (chat.id, user.id), state, user.id, data)
        return
    await persistence.update_conversation(conversation, (chat.id, user.id), state)
    await persistence.update_user_data(user.id, data)


def once_per_update(form_key: str, state_key: str) -> Callable[[Step], Step]:
    """After a crash Telegram may deliver an update again; an answer is applied only once
    (the repeat is answered, if a button, and the form stays where it is).

    A step that fails (the database went away mid-step) leaves the form as it was, so that
    the same update, run again once the database is back (bot/outage.py), is applied then
    instead of being taken for a repeat."""

    def decorate(fn: Step) -> Step:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: Context) -> Any:
            form = context.user_data.setdefault(form_key, {})  # type: ignore[union-attr]
            if update.update_id <= form.get("update_id", -1):
                await answer(update.callback_query)
                return form.get(state_key) or ConversationHandler.END
            before = copy.deepcopy(form)
            form["update_id"] = update.update_id
            try:
                return await fn(update, context)
            except Exception:
                context.user_data[form_key] = before  # type: ignore[index]
                raise

        return wrapper

    return decorate
