"""Leases: who is sending a row.

A worker claims rows with its owner id and a lease expiry, renews the lease of every row
it holds (queued in memory or in flight) while it holds it, and writes outcomes only for
rows it still owns. Recovery takes back rows whose lease expired (their worker died or
hangs), never the rows of a live worker; a new leader also takes back the rows of the
leader it replaced (bot/leader.py), which can no longer send.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, text, update
from sqlmodel import Session

from models import OutboxMessage, OutboxStatus, OutcomeCode, Priority
from models.outbox import CHANNEL_ROWS
from services import clock
from services.outbox.wakeup import note_enqueued

_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]
_NODE = f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(3)}"
_owners = itertools.count(1)


def process_node() -> str:
    """This process's id (host:pid:random): the prefix of its workers' lease owners."""
    return _NODE


def new_owner(kind: str) -> str:
    """A lease owner id for one worker of this process (``<node>/<kind><n>``)."""
    return f"{_NODE}/{kind}{next(_owners)}"[:80]


def recover_interrupted(session: Session, owner: str | None = None) -> int:
    """Telegram rows left ``sending`` whose lease expired (their worker died, or hangs):
    the outcome is unknown, so they are sent again (the only case where a duplicate is
    accepted). Rows of `owner` (the caller itself) are left alone: it knows them."""
    count = reclaim(session, "telegram", owner=owner)
    if count:
        note_enqueued(session, int(Priority.EMERGENCY))
    return count


def reclaim(
    session: Session,
    channel: str,
    *,
    owner: str | None = None,
    node: str | None = None,
    attempt: bool = True,
    every: bool = False,
) -> int:
    """Put ``sending`` rows back to ``pending``: of `channel` ("telegram", or "other" for
    WeCom, DingTalk and SMS), those whose lease expired (none: taken without one), except
    `owner`'s; with `node`, instead every row leased by that process's workers; with
    `every`, every row (the process starting is the only one that may send: see
    `reclaim_all`)."""
    now = clock.now()
    query = update(_TABLE).where(_TABLE.c.status == OutboxStatus.SENDING.value)
    if channel == "telegram":
        query = query.where(_TABLE.c.channel == "telegram")
    else:
        query = query.where(text(CHANNEL_ROWS))
    if every:
        pass
    elif node is not None:
        query = query.where(_TABLE.c.lease_owner.like(f"{node}/%"))
    else:
        query = query.where(
            or_(_TABLE.c.lease_expires_at.is_(None), _TABLE.c.lease_expires_at < now)
        )
        if owner is not None:
            query = query.where(or_(_TABLE.c.lease_owner.is_(None), _TABLE.c.lease_owner != owner))
    values: dict[str, Any] = {
        "status": OutboxStatus.PENDING.value,
        "next_attempt_at": now,
        "outcome_code": OutcomeCode.RESTART.value,
        "outcome": "the bot stopped while sending: outcome unknown, sending again",
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if attempt:
        values["attempts"] = _TABLE.c.attempts + 1
    result = session.execute(query.values(**values))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def reclaim_all(session: Session) -> int:
    """At the start of the one process that may send (it holds the SQLite database's lock
    file, or the PostgreSQL leadership after the old leader's send window closed): every
    row left ``sending`` belongs to a process that is dead or can no longer send, whatever
    its lease says, so all are sent again at once rather than when their leases expire."""
    count = reclaim(session, "telegram", every=True)
    count += reclaim(session, "other", every=True, attempt=False)
    if count:
        note_enqueued(session, int(Priority.EMERGENCY))
    return count


def renew_leases(session: Session, owner: str, ids: Sequence[int], seconds: float) -> int:
    """Extend the lease of the rows `owner` holds (and still owns) among `ids`."""
    until = clock.now() + timedelta(seconds=seconds)
    renewed = 0
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):
        result = session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.id.in_(ordered[start : start + 1000]),
                _TABLE.c.lease_owner == owner,
                _TABLE.c.status == OutboxStatus.SENDING.value,
            )
            .values(lease_expires_at=until)
        )
        renewed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return renewed
