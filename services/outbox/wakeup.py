"""Waking the workers: a transaction that queued messages calls `note_enqueued`, and the
listeners (the delivery workers) are called once it commits, from whichever thread
committed; a rollback forgets it.

The SQLAlchemy session events are attached when the first listener registers and removed
with the last one: importing this module registers nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

_listeners: list[Callable[[int], None]] = []
_listeners_lock = threading.Lock()
_INFO_KEY = "outbox.enqueued"


def add_enqueue_listener(listener: Callable[[int], None]) -> None:
    """Call `listener(priority)` after each commit that queued messages (from whichever
    thread committed: the listener must be thread-safe). The delivery worker registers."""
    with _listeners_lock:
        if not _listeners:
            event.listen(OrmSession, "after_commit", _after_commit)
            event.listen(OrmSession, "after_rollback", _after_rollback)
        _listeners.append(listener)


def remove_enqueue_listener(listener: Callable[[int], None]) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)
            if not _listeners:
                event.remove(OrmSession, "after_commit", _after_commit)
                event.remove(OrmSession, "after_rollback", _after_rollback)


def note_enqueued(session: Session, priority: int) -> None:
    current = session.info.get(_INFO_KEY)
    session.info[_INFO_KEY] = priority if current is None else min(current, priority)


def _after_commit(session: OrmSession) -> None:
    priority = session.info.pop(_INFO_KEY, None)
    if priority is None:
        return
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(priority)


def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_INFO_KEY, None)
