"""Surviving a database outage: nothing a person sent is lost while the database is down.

When a handler fails because the database cannot be reached, `on_error` (bot/app.py)
hands the update to `OutageGuard.defer` instead of answering "something went wrong". The
person is told once per outage that their message is kept (`outage.wait`), and the update
processor (bot/updates.py) runs the update again, from its first handler group, as soon as
the database answers; it does so inside the chat's chain, so that chat's later updates
wait for it and keep their order. Other chats go on as far as they can.

A handler that fails with a database error while the database answers pings (a broken
statement, not an outage) is retried `MAX_RETRIES_WHILE_REACHABLE` times, then given up to
the usual error reply, so that a bug cannot hold a chat forever.

`DatabaseProbe` is the one `SELECT 1` with a short timeout, run in a worker thread and
shared by everyone who asks at the same moment (the retries of many chats, /healthz).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, text
from telegram import Update

from services.db import database_unavailable

log = logging.getLogger(__name__)

__all__ = ["DatabaseProbe", "OutageGuard", "background", "database_unavailable"]
T = TypeVar("T")

PING_TIMEOUT = 2.0  # seconds a SELECT 1 may take before the database counts as unreachable
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 5.0  # seconds between pings while waiting: the update runs at most this late
MAX_RETRIES_WHILE_REACHABLE = 3


class DatabaseProbe:
    """`SELECT 1` with a timeout, off the event loop. Concurrent callers share one ping, so
    a hung connection attempt ties up at most one worker thread."""

    def __init__(self, engine: Engine, timeout: float = PING_TIMEOUT) -> None:
        self.engine = engine
        self.timeout = timeout
        self.last_ok: float | None = None  # time.monotonic() of the last successful ping
        self.last_error: str | None = None
        self._inflight: asyncio.Future[None] | None = None

    def _select_one(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    async def ping(self) -> bool:
        if self._inflight is None or self._inflight.done():
            self._inflight = background(asyncio.to_thread(self._select_one))
        inflight = self._inflight
        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.shield(inflight)
        except TimeoutError:
            self.last_error = f"no answer within {self.timeout:g} s"
            return False
        except Exception as exc:
            self.last_error = f"{exc.__class__.__name__}: {_first_line(exc)}"
            return False
        self.last_ok = time.monotonic()
        self.last_error = None
        return True

    async def wait_until_reachable(self, stop: asyncio.Event | None = None) -> bool:
        """Ping with backoff until the database answers. Returns whether it answered at the
        first ping (if so, the error that sent us here was not an outage)."""
        delay = BACKOFF_FIRST
        first = True
        while True:
            if await self.ping():
                return first
            if first:
                log.warning("database unreachable (%s): waiting for it", self.last_error)
            first = False
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
                if stop.is_set():
                    return False
            delay = min(delay * 2, BACKOFF_CAP)


def background(awaitable: Awaitable[T]) -> asyncio.Future[T]:
    """A future several callers may await with a timeout of their own. Its exception is
    marked as retrieved, so that one nobody awaited any more is not logged at exit."""
    future = asyncio.ensure_future(awaitable)
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


class OutageGuard:
    """Keeps the updates whose handlers failed for want of a database, and runs them again
    when it is back. One per Application (bot_data["outage"])."""

    def __init__(self, probe: DatabaseProbe) -> None:
        self.probe = probe
        self.reprocess: Callable[[object], Awaitable[Any]] | None = None
        self._deferred: set[int] = set()  # id() of updates to run again
        self._hopeless: dict[int, int] = {}  # retries that failed although the db answered
        self._told: set[int] = set()  # chats told "your message is kept" in this outage
        self._stop = asyncio.Event()
        self.waiting = 0  # updates waiting for the database now
        self.deferred_total = 0

    def request_stop(self) -> None:
        """The bot is stopping: give up waiting (what waits is lost, and logged)."""
        self._stop.set()

    def defer(self, update: object) -> bool:
        """Run `update` again once the database answers. False when it already failed too
        often while the database was reachable: the caller then reports the error."""
        if self.reprocess is None:
            return False
        key = id(update)
        if self._hopeless.get(key, 0) >= MAX_RETRIES_WHILE_REACHABLE:
            return False
        self._deferred.add(key)
        self.deferred_total += 1
        return True

    def should_tell(self, update: object) -> bool:
        """Tell a chat once per outage that its messages are kept (not at every retry)."""
        if not isinstance(update, Update) or update.effective_chat is None:
            return False
        chat_id = update.effective_chat.id
        if chat_id in self._told:
            return False
        self._told.add(chat_id)
        return True

    def retrying(self, update: object) -> bool:
        """Whether `update` is being handled again after an outage (not its first time)."""
        return id(update) in self._hopeless

    async def run_deferred(self, update: object) -> bool:
        """Called by the update processor after each update, in the chat's chain: while the
        update was deferred, wait for the database and run it again. False when it was
        given up (the bot stops first): it stays unhandled in the update inbox."""
        key = id(update)
        if key not in self._deferred:
            return True
        assert self.reprocess is not None
        try:
            while key in self._deferred:
                self._deferred.discard(key)
                self.waiting += 1
                try:
                    reachable = await self.probe.wait_until_reachable(self._stop)
                finally:
                    self.waiting -= 1
                if self._stop.is_set():
                    log.error(
                        "stopping while the database is unreachable: update %s not handled "
                        "(the next start handles it if it was stored: bot/inbox.py)",
                        _update_id(update),
                    )
                    return False
                if reachable:
                    self._hopeless[key] = self._hopeless.get(key, 0) + 1
                else:
                    self._hopeless[key] = 0
                    self._told.clear()  # the outage is over: the next one is told again
                log.info("database reachable: handling update %s again", _update_id(update))
                await self.reprocess(update)
            return True
        finally:
            self._deferred.discard(key)
            self._hopeless.pop(key, None)


def _update_id(update: object) -> object:
    return getattr(update, "update_id", "?")
