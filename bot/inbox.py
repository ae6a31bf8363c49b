"""The update inbox in the running bot: no update taken from Telegram is lost when the
process dies or loses the leadership (services/inbox.py says why and how).

    getUpdates   bot/request.py hands every getUpdates answer to `UpdateInbox.fetched`
                 before python-telegram-bot sees it: the updates are stored, and only then
                 does its next getUpdates (offset + 1) confirm them to Telegram.
    webhook      bot/webhook.py stores each post (`posted`) before answering 200.
    handling     the update processor (bot/updates.py) skips an update Telegram sent again
                 after it was handled (`admit`) and records the end of each update's
                 handling (`handled`: written with the others that end meanwhile, in one
                 transaction).
    start        `resume`, at post_init (before polling or the webhook start): the updates
                 stored and not handled by the process before (it died, or lost the
                 leadership and exited) are handled first, in their order.

When the database cannot be reached, updates are not stored. If another process could take
over (PostgreSQL, a standby connected at the last heartbeat: bot/leader.py), they are not
confirmed either: getUpdates is not called again until they are stored (and this leader,
having lost its lock with the database, exits meanwhile; Telegram gives them to the next
one), and a webhook post is answered 503 (Telegram posts it again). A process alone
(SQLite, or PostgreSQL without a standby) handles them from memory, as in any database
outage (bot/outage.py): a crash during the outage loses those, as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Update

from bot.request import Unavailable
from services import inbox
from services.db import Database, database_unavailable

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 0.25, 2.0  # seconds between attempts to store, while it fails


class NotStored(Exception):
    """The updates could not be stored and must stay with Telegram (unconfirmed)."""


class UpdateInbox:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.application: Any = None
        self.held: set[int] = set()  # stored and taken here, end of handling not written yet
        self.resumed_ids: set[int] = set()  # queued by `resume` (Telegram may send them too)
        self.duplicates: set[int] = set()  # fetched again after they were taken: not run
        self._marks = _Marks(db, self.held)
        self.resumed = 0  # updates of a previous process handled at this start

    def install(self, application: Any) -> None:
        from bot.updates import PerChatUpdateProcessor

        self.application = application
        application.bot_data["inbox"] = self
        processor = application.update_processor
        if isinstance(processor, PerChatUpdateProcessor):
            processor.admit = self.admit
            processor.handled = self.handled

    # --- taking updates ---------------------------------------------------------------

    async def fetched(self, offset: int | None, updates: list[dict[str, Any]]) -> None:
        """A getUpdates answer (bot/request.py), before python-telegram-bot queues it. Returns
        once it is stored; raises (python-telegram-bot asks again later, the updates stay
        unconfirmed) when this process no longer leads."""
        try:
            fresh = await self._store(updates, offset, wait=True)
        except NotStored as exc:
            raise Unavailable(f"updates left with Telegram: {exc}") from None
        # Not run: those handled already, and those `resume` queued. One fetched before by
        # this process is taken again: python-telegram-bot asks for the same updates again
        # only when it did not queue them.
        resumed = self.resumed_ids & self.held
        for update in updates:
            update_id = update["update_id"]
            if update_id not in fresh or update_id in resumed:
                self.duplicates.add(update_id)
            else:
                self.held.add(update_id)

    async def posted(self, update: dict[str, Any]) -> bool:
        """A webhook post (bot/webhook.py): True to queue it, False when it was taken
        already (answered 200, not run again). Raises NotStored: answer 503."""
        update_id = update["update_id"]
        if update_id not in await self._store([update], None, wait=False):
            return False  # handled
        if update_id in self.held:
            return False  # posted again while it is being handled here
        self.held.add(update_id)
        return True

    async def _store(
        self, updates: list[dict[str, Any]], offset: int | None, *, wait: bool
    ) -> set[int]:
        """Store `updates`: the ids of those not handled yet."""
        delay = RETRY_FIRST
        while True:
            leadership = self._leadership()
            if leadership is not None and not leadership.may_talk():
                raise NotStored("this process does not lead")
            try:
                fresh = set(await self.db.run(inbox.store, updates, confirmed_below=offset))
                break
            except Exception as exc:
                ids = [u["update_id"] for u in updates]
                if not database_unavailable(exc):
                    log.exception("storing update(s) %s failed: handling them unstored", ids)
                    fresh = set(ids)
                    break
                if leadership is None or leadership.standbys == 0:
                    log.warning(
                        "database unreachable: update(s) %s handled without being stored "
                        "(no other process could handle them)",
                        ids,
                    )
                    fresh = set(ids)
                    break
                if not wait:
                    raise NotStored("the database cannot be reached") from None
                log.warning(
                    "database unreachable: update(s) %s not stored, so not confirmed to "
                    "Telegram; trying again",
                    ids,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
        return fresh

    def _leadership(self) -> Any:
        if self.application is None:
            return None
        return self.application.bot_data.get("leadership")  # bot/leader.py, PostgreSQL

    # --- handling ------------------------------------------------------------------------

    def admit(self, update: object) -> bool:
        update_id = getattr(update, "update_id", None)
        if update_id in self.duplicates:
            self.duplicates.discard(update_id)
            log.info("update %s came again after it was taken: not handled twice", update_id)
            return False
        return True

    async def handled(self, update: object) -> None:
        update_id = getattr(update, "update_id", None)
        if update_id in self.held:
            await self._marks.add(update_id)

    async def resume(self) -> int:
        """At start-up, before updates are fetched: queue the updates stored and not
        handled by the process before, oldest first."""
        application = self.application
        rows = await self.db.run(inbox.unhandled)
        for payload in rows:
            try:
                update = Update.de_json(payload, application.bot)
            except Exception:
                log.exception("update %s stored but unreadable: skipped", payload.get("update_id"))
                await self.db.run(inbox.mark_handled, [payload.get("update_id")])
                continue
            self.held.add(update.update_id)
            self.resumed_ids.add(update.update_id)
            await application.update_queue.put(update)
        if rows:
            log.warning(
                "%d update(s) taken from Telegram before this start and not handled: "
                "handling them first (%s)",
                len(rows),
                ", ".join(str(p.get("update_id")) for p in rows[:20]),
            )
        self.resumed += len(rows)
        return len(rows)


class _Marks:
    """Writes the ends of handling: whatever ends while a transaction runs goes into the
    next one. While the database is unreachable they are kept and written later (the
    update's handling does not wait for that)."""

    def __init__(self, db: Database, held: set[int]) -> None:
        self.db = db
        self.held = held
        self.pending: list[int] = []
        self.waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    async def add(self, update_id: int) -> None:
        self.pending.append(update_id)
        if self.waiter is None:
            self.waiter = asyncio.get_running_loop().create_future()
        waiter = self.waiter
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain(), name="inbox-marks")
        await asyncio.shield(waiter)

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            waiter, self.waiter = self.waiter, None
            try:
                await self.db.run(inbox.mark_handled, batch)
            except Exception as exc:
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)  # the handling does not wait for the database
                if not database_unavailable(exc):
                    log.exception("recording the end of update(s) %s failed", batch)
                    self.held.difference_update(batch)
                    continue
                self.pending[:0] = batch  # written once the database is back
                await asyncio.sleep(RETRY_MAX)
                continue
            self.held.difference_update(batch)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
