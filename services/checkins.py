"""The check-in facts other features show (a thin re-export from services.health).

Contract used by the Emergency channel:
    last_checkin_line(session, person_id, lang, *, vitals=True) -> str | None
One line for an alert message: when the person last checked in, the result and the few
readings a responder needs (SpO2, heart rate, temperature, Lake Louise score). None when
they never checked in. Pass vitals=False for emergency contacts: they see only the time.
"""

from __future__ import annotations

from services.health.checkins import last_checkin_line, latest

__all__ = ["last_checkin_line", "latest"]
