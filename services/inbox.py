"""The update inbox: every update taken from Telegram is stored before Telegram is told it
arrived, so that no process can lose one (at-least-once handling).

Telegram forgets an update once the bot confirms it: with getUpdates, by asking for the
next ones (``offset`` = its id + 1, sent with the next call); with a webhook, by answering
200. A process that died, or lost the leadership and exited (bot/leader.py), between that
confirmation and the end of the update's handling lost the update: an SOS among them
(measured: 1 SOS of 41 in the failover benchmark). So:

1. `store` writes the updates of a getUpdates answer (or a webhook post) before the
   answer is returned to python-telegram-bot, which confirms them with its next call (a
   webhook post is answered 200 after it); when they cannot be stored and another process
   could take over, they are not confirmed at all and Telegram keeps them (bot/inbox.py);
2. `mark_handled` records the end of an update's handling and clears its content;
3. a process starting to lead handles first what is stored and not handled (`unhandled`):
   the updates of the process it replaced, in the order Telegram sent them.

`store` returns the ids not handled yet, new or not: Telegram sends an update again when
it did not see the confirmation, and one handled already is not handled twice.

At least once: an update whose handling was cut short is handled again from the start by
the next leader. Handlers whose effect must not repeat are idempotent: an SOS raised
again from the same update relays nothing (services/alerts.raise_alert, `update_id`), and
outbox messages are keyed by the update id (handlers/sos.py). Everything else a person
does is a step they can see and repeat.

The payload is personal data (PIPL): it is cleared when the update is handled, a
person's rows go with their data (services/erasure.py), and the ids of handled updates
are deleted once Telegram can no longer send them again (confirmed by a later getUpdates,
or after a day: Telegram keeps an update for 24 hours).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from models import UpdateInbox
from services import clock

log = logging.getLogger(__name__)

_TABLE = UpdateInbox.__table__  # type: ignore[attr-defined]
KEEP = timedelta(days=1)  # Telegram sends an unconfirmed update again for 24 hours at most
MAX_RESUMES = 3  # an update that every start took up and none finished is given up


def user_of(update: dict[str, Any]) -> int | None:
    """The Telegram user (or chat) an update comes from, for erasure."""
    for value in update.values():
        if not isinstance(value, dict):
            continue
        for key in ("from", "user", "chat"):
            who = value.get(key)
            if isinstance(who, dict) and isinstance(who.get("id"), int):
                return int(who["id"])
    return None


def store(
    session: Session, updates: Sequence[dict[str, Any]], *, confirmed_below: int | None = None
) -> list[int]:
    """Store updates taken from Telegram, before they are confirmed. Returns the ids of
    those not handled yet (stored now, or earlier and not handled); the others were handled
    already and Telegram sent them again. `confirmed_below`: the ``offset`` of the
    getUpdates call that fetched them, which confirmed every update below it: the handled
    ones are forgotten. Without it (a webhook post), handled ones are forgotten a day
    later."""
    now = clock.now()
    if confirmed_below:
        handled = col(UpdateInbox.handled_at).isnot(None)
        session.execute(delete(_TABLE).where(handled, _TABLE.c.update_id < confirmed_below))
    else:
        session.execute(delete(_TABLE).where(_TABLE.c.handled_at < now - KEEP))
    rows = [
        {
            "update_id": int(u["update_id"]),
            "user_id": user_of(u),
            "payload": dict(u),
            "received_at": now,
            "handled_at": None,
            "resumed": 0,
        }
        for u in updates
    ]
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(_TABLE).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.update_id],
        set_={"received_at": _TABLE.c.received_at},  # no change: only to return the row
        where=_TABLE.c.handled_at.is_(None),
    )
    return sorted(session.execute(statement.returning(_TABLE.c.update_id)).scalars())


def mark_handled(session: Session, ids: Iterable[int]) -> None:
    """The updates' handlers have finished: keep only the ids (content cleared)."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), 1000):
        session.execute(
            update(_TABLE)
            .where(_TABLE.c.update_id.in_(ordered[start : start + 1000]))
            .values(handled_at=clock.now(), payload=None)
        )


def unhandled(session: Session) -> list[dict[str, Any]]:
    """At the start of the process that leads now: the updates stored and not handled
    (their process stopped or died first), oldest first. An update that `MAX_RESUMES`
    starts took up without finishing is given up (logged), so that an update that kills
    the process cannot keep it from ever running."""
    rows = session.exec(
        select(UpdateInbox)
        .where(col(UpdateInbox.handled_at).is_(None))
        .order_by(col(UpdateInbox.update_id))
    ).all()
    taken: list[dict[str, Any]] = []
    given_up: list[int] = []
    for row in rows:
        if row.resumed >= MAX_RESUMES or row.payload is None:
            given_up.append(row.update_id)
            continue
        row.resumed += 1
        session.add(row)
        taken.append(dict(row.payload))
    if given_up:
        log.error(
            "update(s) %s taken up by %d starts and never handled: given up",
            ", ".join(map(str, given_up)),
            MAX_RESUMES,
        )
        mark_handled(session, given_up)
    return taken


def forget_user(session: Session, telegram_id: int) -> int:
    """Delete the stored updates of a person deleting their data (services/erasure.py)."""
    result = session.execute(delete(_TABLE).where(_TABLE.c.user_id == telegram_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
