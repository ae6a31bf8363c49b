"""Updates of different people are handled concurrently; one person's stay in order.

python-telegram-bot handles one update at a time by default, which caps the bot at a few
dozen updates a second (every step waits for the database). Concurrency across people is
safe; within one chat it is not (a form's answers must be read in the order typed), so
each chat's updates are chained: an update starts when the previous one of that chat ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.logs import current_update_id
from services.log_context import current_alert_id


def _key(update: object) -> int | None:
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return update.effective_chat.id
        if update.effective_user is not None:
            return update.effective_user.id
    return None


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        self._tails: dict[int, asyncio.Future[None]] = {}
        # Runs an update again, in its chat's chain, when its handler failed for want of a
        # database (bot/outage.py: OutageGuard.run_deferred); False: given up (stopping).
        self.after_update: Callable[[object], Awaitable[bool | None]] | None = None
        # The update inbox (bot/inbox.py): `admit` is False for an update Telegram sent
        # again after it was handled (it is not run twice); `handled` records the end of
        # an update's handling.
        self.admit: Callable[[object], bool] | None = None
        self.handled: Callable[[object], Awaitable[None]] | None = None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if self.admit is not None and not self.admit(update):
            close = getattr(coroutine, "close", None)
            if close is not None:
                close()  # never started
            return
        # Log lines carry the update's id (and an alert's, once a handler names it).
        update_token = current_update_id.set(getattr(update, "update_id", None))
        alert_token = current_alert_id.set(None)
        try:
            finished = await self._in_chat_order(update, coroutine)
        finally:
            current_alert_id.reset(alert_token)
            current_update_id.reset(update_token)
        if finished and self.handled is not None:
            await self.handled(update)

    async def _in_chat_order(self, update: object, coroutine: Awaitable[Any]) -> bool:
        key = _key(update)
        if key is None:
            await coroutine
            if self.after_update is not None:
                return await self.after_update(update) is not False
            return True
        previous = self._tails.get(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await coroutine
            if self.after_update is not None:
                return await self.after_update(update) is not False
            return True
        finally:
            done.set_result(None)
            if self._tails.get(key) is done:
                del self._tails[key]

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
