"""python-telegram-bot persistence backed by the project's database.

Conversation states and per-user form data are written after every update (see
`flush_after_update` in bot.app), and forms write theirs before each question goes out
(handlers.conversation.persist_now), so a restart - even a kill -9 - mid-form loses nothing.

What keeps this cheap when a thousand people fill in forms at once (docs/benchmarks.md):

- a value equal to the one last written for that row is not written again (a form step's
  state, written before its question, is not written a second time after the update);
- writes waiting at the same moment go to the database together, in one transaction (group
  commit), and rows are queued in the order their data was copied, so the last copy is the
  one that stays. A form's question goes out once the transaction holding its state has
  committed (`write_form`), and the flush after an update waits for its rows the same way
  (`committed`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import ConversationDict, ConversationKey

from services import state
from services.db import Database, database_unavailable

log = logging.getLogger(__name__)

_CONVERSATION = "conversation:"
_USER = "user_data"
_ABSENT = object()
RETRY_SECONDS = 1.0  # between attempts while the database is unreachable


def _key(key: ConversationKey) -> str:
    return json.dumps(list(key))


class GroupWriter:
    """Writes bot_state rows in batches: whatever is queued while a transaction runs goes
    into the next one, and batches are written one after the other, so the last value
    queued for a row is the one that stays. A row equal to what was last committed for it
    is not written again."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._written: dict[tuple[str, str], Any] = {}  # last committed value (None: no row)
        self._pending: dict[tuple[str, str], Any] = {}
        self._pending_done: asyncio.Future[None] | None = None
        self._inflight: dict[tuple[str, str], Any] = {}
        self._inflight_done: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0  # how many were needed (benchmark, tests)

    def enqueue(self, rows: dict[tuple[str, str], Any]) -> asyncio.Future[None] | None:
        """Queue `rows` ({(kind, key): JSON-able data, or None: no row}) at once, in call
        order; the future is done when they are committed (None: nothing to write)."""
        for row, data in rows.items():
            if (
                row not in self._pending
                and row not in self._inflight
                and self._written.get(row, _ABSENT) == data
            ):
                continue
            self._pending[row] = data
        if not self._pending:
            return None
        if self._pending_done is None:
            self._pending_done = asyncio.get_running_loop().create_future()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="persistence-writer")
        return self._pending_done

    async def write(self, rows: dict[tuple[str, str], Any]) -> None:
        """Store `rows`; returns once they are committed (raises what the transaction raised)."""
        done = self.enqueue(rows)
        if done is not None:
            await asyncio.shield(done)  # a cancelled caller must not cancel the batch

    async def sync(self) -> None:
        """Returns once everything queued so far is committed (raises if it was not)."""
        for done in (self._inflight_done, self._pending_done):
            if done is not None:
                await asyncio.shield(done)

    def stop(self) -> None:
        """Give up what is still queued (the database stays unreachable at shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._write_batch()
        except BaseException as exc:  # cancelled (shutdown): nobody waits in vain
            if self._pending_done is not None:
                _settle(self._pending_done, exc)
            raise

    async def _write_batch(self) -> None:
        rows, self._pending = self._pending, {}
        done, self._pending_done = self._pending_done, None
        assert done is not None
        self._inflight, self._inflight_done = rows, done
        try:
            await self.db.run(state.put_many, rows)
        except BaseException as exc:
            self._inflight, self._inflight_done = {}, None
            _settle(done, exc)
            if not isinstance(exc, Exception):
                raise
            self._failed(rows, exc)
            if database_unavailable(exc):
                await asyncio.sleep(RETRY_SECONDS)
            return
        self._inflight, self._inflight_done = {}, None
        self.transactions += 1
        self._written.update(rows)
        _settle(done, None)

    def _failed(self, rows: dict[tuple[str, str], Any], exc: Exception) -> None:
        """Forget what is known of the failed rows; keep them for the next transaction when
        the database was unreachable (unless a newer value is already queued)."""
        for row, data in rows.items():
            self._written.pop(row, None)
            if database_unavailable(exc):
                self._pending.setdefault(row, data)
        if self._pending and self._pending_done is None:
            self._pending_done = asyncio.get_running_loop().create_future()
        log.warning("writing %d conversation state(s) failed: %s", len(rows), exc)


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
        done.exception()  # retrieved: its callers may all have gone


class DatabasePersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    def __init__(self, db: Database) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=5,
        )
        self.db = db
        self.writer = GroupWriter(db)

    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        rows = await self.db.run(state.load_all, _USER)
        return {int(key): dict(value or {}) for key, value in rows.items()}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        rows = await self.db.run(state.load_all, _CONVERSATION + name)
        return {tuple(json.loads(key)): value for key, value in rows.items()}

    # PTB's Application.update_persistence calls these under a lock, after copying the data,
    # and awaits them all. They queue the rows at once (so they keep the order in which the
    # data was copied) and return without waiting for the commit: the lock is not held
    # through a transaction, and the rows of many updates share one. Whoever needs them
    # durable awaits `committed()` (bot.app.flush_after_update, Application.stop's flush).

    def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> Coroutine[Any, Any, None]:
        self.writer.enqueue({(_CONVERSATION + name, _key(key)): new_state})
        return _nothing()

    def update_user_data(self, user_id: int, data: dict[Any, Any]) -> Coroutine[Any, Any, None]:
        self.writer.enqueue({(_USER, str(user_id)): data or None})
        return _nothing()

    def drop_user_data(self, user_id: int) -> Coroutine[Any, Any, None]:
        self.writer.enqueue({(_USER, str(user_id)): None})
        return _nothing()

    async def write_form(
        self,
        name: str,
        key: ConversationKey,
        new_state: object | None,
        user_id: int,
        data: dict[Any, Any],
    ) -> None:
        """A form's state and its user_data, committed together before this returns
        (`data`: a copy that nobody changes afterwards)."""
        await self.writer.write(
            {(_CONVERSATION + name, _key(key)): new_state, (_USER, str(user_id)): data or None}
        )

    async def committed(self) -> None:
        """Returns once every state queued so far is in the database. While the database
        is unreachable it returns without them: they are kept and written when it is back
        (the update that queued them is done; running it again would answer twice). A
        form's question waits for its own state instead (`write_form`)."""
        try:
            await self.writer.sync()
        except Exception as exc:
            if not database_unavailable(exc):
                raise

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        return None

    async def flush(self) -> None:
        """At shutdown (after PTB's last update_persistence): wait for the queued rows."""
        try:
            await self.writer.sync()
        except Exception:
            log.warning("conversation states not written before stopping", exc_info=True)
            self.writer.stop()


async def _nothing() -> None:
    return None
