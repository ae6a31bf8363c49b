"""What a log line is about: the alert being handled.

bot/logs.py adds it to every record. Set it where an alert id becomes known while handling
an update or a job; the value lives in the current task (or thread) only.
"""

from __future__ import annotations

import contextvars

current_alert_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_alert_id", default=None
)


def about_alert(alert_id: int | None) -> None:
    """Log lines from here on (in this task or thread) carry ``alert_id``."""
    if alert_id is not None:
        current_alert_id.set(alert_id)
