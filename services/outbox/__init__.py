"""The outbox: proactive messages, stored in the same transaction as the event that caused
them and sent by the delivery worker (bot/delivery.py). See docs/delivery.md.

Every feature that messages people on its own initiative (alerts, escalations, reminders,
broadcasts, notices to admins) calls `enqueue` (or `enqueue_many`, `enqueue_edit`,
`enqueue_to`) and nothing else: the message is sent by priority, within Telegram's limits,
retried through errors and restarts. The worker is woken when a transaction that queued
something commits, so callers need not wake it themselves.

The rooms of this package:

    producer      the producer API, re-exported here (``from services import outbox``;
                  ``outbox.enqueue(...)``): the only names this package itself exports
    wakeup        waking the workers after a commit that queued messages
    claim         the worker's side: claiming due rows, edits and follow-ups held back
    leases        who is sending a row: lease owners, renewal, taking rows back
    outcomes      recording what became of each send; hooks on outcomes of a source
    reachability  people Telegram refuses messages to; the admins told once
    attachments   files drawn when sent (renderers)
    split         the one HTML splitter and the Bot API calls of one message

Everything but the producer API is imported from the module that owns it (e.g.
``from services.outbox.claim import claim_due``).
"""

from services.outbox.producer import (
    NewMessage,
    cancel,
    counts,
    enqueue,
    enqueue_edit,
    enqueue_many,
    enqueue_to,
    find,
    inline_keyboard,
)

__all__ = [
    "NewMessage",
    "cancel",
    "counts",
    "enqueue",
    "enqueue_edit",
    "enqueue_many",
    "enqueue_to",
    "find",
    "inline_keyboard",
]
